import { describe, expect, it } from 'vitest';
import { Config, type ConfigInput } from '../../contract/config.ts';
import { createAddressPolicy } from '../../dispatcher/address-policy.ts';
import { checkDispatcherConfig, refusedTargetWarnings, systemResolve, type Resolve } from '../../dispatcher/config-check.ts';

// What the dispatcher checks in a config before it starts or applies a reload, and the warnings `validate` gives
// for targets the network policy would refuse. main.ts prints these (test/dispatcher/main.test.ts runs it); here
// the findings themselves are pinned.

const target = (name: string, watchURL: string, extra: Record<string, unknown> = {}) => ({ name, watchURL, methods: ['POST'], ...extra });
const config = (input: ConfigInput) => Config.parse(input);
const warningsOf = (c: Config, resolve: Resolve) => refusedTargetWarnings(c, checkDispatcherConfig(c, env({})).policy, resolve);
const unresolvable: Resolve = () => Promise.resolve([]);
const env = (vars: Record<string, string>) => ({ env: vars, readFile: (path: string) => { throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' }); } });

describe('dispatcher config check', () => {
  it('gives the signing keys of a config with no error', () => {
    const c = config({ targets: [target('a', 'http://a.test/'), target('b', 'http://b.test/', { secrets: [{ env: 'B_SECRET' }] })] });
    const checked = checkDispatcherConfig(c, env({ B_SECRET: 'raw-key' }));
    expect(checked.findings).toEqual([]);
    expect(checked.secrets?.get('a')).toEqual([]);
    expect(checked.secrets?.get('b')).toEqual([Buffer.from('raw-key')]);
  });

  it('reports a missing secret and gives no keys', () => {
    const c = config({ targets: [target('b', 'http://b.test/', { secrets: [{ env: 'B_SECRET' }] })] });
    const checked = checkDispatcherConfig(c, env({}));
    expect(checked.secrets).toBeUndefined();
    expect(checked.findings).toEqual([
      { severity: 'error', code: 'RM_SECRET_UNAVAILABLE', message: 'targets[0] "b": secrets[0]: environment variable B_SECRET is not set or empty' },
    ]);
  });

  it('gives the network policy with a secret missing, so that the refused targets are still warned about', async () => {
    const c = config({ dispatcher: { network: { allowLoopback: false } }, targets: [target('b', 'http://127.0.0.1/', { secrets: [{ env: 'B_SECRET' }] })] });
    const checked = checkDispatcherConfig(c, env({}));
    expect(checked.findings.map((f) => f.code)).toEqual(['RM_SECRET_UNAVAILABLE']);
    expect((await refusedTargetWarnings(c, checked.policy, unresolvable)).map((w) => w.code)).toEqual(['RM_ADDRESS_REFUSED']);
  });

  it('reports a CIDR that does not parse, with the secrets fine, and gives no keys and no policy to judge targets by', async () => {
    const c = config({ dispatcher: { network: { denyCIDRs: ['10.0.0.0/8', '10.1.2.3/99'] } }, targets: [target('a', 'http://10.0.0.1/')] });
    const checked = checkDispatcherConfig(c, env({}));
    expect(checked.secrets).toBeUndefined();
    expect(checked.policy).toBeUndefined();
    expect(checked.findings).toEqual([
      { severity: 'error', code: 'RM_NETWORK_POLICY_INVALID', message: 'dispatcher.network.denyCIDRs[1]: "10.1.2.3/99" is not an IPv4 or IPv6 CIDR' },
    ]);
    expect(await refusedTargetWarnings(c, checked.policy, unresolvable)).toEqual([]);
  });

  it('reports a missing secret and a bad CIDR together', () => {
    const c = config({ dispatcher: { network: { allowCIDRs: ['nope'] } }, targets: [target('b', 'http://b.test/', { secrets: [{ env: 'B_SECRET' }] })] });
    expect(checkDispatcherConfig(c, env({})).findings.map((f) => [f.code, f.message])).toEqual([
      ['RM_SECRET_UNAVAILABLE', 'targets[0] "b": secrets[0]: environment variable B_SECRET is not set or empty'],
      ['RM_NETWORK_POLICY_INVALID', 'dispatcher.network.allowCIDRs[0]: "nope" is not an IPv4 or IPv6 CIDR'],
    ]);
  });
});

describe('refused target warnings', () => {
  const noLoopback = { dispatcher: { network: { allowLoopback: false } } };
  const reason = (address: string, network: ConfigInput['dispatcher'] = noLoopback.dispatcher) => {
    const verdict = createAddressPolicy(config({ dispatcher: network }).dispatcher.network).check(address);
    if (verdict.allowed) throw new Error(`${address} is allowed`);
    return verdict.reason;
  };

  it('warns about a target whose IP literal the policy refuses, naming the setting that allows it', async () => {
    const c = config({ ...noLoopback, targets: [target('ok', 'http://192.0.2.1/'), target('local', 'http://127.0.0.1:9/hook')] });
    expect(await warningsOf(c, unresolvable)).toEqual([
      {
        severity: 'warning',
        code: 'RM_ADDRESS_REFUSED',
        message:
          `targets[1] "local": watchURL http://127.0.0.1:9/hook is an address dispatcher.network refuses: ${reason('127.0.0.1')}; ` +
          'every event for it would be dropped (reason address_refused).\nTo allow it: dispatcher.network.allowLoopback: true',
      },
    ]);
  });

  it('reads an IPv6 literal without its brackets and offers a /128 allowCIDRs entry for a denied one', async () => {
    const network = { denyCIDRs: ['2001:db8::/32'] };
    const c = config({ dispatcher: { network }, targets: [target('v6', 'http://[2001:db8::5]:8080/')] });
    const [warning] = await warningsOf(c, unresolvable);
    expect(warning?.message).toBe(
      `targets[0] "v6": watchURL http://[2001:db8::5]:8080/ is an address dispatcher.network refuses: ${reason('2001:db8::5', { network })}; ` +
        'every event for it would be dropped (reason address_refused).\nTo allow it: dispatcher.network.allowCIDRs: [2001:db8::5/128]',
    );
  });

  it('offers a /32 allowCIDRs entry for a denied IPv4 address', async () => {
    const c = config({ dispatcher: { network: { denyCIDRs: ['198.51.100.0/24'] } }, targets: [target('v4', 'http://198.51.100.7/')] });
    const [warning] = await warningsOf(c, unresolvable);
    expect(warning?.message.split('\n')).toEqual([
      'targets[0] "v4": watchURL http://198.51.100.7/ is an address dispatcher.network refuses: 198.51.100.7 is in dispatcher.network.denyCIDRs[0] (198.51.100.0/24); ' +
        'every event for it would be dropped (reason address_refused).',
      'To allow it: dispatcher.network.allowCIDRs: [198.51.100.7/32]',
    ]);
  });

  it('says no setting allows what is not an IP address at all', async () => {
    const c = config({ targets: [target('odd', 'http://odd.test/')] });
    const [warning] = await warningsOf(c, () => Promise.resolve(['not-an-ip']));
    expect(warning?.message.split('\n')[1]).toBe('To allow it: no setting allows it; use another address');
  });

  it('warns about a host name that resolves only to refused addresses, naming what it resolves to', async () => {
    const c = config({ ...noLoopback, targets: [target('named', 'http://hooks.test/')] });
    const resolved: string[] = [];
    const [warning] = await warningsOf(c, (host) => {
      resolved.push(host);
      return Promise.resolve(['127.0.0.1', '::1']);
    });
    expect(resolved).toEqual(['hooks.test']);
    expect(warning?.message.split('\n')[0]).toBe(
      `targets[0] "named": watchURL http://hooks.test/ is an address dispatcher.network refuses (hooks.test resolves to 127.0.0.1, ::1): ${reason('127.0.0.1')}; ` +
        'every event for it would be dropped (reason address_refused).',
    );
  });

  it('does not warn about a host name with one allowed address, nor one that does not resolve from here', async () => {
    const c = config({ ...noLoopback, targets: [target('mixed', 'http://mixed.test/'), target('internal', 'http://svc.cluster.local/')] });
    const answers: Record<string, string[]> = { 'mixed.test': ['127.0.0.1', '192.0.2.9'], 'svc.cluster.local': [] };
    expect(await warningsOf(c, (host) => Promise.resolve(answers[host] ?? ['127.0.0.1']))).toEqual([]);
  });

  it('does not warn about allowed targets', async () => {
    const c = config({ dispatcher: { network: { allowLoopback: true } }, targets: [target('local', 'http://127.0.0.1/'), target('v6', 'http://[::1]/')] });
    expect(await warningsOf(c, unresolvable)).toEqual([]);
  });

  it('resolves names through the system resolver, and an unknown name to nothing', async () => {
    expect(await systemResolve('localhost')).toContain('127.0.0.1');
    expect(await systemResolve('no-such-host.invalid')).toEqual([]);
  });
});

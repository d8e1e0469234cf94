import { describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { createAddressPolicy } from '../../dispatcher/address-policy.ts';
import { NetworkPolicyInvalidError } from '../../dispatcher/errors.ts';
import { eventually, makeEvent, metric, publish, startDispatcher, useDispatcherFixture, PREFIX } from './harness.ts';

const { nats, receiver, defer } = useDispatcherFixture();

const policy = (network: object) => createAddressPolicy(Config.parse({ dispatcher: { network } }).dispatcher.network);

describe('network policy', () => {
  it('refuses loopback and link-local by default and allows private and public ranges', () => {
    const p = policy({});
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '169.254.169.254', 'fe80::1', '::ffff:127.0.0.1']) expect(p.allows(a), a).toBe(false);
    for (const a of ['10.1.2.3', '192.168.0.10', '172.16.5.5', '203.0.113.7', 'fd00::1', '2001:db8::1']) expect(p.allows(a), a).toBe(true);
  });

  it('allows loopback or link-local only when asked, and lets allowCIDRs override denyCIDRs', () => {
    expect(policy({ allowLoopback: true }).allows('127.0.0.1')).toBe(true);
    expect(policy({ allowLoopback: true }).allows('169.254.169.254')).toBe(false);
    expect(policy({ allowLinkLocal: true }).allows('169.254.169.254')).toBe(true);
    const p = policy({ denyCIDRs: ['10.0.0.0/8'], allowCIDRs: ['10.1.0.0/16', '169.254.170.2/32'] });
    expect(p.allows('10.2.3.4')).toBe(false);
    expect(p.allows('10.1.3.4')).toBe(true);
    expect(p.allows('169.254.170.2')).toBe(true);
    expect(p.allows('169.254.169.254')).toBe(false);
  });

  it('names the field of a CIDR that does not parse', () => {
    expect(() => policy({ denyCIDRs: ['10.0.0.0/8', '10.0.0/33'] })).toThrow(NetworkPolicyInvalidError);
    expect(() => policy({ denyCIDRs: ['10.0.0.0/8', 'nope'] })).toThrow(/dispatcher\.network\.denyCIDRs\[1\]/);
  });

  it('refuses a loopback target by default, by IP and by a name that resolves to loopback, without retrying', async () => {
    const r = await receiver();
    const config = Config.parse({
      nats: { subjectPrefix: PREFIX },
      targets: [
        { name: 'by-ip', watchURL: r.url, methods: ['*'] },
        { name: 'by-name', watchURL: `http://localhost:${r.port}/`, methods: ['*'] },
      ],
    });
    const d = await startDispatcher(nats.url, config);
    defer(() => d.close());
    await publish(d.nc, makeEvent());
    for (const target of ['by-ip', 'by-name']) {
      await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target, reason: 'address_refused' })) === 1);
      expect(await metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target, reason: 'address_refused' })).toBe(1);
    }
    expect(r.requests).toHaveLength(0);
  });

  it('refuses the link-local metadata address even when loopback is allowed', async () => {
    const config = Config.parse({
      nats: { subjectPrefix: PREFIX },
      dispatcher: { network: { allowLoopback: true } },
      targets: [{ name: 'metadata', watchURL: 'http://169.254.169.254/latest/meta-data/', methods: ['*'] }],
    });
    const d = await startDispatcher(nats.url, config);
    defer(() => d.close());
    await publish(d.nc, makeEvent());
    await eventually(
      async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'metadata', reason: 'address_refused' })) === 1,
    );
  });

  it('delivers to loopback when allowed by allowCIDRs', async () => {
    const r = await receiver();
    const config = Config.parse({
      nats: { subjectPrefix: PREFIX },
      dispatcher: { network: { allowCIDRs: ['127.0.0.1/32'] } },
      targets: [{ name: 'local', watchURL: r.url, methods: ['*'] }],
    });
    const d = await startDispatcher(nats.url, config);
    defer(() => d.close());
    await publish(d.nc, makeEvent());
    await r.waitFor(1);
  });
});

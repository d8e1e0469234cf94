import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../tools/stack/free-port.ts';
import { tempConfigFiles } from '../support/config-dir.ts';
import { makeCertificate } from '../support/tls.ts';

// `make validate CONFIG=FILE` checks what the services check at start-up, and the services refuse a bad file with
// the very same message and exit status. Before, the README's `node contract/validate-cli.ts FILE` failed on a fresh
// clone (system Node 20, no node_modules) and checked the schema alone.

const ROOT = join(import.meta.dirname, '../..');
const { file: configFile } = tempConfigFiles('rm-validate-');

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, timeout: options.timeout ?? 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

const validate = (path: string, env: NodeJS.ProcessEnv = process.env) => run('make', ['-s', 'validate', `CONFIG=${path}`], { env });

describe('make validate', () => {
  it('works from a fresh copy of the repository with the system node and no node_modules', { timeout: 240_000 }, async () => {
    const clone = mkdtempSync(join(tmpdir(), 'rm-fresh-'));
    try {
      const { stdout } = await promisify(execFile)('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 16 << 20 });
      for (const file of stdout.split('\0').filter(Boolean)) {
        mkdirSync(dirname(join(clone, file)), { recursive: true });
        cpSync(join(ROOT, file), join(clone, file), { errorOnExist: false, force: true, recursive: true });
      }
      // Whatever node comes first on a plain system PATH (Node 20 here), not the pinned one this test runs on.
      const env = { ...process.env, PATH: '/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin' };
      const r = await run('make', ['-s', 'validate', 'CONFIG=docs/examples/request-mirror.yaml'], { cwd: clone, env, timeout: 230_000 });
      expect(r.stderr + r.stdout, r.stderr).toContain('docs/examples/request-mirror.yaml: valid for the ingress-tap and the dispatcher (1 target)');
      expect(r.code).toBe(0);
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  });

  it('refuses with exit status 2 and says how when CONFIG is missing', async () => {
    const r = await run('make', ['-s', 'validate'], { env: { ...process.env, REQUEST_MIRROR_CONFIG: '' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('make validate: no config: pass CONFIG=FILE');
  });

  const tls = makeCertificate();
  const other = makeCertificate();
  afterAll(() => {
    tls.remove();
    other.remove();
  });
  const files = { cert: tls.certFile, key: tls.keyFile, otherKey: other.keyFile };

  it.each([
    ['the schema', 'targets: [{ name: a }]', ['RM_CONFIG_INVALID', 'targets[0].watchURL']],
    ['YAML syntax', 'targets: [', ['RM_CONFIG_UNREADABLE']],
    [
      'every missing signing secret, env and file',
      `targets:
  - { name: signed, watchURL: "http://x.example/", methods: ["*"], secrets: [{ env: RM_TEST_NO_SUCH_SECRET }, { file: /nonexistent/secret }] }`,
      ['RM_SECRET_UNAVAILABLE', 'targets[0] "signed": secrets[0]: environment variable RM_TEST_NO_SUCH_SECRET', 'secrets[1]: cannot read file /nonexistent/secret'],
    ],
    [
      'a CIDR that does not parse',
      `dispatcher: { network: { allowCIDRs: ["10.0.0.0/8"], denyCIDRs: ["10.0.0.0/33"] } }
targets: [{ name: a, watchURL: "http://x.example/", methods: ["*"] }]`,
      ['RM_NETWORK_POLICY_INVALID', 'dispatcher.network.denyCIDRs[0]'],
    ],
    [
      'a TLS certificate file that is missing',
      `tap: { forwardAuth: { tls: { certFile: /nonexistent/cert.pem, keyFile: ${files.key} } } }
targets: [{ name: a, watchURL: "http://x.example/", methods: ["*"] }]`,
      ['RM_TAP_TLS_UNUSABLE', 'tap.forwardAuth.tls.certFile /nonexistent/cert.pem'],
    ],
    [
      'a TLS key that belongs to another certificate',
      `tap: { mirror: { tls: { certFile: ${files.cert}, keyFile: ${files.otherKey} } } }
targets: [{ name: a, watchURL: "http://x.example/", methods: ["*"] }]`,
      ['RM_TAP_TLS_UNUSABLE', 'tap.mirror.tls.keyFile'],
    ],
    [
      'the NATS password variable that is not set and a NATS CA file that is missing, once each',
      `nats: { auth: { user: tap, password: { env: RM_TEST_NO_NATS_PASSWORD } }, tls: { caFile: /nonexistent/nats-ca.pem } }
targets: [{ name: a, watchURL: "http://x.example/", methods: ["*"] }]`,
      ['(2 errors, 0 warnings)', 'RM_SECRET_UNAVAILABLE: nats.auth.password: environment variable RM_TEST_NO_NATS_PASSWORD', 'RM_NATS_TLS_UNUSABLE: nats.tls.caFile /nonexistent/nats-ca.pem'],
    ],
  ])('exits 2 listing %s', async (_what, yaml, expected) => {
    const path = configFile(yaml);
    const r = await validate(path);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^make validate: config ${path} cannot be used \\(\\d errors?, \\d warnings?\\):\\n`));
    for (const text of expected) expect(r.stderr).toContain(text);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['127.0.0.1', 'http://127.0.0.1:9/hook', {}, 'dispatcher.network.allowLoopback: true'],
    ['localhost, resolved', 'http://localhost:9/hook', {}, 'dispatcher.network.allowLoopback: true'],
    ['::1', 'http://[::1]:9/hook', {}, 'dispatcher.network.allowLoopback: true'],
    ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]:9/hook', {}, 'dispatcher.network.allowLoopback: true'],
    ['the unspecified address', 'http://0.0.0.0:9/hook', {}, 'dispatcher.network.allowLoopback: true'],
    ['the cloud metadata address', 'http://169.254.169.254/latest', {}, 'dispatcher.network.allowLinkLocal: true'],
    ['IPv6 link-local', 'http://[fe80::1]/hook', {}, 'dispatcher.network.allowLinkLocal: true'],
    ['an address in denyCIDRs', 'http://203.0.113.9/hook', { denyCIDRs: ['203.0.113.0/24'] }, 'dispatcher.network.allowCIDRs: [203.0.113.9/32]'],
  ])('warns that the network policy refuses %s and names the setting that allows it', async (_what, url, network, setting) => {
    const path = configFile(`dispatcher: { network: ${JSON.stringify(network)} }\ntargets: [{ name: hook, watchURL: "${url}", methods: ["*"] }]`);
    const r = await validate(path);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${path}: valid for the ingress-tap and the dispatcher (1 target), 1 warning:`);
    expect(r.stdout).toContain(`warning RM_ADDRESS_REFUSED: targets[0] "hook": watchURL ${url}`);
    expect(r.stdout).toContain(`To allow it: ${setting}`);
  });

  it('does not warn about a target the policy allows', async () => {
    const path = configFile(`dispatcher: { network: { allowLoopback: true } }\ntargets: [{ name: hook, watchURL: "http://127.0.0.1:9/hook", methods: ["*"] }]`);
    const r = await validate(path);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${path}: valid for the ingress-tap and the dispatcher (1 target)\n`);
  });

  it('warns about an empty target list', async () => {
    const path = configFile('targets: []');
    const r = await validate(path);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${path}: valid for the ingress-tap and the dispatcher (0 targets), 1 warning:`);
    expect(r.stdout).toContain('warning RM_CONFIG_NO_TARGETS: targets is empty');
  });

  it('accepts a secret it can read', async () => {
    const path = configFile(`targets: [{ name: signed, watchURL: "http://x.example/", methods: ["*"], secrets: [{ env: RM_TEST_SECRET }] }]`);
    const r = await validate(path, { ...process.env, RM_TEST_SECRET: 'whsec_c2VjcmV0' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('a config the services cannot use', () => {
  const yaml = `dispatcher: { network: { denyCIDRs: ["300.0.0.0/8"] } }
targets: [{ name: signed, watchURL: "http://x.example/", methods: ["*"], secrets: [{ env: RM_TEST_NO_SUCH_SECRET }] }]`;

  it('stops the dispatcher and fails the validator with the same message and exit status 2', async () => {
    const path = configFile(yaml);
    const [validator, dispatcher, subcommand] = await Promise.all([
      run(process.execPath, ['tools/validate.ts', '--config', path]),
      run(process.execPath, ['dispatcher/main.ts', '--config', path]),
      run(process.execPath, ['dispatcher/main.ts', 'validate', '--config', path]),
    ]);
    for (const r of [validator, dispatcher, subcommand]) expect(r.code).toBe(2);
    const body = (r: Result) => r.stderr.slice(r.stderr.indexOf(': config '));
    expect(body(validator)).toContain('RM_SECRET_UNAVAILABLE');
    expect(body(validator)).toContain('RM_NETWORK_POLICY_INVALID');
    expect(body(dispatcher)).toBe(body(validator));
    expect(body(subcommand)).toBe(body(validator));
    expect(dispatcher.stderr).toMatch(/^dispatcher: config /);
  });

  it('stops the tap and fails the validator with the same message and exit status 2', async () => {
    const path = configFile(`tap: { forwardAuth: { tls: { certFile: /nonexistent/cert.pem, keyFile: /nonexistent/key.pem } } }\ntargets: []`);
    const [validator, tap, subcommand] = await Promise.all([
      run(process.execPath, ['tools/validate.ts', '--config', path]),
      run(process.execPath, ['ingress-tap/main.ts', '--config', path]),
      run(process.execPath, ['ingress-tap/main.ts', 'validate', '--config', path]),
    ]);
    for (const r of [validator, tap, subcommand]) expect(r.code).toBe(2);
    const body = (r: Result) => r.stderr.slice(r.stderr.indexOf(': config '));
    expect(body(validator)).toContain('error RM_TAP_TLS_UNUSABLE: tap.forwardAuth.tls.certFile /nonexistent/cert.pem');
    expect(body(validator)).toContain('warning RM_CONFIG_NO_TARGETS');
    expect(body(tap)).toBe(body(validator));
    expect(body(subcommand)).toBe(body(validator));
  });

  it('prints the network policy\'s warnings along with the other errors, from the validator and the dispatcher alike', async () => {
    const path = configFile(`targets: [{ name: signed, watchURL: "http://127.0.0.1:9/hook", methods: ["*"], secrets: [{ env: RM_TEST_NO_SUCH_SECRET }] }]`);
    const [validator, subcommand] = await Promise.all([
      run(process.execPath, ['tools/validate.ts', '--config', path]),
      run(process.execPath, ['dispatcher/main.ts', 'validate', '--config', path]),
    ]);
    for (const r of [validator, subcommand]) expect(r.code).toBe(2);
    const body = (r: Result) => r.stderr.slice(r.stderr.indexOf(': config '));
    expect(body(validator)).toContain('cannot be used (1 error, 1 warning):');
    expect(body(validator)).toContain('error RM_SECRET_UNAVAILABLE: targets[0] "signed": secrets[0]: environment variable RM_TEST_NO_SUCH_SECRET');
    expect(body(validator)).toContain('warning RM_ADDRESS_REFUSED: targets[0] "signed": watchURL http://127.0.0.1:9/hook');
    expect(body(subcommand)).toBe(body(validator));
  });

  it('judges no address when a CIDR of the network policy does not parse: that CIDR is the one finding', async () => {
    const path = configFile(`dispatcher: { network: { denyCIDRs: ["300.0.0.0/8"] } }\ntargets: [{ name: hook, watchURL: "http://127.0.0.1:9/hook", methods: ["*"] }]`);
    const r = await run(process.execPath, ['tools/validate.ts', '--config', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot be used (1 error, 0 warnings):');
    expect(r.stderr).toContain('error RM_NETWORK_POLICY_INVALID: dispatcher.network.denyCIDRs[0]');
  });

  it('refuses two tap listeners on one port, in the validator and at the tap\'s start-up alike, before any listen fails', async () => {
    const port = await freePort();
    const path = configFile(`tap: { forwardAuth: { host: 127.0.0.1, port: ${port} }, mirror: { host: 127.0.0.1, port: ${port} } }
targets: [{ name: a, watchURL: "http://x.example/", methods: ["*"] }]`);
    const [validator, tap] = await Promise.all([
      run(process.execPath, ['tools/validate.ts', '--config', path]),
      run(process.execPath, ['ingress-tap/main.ts', '--config', path], { env: { ...process.env, LOG_LEVEL: 'warn' } }),
    ]);
    for (const r of [validator, tap]) expect(r.code, r.stderr + r.stdout).toBe(2);
    const body = (r: Result) => r.stderr.slice(r.stderr.indexOf(': config '));
    expect(body(validator)).toContain('error RM_CONFIG_INVALID');
    expect(body(validator)).toContain(`port ${port} on host 127.0.0.1 is also tap.forwardAuth's (host 127.0.0.1)`);
    expect(body(validator)).toContain('at tap.mirror.port');
    expect(body(tap)).toBe(body(validator));
    expect(tap.stdout).not.toContain('RM_TAP_LISTEN_FAILED');
  });

  it('lets each service validate only its own part: the tap does not need the dispatcher\'s secrets', async () => {
    const path = configFile(yaml.replace('300.0.0.0/8', '10.0.0.0/8'));
    const tap = await run(process.execPath, ['ingress-tap/main.ts', 'validate', '--config', path]);
    expect(tap.stdout).toBe(`${path}: valid for the ingress-tap (1 target)\n`);
    expect(tap.code).toBe(0);
  });
});

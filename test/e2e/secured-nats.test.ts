import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ConfigInput } from '../../contract/config.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { readExample } from '../../tools/stack/examples.ts';
import { startHttpReceiver, type HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { startProcess, waitUntil, type ManagedProcess } from '../../tools/stack/process.ts';
import { natsJwtSetup } from '../support/nats-jwt.ts';
import { makeCertificate } from '../support/tls.ts';

// The ingress-tap and the dispatcher as production runs them (`node <service>/main.ts --config FILE`), against a
// real nats-server that requires credentials or TLS: a request the tap answers reaches the webhook, and what goes
// wrong (refused credentials, a missing secret) is visible where an operator looks: /readyz, the log, the exit code.

const ROOT = join(import.meta.dirname, '../..');
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Services {
  readonly tap: ManagedProcess;
  readonly dispatcher: ManagedProcess;
  readonly forwardAuth: string;
  readonly tapAdmin: string;
  readonly dispatcherAdmin: string;
}

function writeConfig(nats: NonNullable<ConfigInput['nats']>, receiver: HttpReceiver, ports: readonly number[]): string {
  const [fa = 0, mirror = 0, tapAdmin = 0, dispatcherAdmin = 0] = ports;
  const dir = mkdtempSync(join(tmpdir(), 'rm-secured-nats-'));
  cleanup.add(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const config: ConfigInput = {
    nats: { reconnectTimeWaitMs: 100, ...nats },
    tap: {
      forwardAuth: { host: '127.0.0.1', port: fa },
      mirror: { host: '127.0.0.1', port: mirror },
      plugin: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: tapAdmin },
    },
    dispatcher: { admin: { host: '127.0.0.1', port: dispatcherAdmin }, network: { allowLoopback: true } },
    targets: [{ name: 'audit', watchURL: `${receiver.url}/audit`, methods: ['*'] }],
  };
  const path = join(dir, 'request-mirror.yaml');
  // JSON is YAML.
  writeFileSync(path, JSON.stringify(config));
  return path;
}

function run(service: 'ingress-tap' | 'dispatcher', configPath: string, env: Record<string, string>): ManagedProcess {
  const child = startProcess({
    name: service,
    command: process.execPath,
    args: [join(ROOT, `${service}/main.ts`), '--config', configPath],
    env: { ...process.env, NATS_URL: '', LOG_LEVEL: 'info', ...env },
    cwd: ROOT,
  });
  cleanup.add(() => child.stop());
  return child;
}

/** Both services on `nats` (its url set to `server`'s), delivering to `receiver`. */
async function startServices(server: NatsServer, nats: NonNullable<ConfigInput['nats']>, receiver: HttpReceiver, env: Record<string, string> = {}): Promise<Services> {
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  const configPath = writeConfig({ url: server.url, ...nats }, receiver, ports);
  const [fa, , tapAdmin, dispatcherAdmin] = ports;
  return {
    tap: run('ingress-tap', configPath, env),
    dispatcher: run('dispatcher', configPath, env),
    forwardAuth: `http://127.0.0.1:${fa}/`,
    tapAdmin: `http://127.0.0.1:${tapAdmin}`,
    dispatcherAdmin: `http://127.0.0.1:${dispatcherAdmin}`,
  };
}

async function get(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}

async function ready(s: Services): Promise<void> {
  await waitUntil('the tap to be ready', async () => (await get(`${s.tapAdmin}/readyz`))?.status === 200, { process: s.tap, timeoutMs: 30_000 });
  await waitUntil('the dispatcher to be ready', async () => (await get(`${s.dispatcherAdmin}/readyz`))?.status === 200, { process: s.dispatcher, timeoutMs: 30_000 });
}

const forwardAuth = (s: Services, path: string) =>
  fetch(s.forwardAuth, { headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': path, 'x-forwarded-host': 'shop.example', 'x-forwarded-proto': 'https' } });

async function deliversThrough(s: Services, receiver: HttpReceiver): Promise<void> {
  await ready(s);
  expect((await forwardAuth(s, '/orders/1')).status).toBe(200);
  const [delivered] = await receiver.waitFor(1, 20_000);
  expect(JSON.parse(delivered?.body.toString() ?? '{}')).toMatchObject({ data: { host: 'shop.example', path: '/orders/1' } });
}

/** The value of one series of the tap's or dispatcher's /metrics; 0 when absent. */
async function metric(admin: string, series: string): Promise<number> {
  const body = (await get(`${admin}/metrics`))?.body ?? '';
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return Number(line?.split(' ')[1] ?? 0);
}

/** The sum of every series of `name` (all its labels) in a /metrics; 0 when it has none. */
async function sumOf(admin: string, name: string): Promise<number> {
  const body = (await get(`${admin}/metrics`))?.body ?? '';
  return body
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((total, l) => total + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** pino lines of `child` with message `msg`. */
const logLines = (child: ManagedProcess, msg: string) =>
  child
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; level: number; err?: { code?: string; message?: string } })
    .filter((l) => l.msg === msg);

async function receiver(): Promise<HttpReceiver> {
  const r = await startHttpReceiver();
  cleanup.add(() => r.close());
  return r;
}

async function natsServer(extraConfig: string[], env: Record<string, string> = {}): Promise<NatsServer> {
  const server = await startNatsServer({ extraConfig, env });
  cleanup.add(() => server.stop());
  return server;
}

describe('services on a secured NATS', () => {
  it('deliver through a NATS that requires a user and password, the password from an environment variable', async () => {
    const server = await natsServer(['authorization {', '  user: request-mirror', '  password: "pw-123"', '}']);
    const r = await receiver();
    const s = await startServices(server, { auth: { user: 'request-mirror', password: { env: 'NATS_PASSWORD' } } }, r, { NATS_PASSWORD: 'pw-123' });
    await deliversThrough(s, r);
  });

  it('deliver through a NATS that requires a token, read from a mounted file', async () => {
    const server = await natsServer(['authorization {', '  token: "t0ken-abc"', '}']);
    const r = await receiver();
    const dir = mkdtempSync(join(tmpdir(), 'rm-token-'));
    cleanup.add(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    writeFileSync(join(dir, 'token'), 't0ken-abc\n');
    const s = await startServices(server, { auth: { token: { file: join(dir, 'token') } } }, r);
    await deliversThrough(s, r);
  });

  it('deliver through a NATS in operator (JWT) mode with a user\'s .creds file', async () => {
    const setup = natsJwtSetup('request-mirror');
    const server = await natsServer(setup.serverConfig);
    const r = await receiver();
    const dir = mkdtempSync(join(tmpdir(), 'rm-creds-'));
    cleanup.add(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    writeFileSync(join(dir, 'user.creds'), setup.creds);
    const s = await startServices(server, { auth: { credsFile: join(dir, 'user.creds') } }, r);
    await deliversThrough(s, r);
  });

  it('deliver through a NATS that lists a user nkey, with its seed from a mounted file', async () => {
    const user = nkeys.createUser();
    const server = await natsServer(['authorization {', `  users: [ { nkey: ${user.getPublicKey()} } ]`, '}']);
    const r = await receiver();
    const dir = mkdtempSync(join(tmpdir(), 'rm-nkey-'));
    cleanup.add(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    writeFileSync(join(dir, 'user.nk'), `${new TextDecoder().decode(user.getSeed())}\n`);
    const s = await startServices(server, { auth: { nkeySeedFile: join(dir, 'user.nk') } }, r);
    await deliversThrough(s, r);
  });

  it('deliver over TLS to a NATS whose certificate a private CA issued, presenting a client certificate (mutual TLS)', async () => {
    const serverCert = makeCertificate();
    const clientCert = makeCertificate();
    cleanup.add(() => { serverCert.remove(); });
    cleanup.add(() => { clientCert.remove(); });
    const server = await natsServer(['tls {', `  cert_file: "${serverCert.certFile}"`, `  key_file: "${serverCert.keyFile}"`, `  ca_file: "${clientCert.certFile}"`, '  verify: true', '}']);
    const r = await receiver();
    const s = await startServices(server, { tls: { caFile: serverCert.certFile, certFile: clientCert.certFile, keyFile: clientCert.keyFile } }, r);
    await deliversThrough(s, r);
  });

  it('with a wrong password: not ready naming the refusal, logged once while retrying; the tap answers 200 and counts its drops', async () => {
    const server = await natsServer(['authorization {', '  user: request-mirror', '  password: "right"', '}']);
    const r = await receiver();
    const s = await startServices(server, { auth: { user: 'request-mirror', password: { env: 'NATS_PASSWORD' } } }, r, { NATS_PASSWORD: 'wrong' });
    const refused = 'nats: the NATS server refused the credentials: Authorization Violation';
    for (const admin of [s.tapAdmin, s.dispatcherAdmin]) {
      await waitUntil(`${admin}/readyz to name the refusal`, async () => (await get(`${admin}/readyz`))?.body.includes(refused) === true, { timeoutMs: 30_000 });
      expect((await get(`${admin}/readyz`))?.status).toBe(503);
    }
    // Both keep trying (nats-server logs each refused login: two services, several rounds each), and say so once.
    await waitUntil('six refused logins', () => Promise.resolve(server.output().split('authentication error').length > 6), { timeoutMs: 30_000 });
    for (const child of [s.tap, s.dispatcher]) {
      expect(logLines(child, 'cannot connect to NATS; retrying').map((l) => [l.level, l.err?.code])).toEqual([[50, 'RM_NATS_AUTH_FAILED']]);
    }
    for (const path of ['/a', '/b', '/c']) expect((await forwardAuth(s, path)).status).toBe(200);
    await waitUntil('3 drops counted', async () => (await metric(s.tapAdmin, 'request_mirror_tap_events_dropped_total{reason="nats_disconnected"}')) === 3);
    expect(r.requests).toHaveLength(0);
  });

  it('through a NATS restarted refusing their password for a while: both not ready meanwhile, naming the refusal once; the tap answers 200 and accounts for every request; both deliver again once it takes the password', async () => {
    const port = await freePort();
    const requiring = (password: string) => ['authorization {', '  user: request-mirror', `  password: "${password}"`, '}'];
    let server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    cleanup.add(() => server.stop());
    const r = await receiver();
    const s = await startServices(server, { auth: { user: 'request-mirror', password: { env: 'NATS_PASSWORD' } } }, r, { NATS_PASSWORD: 'pw-1' });
    await deliversThrough(s, r);

    process.kill(server.pid, 'SIGKILL');
    await server.stop();
    server = await startNatsServer({ port, extraConfig: requiring('pw-2') });
    const refused = 'nats: the NATS server refused the credentials: Authorization Violation';
    for (const admin of [s.tapAdmin, s.dispatcherAdmin]) {
      await waitUntil(`${admin}/readyz to name the refusal`, async () => (await get(`${admin}/readyz`))?.body.includes(refused) === true, { timeoutMs: 30_000 });
      expect((await get(`${admin}/readyz`))?.status).toBe(503);
    }
    await waitUntil('six refused logins', () => Promise.resolve(server.output().split('authentication error').length > 6), { timeoutMs: 30_000 });
    for (const path of ['/a', '/b', '/c']) expect((await forwardAuth(s, path)).status).toBe(200);

    process.kill(server.pid, 'SIGKILL');
    await server.stop();
    server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    await ready(s);
    for (const child of [s.tap, s.dispatcher]) {
      expect(logLines(child, 'cannot connect to NATS; retrying').map((l) => [l.level, l.err?.code])).toEqual([[50, 'RM_NATS_AUTH_FAILED']]);
    }
    expect((await forwardAuth(s, '/orders/2')).status).toBe(200);
    await r.waitFor(2, 20_000);
    expect(r.requests.map((q) => (JSON.parse(q.body.toString()) as { data: { path: string } }).data.path)).toEqual(['/orders/1', '/orders/2']);
    // docs/ingress-tap.md: received − skipped = published + dropped, the three refused ones dropped as nats_disconnected.
    await waitUntil('every request accounted for', async () => (await metric(s.tapAdmin, 'request_mirror_tap_events_published_total')) === 2);
    expect(await sumOf(s.tapAdmin, 'request_mirror_tap_requests_received_total')).toBe(5);
    expect(await sumOf(s.tapAdmin, 'request_mirror_tap_requests_skipped_total')).toBe(0);
    expect(await metric(s.tapAdmin, 'request_mirror_tap_events_dropped_total{reason="nats_disconnected"}')).toBe(3);
    expect(await sumOf(s.tapAdmin, 'request_mirror_tap_events_dropped_total')).toBe(3);
  });

  it('with a NATS user that may neither publish nor subscribe on the events subjects: the tap counts every event as dropped (permission_denied), none as published; the dispatcher stays not ready', async () => {
    const server = await natsServer([
      'authorization {',
      '  users: [ { user: request-mirror, password: "pw", permissions: { publish: { deny: "request-mirror.>" }, subscribe: { deny: "request-mirror.>" } } } ]',
      '}',
    ]);
    const r = await receiver();
    const s = await startServices(server, { auth: { user: 'request-mirror', password: { env: 'NATS_PASSWORD' } } }, r, { NATS_PASSWORD: 'pw' });
    await waitUntil('the tap to be ready', async () => (await get(`${s.tapAdmin}/readyz`))?.status === 200, { process: s.tap, timeoutMs: 30_000 });
    const paths = ['/a', '/b', '/c', '/d', '/e'];
    for (const path of paths) expect((await forwardAuth(s, path)).status).toBe(200);
    await waitUntil('5 refused events counted', async () => (await metric(s.tapAdmin, 'request_mirror_tap_events_dropped_total{reason="permission_denied"}')) === paths.length);
    expect(await metric(s.tapAdmin, 'request_mirror_tap_events_published_total')).toBe(0);
    expect(logLines(s.tap, 'NATS refused a publish; its events are dropped (permission_denied)').map((l) => l.err?.code)).toEqual(['RM_NATS_PERMISSION_DENIED']);
    expect((await get(`${s.tapAdmin}/readyz`))?.body).toContain('nats: the server refuses publishes to request-mirror.requests.GET');

    await waitUntil('the refused subscription counted', async () => (await metric(s.dispatcherAdmin, 'request_mirror_dispatcher_nats_permission_denied_total')) === 1, { timeoutMs: 30_000 });
    const readyz = await get(`${s.dispatcherAdmin}/readyz`);
    expect(readyz?.status).toBe(503);
    expect(readyz?.body).toMatch(/^nats: the NATS server refused the subscription to request-mirror\.requests\.> \(queue group request-mirror-dispatchers\)/m);
    expect(logLines(s.dispatcher, 'subscription refused; receiving nothing').map((l) => l.err?.code)).toEqual(['RM_NATS_PERMISSION_DENIED']);
    expect(r.requests).toHaveLength(0);
  });

  it('fail to start, exit status 2 with RM_SECRET_UNAVAILABLE, when the password variable is not set', async () => {
    const server = await natsServer(['authorization {', '  user: request-mirror', '  password: "right"', '}']);
    const r = await receiver();
    const s = await startServices(server, { auth: { user: 'request-mirror', password: { env: 'RM_TEST_UNSET_NATS_PASSWORD' } } }, r);
    for (const child of [s.tap, s.dispatcher]) {
      expect(await child.exit).toBe(2);
      expect(child.output()).toContain('error RM_SECRET_UNAVAILABLE: nats.auth.password: environment variable RM_TEST_UNSET_NATS_PASSWORD is not set or empty');
    }
  });
});

describe('docs/scaling.md, "Connecting to a secured NATS"', () => {
  const section = readFileSync(join(ROOT, 'docs/scaling.md'), 'utf8').split('## Connecting to a secured NATS')[1] ?? '';

  it('embeds each example file verbatim', () => {
    const blocks = [...section.matchAll(/<!-- embed: (\S+) -->\n```[a-z]*\n([\s\S]*?)```/g)];
    expect(blocks.map((b) => b[1])).toEqual(['docs/examples/request-mirror-secured-nats.yaml', 'docs/examples/nats-secured.conf']);
    for (const [, path, body] of blocks) expect(body, path).toBe(readFileSync(join(ROOT, path ?? ''), 'utf8'));
  });

  it('delivers with the example config against the example nats-server config, only file paths and the address changed', async () => {
    const cert = makeCertificate();
    cleanup.add(() => { cert.remove(); });
    const serverConf = readExample('nats-secured.conf')
      .replaceAll('/etc/nats/tls/tls.crt', cert.certFile)
      .replaceAll('/etc/nats/tls/tls.key', cert.keyFile)
      .split('\n')
      // startNatsServer picks the port; max_payload is its own default already.
      .filter((line) => !/^(port|max_payload):/.test(line));
    const server = await natsServer(serverConf, { NATS_PASSWORD: 'example-pw' });
    const { nats } = parse(readExample('request-mirror-secured-nats.yaml').replaceAll('/etc/request-mirror/nats-tls/ca.crt', cert.certFile)) as {
      nats: NonNullable<ConfigInput['nats']>;
    };
    expect(nats.url).toBe('nats://nats:4222');
    const r = await receiver();
    const s = await startServices(server, { ...nats, url: server.url }, r, { NATS_PASSWORD: 'example-pw' });
    await deliversThrough(s, r);
  });
});

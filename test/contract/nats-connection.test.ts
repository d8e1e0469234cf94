import { connect, errors, nkeys, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { Config, type ConfigInput } from '../../contract/config.ts';
import { natsUrlProblems } from '../../contract/config.ts';
import type { RequestMirrorError } from '../../contract/errors.ts';
import { connectWhenUp, followOutages, natsConnectionOptions } from '../../contract/nats-connection.ts';
import { resolveNatsCredentials } from '../../contract/nats-credentials.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { waitUntil } from '../../tools/stack/process.ts';
import { natsJwtSetup } from '../support/nats-jwt.ts';
import { makeCertificate } from '../support/tls.ts';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** `promise`'s value, or a rejection naming `what` if it has not settled within `ms`. */
async function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} did not happen within ${String(ms)} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe('nats connection options', () => {
  it('takes every comma-separated seed of nats.url, ignoring blanks and spaces', () => {
    const config = Config.parse({ nats: { url: ' nats://127.0.0.1:1, ,127.0.0.1:2 ,' } });
    expect(natsConnectionOptions(config.nats, 'x').servers).toEqual(['nats://127.0.0.1:1', '127.0.0.1:2']);
  });

  it('refuses a nats.url that names no server', () => {
    const parsed = Config.safeParse({ nats: { url: ' , ' } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['nats', 'url']);
  });

  it('refuses a nats.url entry the client cannot dial as host[:port], naming the entry', () => {
    for (const url of ['http//nats:4222', 'nats://nats:99999', 'a b', 'nats://127.0.0.1:1,nats://x:4222/path', 'nats://x?y=1']) {
      const parsed = Config.safeParse({ nats: { url } });
      expect(parsed.success, url).toBe(false);
      expect(parsed.error?.issues[0]?.path).toEqual(['nats', 'url']);
      expect(parsed.error?.issues[0]?.message).toMatch(/is not a server address: write \[nats:\/\/\]host\[:port\]/);
    }
    expect(natsUrlProblems('http//nats:4222')[0]).toContain('"http//nats:4222"');
    for (const url of ['nats://nats:4222', '127.0.0.1:2', 'nats', 'tls://nats:4222/', 'nats://u:p@nats:4222', 'nats://[::1]:4222']) {
      expect(Config.safeParse({ nats: { url } }).success, url).toBe(true);
    }
  });

  it('keeps the servers a cluster announces (cluster updates on) and carries the ping and reconnect settings', () => {
    const config = Config.parse({ nats: { pingIntervalMs: 300, maxPingsOutstanding: 3, reconnectTimeWaitMs: 50 } });
    const options = natsConnectionOptions(config.nats, 'x');
    expect(options.ignoreClusterUpdates).toBeUndefined();
    expect(options).toMatchObject({ pingInterval: 300, maxPingOut: 3, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  });

  it('connects through the next seed when the first one is down', async () => {
    const dead = await freePort();
    const nats = await startNatsServer();
    cleanup.add(() => nats.stop());
    const config = Config.parse({ nats: { url: `nats://127.0.0.1:${dead},${nats.url}` } });
    const nc = await connect(natsConnectionOptions(config.nats, 'seed-test'));
    cleanup.add(() => nc.close());
    expect(nc.getServer()).toBe(`127.0.0.1:${nats.port}`);
  });

  it('waits for a server that is not up yet at start-up, reporting the refused connection once', async () => {
    const port = await freePort();
    const config = Config.parse({ nats: { url: `nats://127.0.0.1:${port}`, reconnectTimeWaitMs: 50 } });
    const failures: RequestMirrorError[] = [];
    const first = connectWhenUp(natsConnectionOptions(config.nats, 'late-server'), config.nats.reconnectTimeWaitMs, (e) => void failures.push(e));
    cleanup.add(() => { first.stop(); });
    await waitUntil('a refused round', () => Promise.resolve(failures.length > 0));
    const nats = await startNatsServer({ port });
    cleanup.add(() => nats.stop());
    const nc = await first.connection;
    if (nc) cleanup.add(() => nc.close());
    expect(nc?.getServer()).toBe(`127.0.0.1:${port}`);
    expect(failures.map((f) => f.code)).toEqual(['RM_NATS_CONNECT_FAILED']);
    // The client's own error stays attached, as `cause`, under our message.
    const cause = failures[0]?.cause;
    expect(cause).toBeInstanceOf(Error);
    expect(failures[0]?.message).toBe(`cannot connect to NATS: ${(cause as Error).message}`);
  });

  it('passes a user and password only when a user is given, and a token only when a token is given', () => {
    const { nats } = Config.parse({});
    const keys = (credentials: Parameters<typeof natsConnectionOptions>[2]) => Object.keys(natsConnectionOptions(nats, 'x', credentials));
    expect(keys({ token: 't0ken' })).toContain('token');
    expect(keys({ token: 't0ken' })).not.toContain('user');
    expect(keys({ token: 't0ken' })).not.toContain('pass');
    expect(keys({ user: 'tap', pass: 's3cret' })).toEqual(expect.arrayContaining(['user', 'pass']));
    expect(keys({ user: 'tap', pass: 's3cret' })).not.toContain('token');
    expect(keys({})).not.toContain('user');
    expect(keys({})).not.toContain('token');
  });

  it('stopped while it waits between attempts, wakes at once and gives no connection', async () => {
    const port = await freePort();
    const config = Config.parse({ nats: { url: `nats://127.0.0.1:${port}` } });
    const failures: RequestMirrorError[] = [];
    const first = connectWhenUp(natsConnectionOptions(config.nats, 'stopped-waiting'), 30_000, (e) => void failures.push(e));
    cleanup.add(() => { first.stop(); });
    await waitUntil('a refused round', () => Promise.resolve(failures.length > 0));
    first.stop();
    // The next attempt is 30 s away: settling well before it means the wait was cut short.
    expect(await within('the stopped connection', first.connection, 5_000)).toBeUndefined();
    expect(failures).toHaveLength(1);

  });

  it('stopped while a connection attempt is in flight, closes the connection that arrives and gives none', async () => {
    // debug: the server logs each client connection closing.
    const nats = await startNatsServer({ extraConfig: ['debug: true'] });
    cleanup.add(() => nats.stop());
    const config = Config.parse({ nats: { url: nats.url } });
    const first = connectWhenUp(natsConnectionOptions(config.nats, 'stopped-in-flight'), 50, () => undefined);
    // connectWhenUp called connect() before returning; that attempt has not completed yet.
    first.stop();
    expect(await within('the stopped connection', first.connection, 10_000)).toBeUndefined();
    await waitUntil('the arrived connection closed', () => Promise.resolve(/"[^"]*stopped-in-flight" - Client connection closed/.test(nats.output())), { timeoutMs: 10_000 });
  });
});

/** A nats-server requiring `authorization`, as the line list of its block. */
const requiring = (...lines: string[]) => ['authorization {', ...lines.map((l) => `  ${l}`), '}'];

/** Connects as the services do, with `nats` (its url pointing at `server`) resolved from `env`. */
async function connectAs(server: NatsServer, input: NonNullable<ConfigInput['nats']>, env: Record<string, string> = {}): Promise<NatsConnection> {
  const { nats } = Config.parse({ nats: { url: server.url, ...input } });
  const { credentials, findings } = resolveNatsCredentials(nats, { env, readFile: () => '' });
  expect(findings).toEqual([]);
  const nc = await connect(natsConnectionOptions(nats, 'auth-test', credentials));
  cleanup.add(() => nc.close());
  return nc;
}

/** A message sent through `nc` comes back to it: the server took the connection as authorised for both. */
async function roundTrip(nc: NatsConnection): Promise<string> {
  const sub = nc.subscribe('request-mirror.requests.GET', { max: 1 });
  nc.publish('request-mirror.requests.GET', 'hello');
  for await (const m of sub) return m.string();
  return '';
}

describe('nats connection to a secured server', () => {
  it('logs in with a user and the password from its variable', async () => {
    const server = await startNatsServer({ extraConfig: requiring('user: tap', 'password: "s3cret"') });
    cleanup.add(() => server.stop());
    const nc = await connectAs(server, { auth: { user: 'tap', password: { env: 'NATS_PASSWORD' } } }, { NATS_PASSWORD: 's3cret' });
    expect(await roundTrip(nc)).toBe('hello');
  });

  it('logs in with a token', async () => {
    const server = await startNatsServer({ extraConfig: requiring('token: "t0ken"') });
    cleanup.add(() => server.stop());
    const nc = await connectAs(server, { auth: { token: { env: 'NATS_TOKEN' } } }, { NATS_TOKEN: 't0ken' });
    expect(await roundTrip(nc)).toBe('hello');
  });

  it('logs in with an nkey seed to a server that lists the user\'s public key, and not with another seed', async () => {
    const user = nkeys.createUser();
    const server = await startNatsServer({ extraConfig: requiring(`users: [ { nkey: ${user.getPublicKey()} } ]`) });
    cleanup.add(() => server.stop());
    const as = (seed: Uint8Array) => {
      const { nats } = Config.parse({ nats: { url: server.url, auth: { nkeySeedFile: 'user.nk' } } });
      const { credentials } = resolveNatsCredentials(nats, { env: {}, readFile: () => new TextDecoder().decode(seed) });
      return connect(natsConnectionOptions(nats, 'nkey-test', credentials));
    };
    const nc = await as(user.getSeed());
    cleanup.add(() => nc.close());
    expect(await roundTrip(nc)).toBe('hello');
    await expect(as(nkeys.createUser().getSeed())).rejects.toThrow(/Authorization Violation/);
  });

  it('logs in with a .creds file to a server in operator (JWT) mode', async () => {
    const setup = natsJwtSetup('tap');
    const server = await startNatsServer({ extraConfig: setup.serverConfig });
    cleanup.add(() => server.stop());
    const { nats } = Config.parse({ nats: { url: server.url, auth: { credsFile: '/etc/request-mirror/nats/user.creds' } } });
    const { credentials } = resolveNatsCredentials(nats, { env: {}, readFile: () => setup.creds });
    const nc = await connect(natsConnectionOptions(nats, 'creds-test', credentials));
    cleanup.add(() => nc.close());
    expect(await roundTrip(nc)).toBe('hello');
    // Another operator's user is refused: the server did check the JWT.
    const { nats: other } = Config.parse({ nats: { url: server.url, auth: { credsFile: 'other.creds' } } });
    const stranger = resolveNatsCredentials(other, { env: {}, readFile: () => natsJwtSetup('tap').creds }).credentials;
    await expect(connect(natsConnectionOptions(other, 'creds-test', stranger))).rejects.toThrow(/Authorization Violation/);
  });

  it('connects over TLS to a server whose certificate a private CA issued, presenting its own certificate to a server that verifies clients', async () => {
    const serverCert = makeCertificate();
    const clientCert = makeCertificate();
    cleanup.add(() => { serverCert.remove(); });
    cleanup.add(() => { clientCert.remove(); });
    const server = await startNatsServer({
      extraConfig: ['tls {', `  cert_file: "${serverCert.certFile}"`, `  key_file: "${serverCert.keyFile}"`, `  ca_file: "${clientCert.certFile}"`, '  verify: true', '}'],
    });
    cleanup.add(() => server.stop());
    const nc = await connectAs(server, { tls: { caFile: serverCert.certFile, certFile: clientCert.certFile, keyFile: clientCert.keyFile } });
    expect(await roundTrip(nc)).toBe('hello');
  });

  it('refuses a server whose certificate the configured CA did not issue, as RM_NATS_CONNECT_FAILED', async () => {
    const serverCert = makeCertificate();
    const otherCa = makeCertificate();
    cleanup.add(() => { serverCert.remove(); });
    cleanup.add(() => { otherCa.remove(); });
    const server = await startNatsServer({ extraConfig: ['tls {', `  cert_file: "${serverCert.certFile}"`, `  key_file: "${serverCert.keyFile}"`, '}'] });
    cleanup.add(() => server.stop());
    const { nats } = Config.parse({ nats: { url: server.url, tls: { caFile: otherCa.certFile }, reconnectTimeWaitMs: 50 } });
    const failures: RequestMirrorError[] = [];
    const first = connectWhenUp(natsConnectionOptions(nats, 'tls-test', resolveNatsCredentials(nats).credentials), 50, (e) => void failures.push(e));
    cleanup.add(() => { first.stop(); });
    await waitUntil('a failed round', () => Promise.resolve(failures.length > 0));
    expect(failures[0]?.code).toBe('RM_NATS_CONNECT_FAILED');
    expect(failures[0]?.message).toMatch(/^cannot connect to NATS: .*(self.signed|certificate)/i);
  });

  it('uses TLS without nats.tls when the server offers it, and with nats.tls refuses a server that does not', async () => {
    const serverCert = makeCertificate();
    cleanup.add(() => { serverCert.remove(); });
    const tlsServer = await startNatsServer({ extraConfig: ['tls {', `  cert_file: "${serverCert.certFile}"`, `  key_file: "${serverCert.keyFile}"`, '}'] });
    cleanup.add(() => tlsServer.stop());
    const plainServer = await startNatsServer();
    cleanup.add(() => plainServer.stop());
    const firstFailure = async (url: string, tls: NonNullable<ConfigInput['nats']>['tls']) => {
      const { nats } = Config.parse({ nats: { url, tls } });
      const failures: RequestMirrorError[] = [];
      const first = connectWhenUp(natsConnectionOptions(nats, 'tls-test', resolveNatsCredentials(nats).credentials), 50, (e) => void failures.push(e));
      cleanup.add(() => { first.stop(); });
      await waitUntil('a failed round', () => Promise.resolve(failures.length > 0));
      return failures[0]?.message;
    };
    // Verified against the system CAs, which did not issue the test certificate: so TLS was used.
    expect(await firstFailure(tlsServer.url, undefined)).toMatch(/^cannot connect to NATS: .*self.signed/i);
    expect(await firstFailure(plainServer.url, {})).toBe("cannot connect to NATS: server does not support 'tls'");
  });

  it('reports refused credentials once as RM_NATS_AUTH_FAILED while it keeps retrying, and connects once the server accepts them', async () => {
    const port = await freePort();
    const wrong = await startNatsServer({ port, extraConfig: requiring('user: tap', 'password: "other"') });
    let stopWrong = () => wrong.stop();
    cleanup.add(() => stopWrong());
    const { nats } = Config.parse({ nats: { url: wrong.url, auth: { user: 'tap', password: { env: 'P' } }, reconnectTimeWaitMs: 50 } });
    const { credentials } = resolveNatsCredentials(nats, { env: { P: 's3cret' }, readFile: () => '' });
    const failures: RequestMirrorError[] = [];
    const first = connectWhenUp(natsConnectionOptions(nats, 'auth-test', credentials), 50, (e) => void failures.push(e));
    cleanup.add(() => { first.stop(); });
    // nats-server logs each refused login: three of them are three rounds.
    await waitUntil('three refused logins', () => Promise.resolve(wrong.output().split('authentication error').length > 3), { timeoutMs: 20_000 });
    expect(failures.map((f) => [f.code, f.message])).toEqual([['RM_NATS_AUTH_FAILED', 'the NATS server refused the credentials: Authorization Violation']]);
    await wrong.stop();
    const right = await startNatsServer({ port, extraConfig: requiring('user: tap', 'password: "s3cret"') });
    stopWrong = () => right.stop();
    const nc = await first.connection;
    if (nc) cleanup.add(() => nc.close());
    expect(nc && (await roundTrip(nc))).toBe('hello');
  });

  it('does not take credentials from nats.url: the client never sends them', async () => {
    const server = await startNatsServer({ extraConfig: requiring('user: tap', 'password: "s3cret"') });
    cleanup.add(() => server.stop());
    const { nats } = Config.parse({ nats: { url: `nats://tap:s3cret@127.0.0.1:${server.port}` } });
    const failures: RequestMirrorError[] = [];
    const first = connectWhenUp(natsConnectionOptions(nats, 'url-test'), 50, (e) => void failures.push(e));
    cleanup.add(() => { first.stop(); });
    await waitUntil('a refused login', () => Promise.resolve(failures.length > 0));
    expect(failures[0]?.code).toBe('RM_NATS_AUTH_FAILED');
    expect(failures[0]?.cause).toBeInstanceOf(errors.AuthorizationError);
  });

  it('keeps reconnecting through repeated refused logins after a connection was up (ignoreAuthErrorAbort), and is back once the server takes the credentials again', async () => {
    const port = await freePort();
    const serve = (password: string) => startNatsServer({ port, extraConfig: requiring('user: tap', `password: "${password}"`) });
    let server = await serve('s3cret');
    cleanup.add(() => server.stop());
    const nc = await connectAs(server, { auth: { user: 'tap', password: { env: 'P' } }, reconnectTimeWaitMs: 50 }, { P: 's3cret' });
    let reconnected = false;
    void (async () => {
      for await (const status of nc.status()) if (status.type === 'reconnect') reconnected = true;
    })();
    await server.stop();
    server = await serve('rotated');
    // nats.js gives up for good at the second refusal in a row unless told to ignore them.
    await waitUntil('three refused logins', () => Promise.resolve(server.output().split('authentication error').length > 3), { timeoutMs: 20_000 });
    await server.stop();
    server = await serve('s3cret');
    expect(nc.isClosed()).toBe(false);
    await waitUntil('the reconnection', () => Promise.resolve(reconnected), { timeoutMs: 20_000 });
    expect(await within('a round trip after the reconnection', roundTrip(nc), 20_000)).toBe('hello');
  });
});

describe('nats connection outages', () => {
  it('reports each outage once (lost, then the first refusal, then back) however many refused attempts nats.js reports, and the next outage afresh', async () => {
    const port = await freePort();
    const serve = (password: string) => startNatsServer({ port, extraConfig: requiring('user: tap', `password: "${password}"`) });
    let server = await serve('s3cret');
    cleanup.add(() => server.stop());
    const nc = await connectAs(server, { auth: { user: 'tap', password: { env: 'P' } }, reconnectTimeWaitMs: 50 }, { P: 's3cret' });
    const told: string[] = [];
    const others: string[] = [];
    const following = followOutages(nc, {
      lost: (at) => void told.push(`lost ${at}`),
      back: (at) => void told.push(`back ${at}`),
      refused: (error) => void told.push(`refused ${error.code}: ${error.message}`),
      other: (status) => void others.push(status.type),
    });
    const at = `127.0.0.1:${port}`;
    const refusals = () => server.output().split('authentication error').length - 1;
    const outage = async () => {
      await server.stop();
      server = await serve('rotated');
      await waitUntil('three refused logins', () => Promise.resolve(refusals() >= 3), { timeoutMs: 20_000 });
      await server.stop();
      server = await serve('s3cret');
      await waitUntil('the connection back', () => Promise.resolve(told.at(-1)?.startsWith('back') === true), { timeoutMs: 20_000 });
    };
    const once = [`lost ${at}`, 'refused RM_NATS_AUTH_FAILED: the NATS server refused the credentials: Authorization Violation', `back ${at}`];
    await outage();
    expect(told).toEqual(once);
    await outage();
    expect(told).toEqual([...once, ...once]);
    // What is folded is not passed on; the rest is.
    expect(others).not.toContain('disconnect');
    expect(others).not.toContain('reconnect');
    expect(others).toContain('reconnecting');
    await nc.close();
    await within('the end of the status reports', following, 5_000);
    expect(others.at(-1)).toBe('close');
  });
});

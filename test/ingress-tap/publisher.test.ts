import { connect } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { resolveNatsCredentials } from '../../contract/nats-credentials.ts';
import { createMetrics, type TapMetrics } from '../../ingress-tap/metrics.ts';
import { startPublisher, type Publisher } from '../../ingress-tap/publisher.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { eventually } from './tap-harness.ts';
import { capturedLogger } from '../support/captured-logger.ts';

// The publisher alone against a real nats-server, reached through a loopback relay the test can cut. Freezing the
// server (SIGSTOP) holds back its PONGs, so events stay handed to NATS but unconfirmed for as long as the test wants.

const SUBJECT = 'request-mirror.requests.GET';

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly inDoubt?: number;
  readonly server?: string;
  readonly subject?: string;
  readonly err?: { readonly code?: string; readonly message?: string };
}

interface Running {
  readonly nats: NatsServer;
  readonly proxy: TcpProxy;
  /** The `n` of each payload the server delivered to a subscriber, in order. */
  readonly received: number[];
  readonly publisher: Publisher;
  readonly metrics: TapMetrics;
  readonly logs: LogLine[];
  /** When the publisher had its connection. */
  readonly connectedAt: number;
  freeze(): void;
  thaw(): void;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function logCapture(): { logs: LogLine[]; logger: Logger } {
  const { logger, lines } = capturedLogger<LogLine>('debug');
  return { logs: lines, logger };
}

/** The `n` of every payload published on SUBJECT, in the order the server delivers them; ready once subscribed. */
async function subscribe(url: string, login: { user?: string; pass?: string } = {}): Promise<number[]> {
  const nc = await connect({ servers: url, ...login });
  cleanups.push(() => nc.close());
  const received: number[] = [];
  nc.subscribe(SUBJECT, { callback: (_error, m) => void received.push(m.json<{ n: number }>().n) });
  await nc.flush();
  return received;
}

interface StartOptions {
  readonly maxPendingBytes?: number;
  readonly maxPayloadBytes?: number;
  /** nats.reconnectTimeWaitMs; nats.js adds up to 100 ms of jitter. */
  readonly reconnectTimeWaitMs?: number;
}

async function start(options: StartOptions = {}): Promise<Running> {
  const nats = await startNatsServer({ maxPayloadBytes: options.maxPayloadBytes });
  let frozen = false;
  const thaw = () => {
    if (frozen) process.kill(nats.pid, 'SIGCONT');
    frozen = false;
  };
  cleanups.push(() => nats.stop());
  cleanups.push(() => {
    thaw();
    return Promise.resolve();
  });
  const proxy = await startTcpProxy(nats.port);
  cleanups.push(() => proxy.close());
  const received = await subscribe(nats.url);
  const metrics = createMetrics();
  const { logs, logger } = logCapture();
  const { nats: natsConfig } = Config.parse({ nats: { url: `nats://127.0.0.1:${proxy.port}`, reconnectTimeWaitMs: options.reconnectTimeWaitMs ?? 0 } });
  const publisher = startPublisher({ nats: natsConfig, maxPendingBytes: options.maxPendingBytes ?? 1024 * 1024, metrics, logger });
  cleanups.push(() => publisher.close());
  await eventually('the publisher to connect', () => publisher.isConnected());
  const connectedAt = Date.now();
  return {
    connectedAt,
    nats,
    proxy,
    received,
    publisher,
    metrics,
    logs,
    freeze() {
      process.kill(nats.pid, 'SIGSTOP');
      frozen = true;
    },
    thaw,
  };
}

async function count(metrics: TapMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val)).reduce((sum, v) => sum + v.value, 0);
}

const published = (r: Running) => count(r.metrics, 'request_mirror_tap_events_published_total');
const inDoubt = (r: Running) => count(r.metrics, 'request_mirror_tap_events_in_doubt_total');
const publishErrors = (r: Running) => count(r.metrics, 'request_mirror_tap_publish_errors_total');
const dropped = (r: Running, reason: string) => count(r.metrics, 'request_mirror_tap_events_dropped_total', { reason });

const payload = (n: number, size = 100) => Buffer.from(JSON.stringify({ n }).padEnd(size, ' '));

const warnings = (r: Running, msg: string) => r.logs.filter((l) => l.level === 40 && l.msg === msg);

/** Bytes nats.js writes to publish `payloads` on SUBJECT: the PUB line and the payload of each. */
const pubBytes = (payloads: readonly Uint8Array[]) => payloads.reduce((sum, p) => sum + `PUB ${SUBJECT} ${p.length}\r\n`.length + p.length + 2, 0);

/** Publishes `ns` and waits until the publisher has written them to its connection (handed to NATS, not confirmed). */
async function handOver(r: Running, ns: readonly number[]): Promise<void> {
  const before = r.proxy.bytesToServer;
  const payloads = ns.map((n) => payload(n));
  for (const p of payloads) expect(r.publisher.publish(SUBJECT, p)).toBe('queued');
  await eventually(`${ns.length} events handed to NATS`, () => r.proxy.bytesToServer - before >= pubBytes(payloads));
}

/** Freezes the server, hands `ns` to NATS (not confirmed), then cuts the connection. */
async function dropWithUnconfirmed(r: Running, ns: readonly number[]): Promise<void> {
  r.freeze();
  await handOver(r, ns);
  expect(await published(r)).toBe(0);
  await r.proxy.cut();
  await eventually('the publisher to see the drop', () => !r.publisher.isConnected());
}

/**
 * Waits until nothing is pending (queued or unconfirmed) by offering an event of exactly `maxPendingBytes`, which is
 * taken only then (and refused without a trace before); it is pending itself afterwards, until its own batch goes out.
 */
async function nothingPending(r: Running, maxPendingBytes: number, n: number): Promise<void> {
  await eventually('nothing pending', () => r.publisher.publish(SUBJECT, payload(n, maxPendingBytes)) === 'queued');
}

async function reconnect(r: Running): Promise<void> {
  r.thaw();
  await r.proxy.restore();
  await eventually('the publisher to reconnect', () => r.publisher.isConnected());
}

describe('publisher', () => {
  it("reports the server's max_payload while connected, and 0 once closed", async () => {
    const r = await start({ maxPayloadBytes: 5000 });
    expect(r.publisher.maxPayload()).toBe(5000);
    await r.publisher.close();
    expect(r.publisher.maxPayload()).toBe(0);
    expect(r.publisher.isConnected()).toBe(false);
  });

  it('publishes the events of a batch in order and counts them once the server has confirmed them', async () => {
    const r = await start();
    expect([1, 2, 3].map((n) => r.publisher.publish(SUBJECT, payload(n)))).toEqual(['queued', 'queued', 'queued']);
    await eventually('3 events received', () => r.received.length === 3);
    expect(r.received).toEqual([1, 2, 3]);
    await eventually('3 events counted as published', async () => (await published(r)) === 3);
  });

  it('counts events handed to a frozen server as published only once it answers', async () => {
    const r = await start();
    r.freeze();
    await handOver(r, [1, 2]);
    expect(await published(r)).toBe(0);
    r.thaw();
    await eventually('2 events counted as published', async () => (await published(r)) === 2);
  });

  it('counts an event NATS refuses (over max_payload) as a publish error, logs it, and publishes the rest of its batch', async () => {
    const r = await start({ maxPayloadBytes: 1024 });
    for (const [n, size] of [[1, 100], [2, 2000], [3, 100]] as const) expect(r.publisher.publish(SUBJECT, payload(n, size))).toBe('queued');
    await eventually('2 events received', () => r.received.length === 2);
    expect(r.received).toEqual([1, 3]);
    await eventually('2 events counted as published', async () => (await published(r)) === 2);
    expect(await publishErrors(r)).toBe(1);
    expect(await dropped(r, 'publish_error')).toBe(1);
    expect(warnings(r, 'publish failed')).toEqual([
      expect.objectContaining({ err: expect.objectContaining({ code: 'RM_TAP_PUBLISH_FAILED', message: expect.stringMatching(/^NATS publish refused: /) as unknown }) as unknown }),
    ]);
  });

  it('takes events up to exactly maxPendingBytes waiting for their batch, and drops the next one with a debug line', async () => {
    const r = await start({ maxPendingBytes: 300 });
    expect([1, 2, 3, 4].map((n) => r.publisher.publish(SUBJECT, payload(n)))).toEqual(['queued', 'queued', 'queued', 'pending_bytes_exceeded']);
    expect(r.logs.filter((l) => l.msg === 'event dropped')).toEqual([
      expect.objectContaining({ level: 20, err: expect.objectContaining({ code: 'RM_TAP_PENDING_BYTES_EXCEEDED', message: '300 bytes already pending' }) as unknown }),
    ]);
    await eventually('3 events received', () => r.received.length === 3);
    expect(r.received).toEqual([1, 2, 3]);
  });

  it('counts events handed to NATS as pending until the server confirms them, and takes new ones once it has', async () => {
    const r = await start({ maxPendingBytes: 300 });
    r.freeze();
    await handOver(r, [1, 2]);
    await handOver(r, [3]);
    // A batch handed over while the first one waits for its PONG is confirmed by the next flush.
    expect(r.publisher.publish(SUBJECT, payload(4))).toBe('pending_bytes_exceeded');
    expect(r.logs.filter((l) => l.msg === 'event dropped').map((l) => l.err?.message)).toEqual(['300 bytes already pending']);
    r.thaw();
    await eventually('3 events received', () => r.received.length === 3);
    await nothingPending(r, 300, 5);
    // And the flushes go on once one came back with nothing new to confirm.
    await nothingPending(r, 300, 6);
    await eventually('5 events received', () => r.received.length === 5);
    expect(r.received).toEqual([1, 2, 3, 5, 6]);
  });

  it('counts events handed to NATS but unconfirmed when the connection drops as in doubt, once, and starts afresh on reconnect', async () => {
    // The reconnect waits at least 2 s, so nats.js reports the drop before it gives up on the pending PONG.
    const r = await start({ maxPendingBytes: 400, reconnectTimeWaitMs: 2000 });
    await dropWithUnconfirmed(r, [1, 2, 3, 4]);
    await eventually('4 events in doubt', async () => (await inDoubt(r)) === 4);
    expect(warnings(r, 'events handed to NATS but not confirmed when the connection dropped')).toEqual([expect.objectContaining({ inDoubt: 4 })]);
    const server = `127.0.0.1:${r.proxy.port}`;
    expect(warnings(r, 'disconnected from NATS; dropping events until reconnected')).toEqual([expect.objectContaining({ server })]);
    await reconnect(r);
    expect(r.logs.filter((l) => l.msg === 'reconnected to NATS')).toEqual([expect.objectContaining({ level: 30, server })]);
    expect(await inDoubt(r)).toBe(4);
    expect(await publishErrors(r)).toBe(0);
    // The 400 bytes in doubt no longer count as pending, and what is published now is confirmed again.
    for (const n of [5, 6, 7, 8]) expect(r.publisher.publish(SUBJECT, payload(n))).toBe('queued');
    await nothingPending(r, 400, 9);
    await eventually('5 events after the reconnect', () => r.received.filter((n) => n > 4).length === 5);
  });

  it('counts the events of a flush that fails when the connection drops as in doubt and the flush as a publish error', async () => {
    const r = await start({ maxPendingBytes: 400 });
    // A connection older than nats.js's longest reconnect wait (0 ms + 100 ms of jitter) is redialled at once, and
    // the redial fails the pending PONG before the drop is reported.
    await eventually('the connection to outlive the reconnect wait', () => Date.now() - r.connectedAt > 150);
    await dropWithUnconfirmed(r, [1, 2, 3, 4]);
    await eventually('a publish error', async () => (await publishErrors(r)) === 1);
    expect(await inDoubt(r)).toBe(4);
    expect(warnings(r, 'NATS flush failed')).toEqual([
      expect.objectContaining({ inDoubt: 4, err: expect.objectContaining({ code: 'RM_TAP_PUBLISH_FAILED', message: expect.stringMatching(/^NATS flush failed: /) as unknown }) as unknown }),
    ]);
    await reconnect(r);
    expect(await inDoubt(r)).toBe(4);
    expect(await publishErrors(r)).toBe(1);
    for (const n of [5, 6, 7, 8]) expect(r.publisher.publish(SUBJECT, payload(n))).toBe('queued');
    await nothingPending(r, 400, 9);
    await eventually('5 events after the reconnect', () => r.received.filter((n) => n > 4).length === 5);
    // The 4 in doubt count as published (the server may have taken them), and so do the 5 it confirmed.
    await eventually('9 events counted as published', async () => (await published(r)) === 9);
  });

  it('counts as in doubt only the events not yet confirmed when the connection drops', async () => {
    const r = await start({ maxPendingBytes: 400, reconnectTimeWaitMs: 2000 });
    for (const n of [1, 2]) expect(r.publisher.publish(SUBJECT, payload(n))).toBe('queued');
    await nothingPending(r, 400, 3);
    // Event 3 was taken just now and goes out with the next batch, after the server is frozen: it alone is unconfirmed.
    const before = r.proxy.bytesToServer;
    r.freeze();
    await eventually('event 3 handed to NATS', () => r.proxy.bytesToServer - before >= pubBytes([payload(3, 400)]));
    await r.proxy.cut();
    await eventually('an event in doubt', async () => (await inDoubt(r)) === 1);
    expect(warnings(r, 'events handed to NATS but not confirmed when the connection dropped')).toEqual([expect.objectContaining({ inDoubt: 1 })]);
  });

  it('drops and counts the events of a batch whose connection dropped before it went out, with one warning per outage', async () => {
    const r = await start({ reconnectTimeWaitMs: 2000 });
    for (const n of [1, 2, 3]) expect(r.publisher.publish(SUBJECT, payload(n))).toBe('queued');
    await r.proxy.cut();
    await eventually('3 drops', async () => (await dropped(r, 'nats_disconnected')) === 3);
    const dropping = () => r.logs.filter((l) => l.msg === 'dropping events');
    expect(dropping()).toEqual([
      expect.objectContaining({ level: 40, err: expect.objectContaining({ code: 'RM_TAP_NATS_DISCONNECTED', message: 'no NATS connection; dropping events' }) as unknown }),
    ]);
    expect(r.publisher.publish(SUBJECT, payload(4))).toBe('nats_disconnected');
    expect(await published(r)).toBe(0);
    expect(dropping()).toHaveLength(1);
    await reconnect(r);
    await r.proxy.cut();
    await eventually('the publisher to see the second drop', () => !r.publisher.isConnected());
    expect(r.publisher.publish(SUBJECT, payload(5))).toBe('nats_disconnected');
    expect(dropping()).toHaveLength(2);
  });

  it('drops while NATS is down at start, with one warning, and publishes once it is up', async () => {
    const port = await freePort();
    const { logs, logger } = logCapture();
    const metrics = createMetrics();
    const { nats: natsConfig } = Config.parse({ nats: { url: `nats://127.0.0.1:${port}`, reconnectTimeWaitMs: 0 } });
    const publisher = startPublisher({ nats: natsConfig, maxPendingBytes: 1024, metrics, logger });
    cleanups.push(() => publisher.close());
    expect([1, 2].map((n) => publisher.publish(SUBJECT, payload(n)))).toEqual(['nats_disconnected', 'nats_disconnected']);
    expect(publisher.maxPayload()).toBe(0);
    expect(logs.filter((l) => l.msg === 'dropping events')).toHaveLength(1);
    const nats = await startNatsServer({ port });
    cleanups.push(() => nats.stop());
    const received = await subscribe(nats.url);
    await eventually('the publisher to connect', () => publisher.isConnected());
    expect(logs.filter((l) => l.msg === 'connected to NATS')).toEqual([expect.objectContaining({ level: 30, server: `127.0.0.1:${port}` })]);
    expect(publisher.publish(SUBJECT, payload(3))).toBe('queued');
    await eventually('1 event received', () => received.length === 1);
    expect(received).toEqual([3]);
  });

  it('publishes what was queued when it is closed before the batch went out', async () => {
    const r = await start();
    for (const n of [1, 2, 3]) expect(r.publisher.publish(SUBJECT, payload(n))).toBe('queued');
    await r.publisher.close();
    expect(r.publisher.publish(SUBJECT, payload(4))).toBe('nats_disconnected');
    await eventually('3 events received', () => r.received.length === 3);
    expect(r.received).toEqual([1, 2, 3]);
    expect(await dropped(r, 'nats_disconnected')).toBe(0);
    await eventually('its connection to close', () => r.proxy.open === 0);
    expect(r.proxy.accepted).toBe(1);
  });

  it('stops connecting once closed while still connecting, so it never holds a connection', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const proxy = await startTcpProxy(nats.port);
    cleanups.push(() => proxy.close());
    await proxy.cut();
    const { nats: natsConfig } = Config.parse({ nats: { url: `nats://127.0.0.1:${proxy.port}`, reconnectTimeWaitMs: 20 } });
    const closed = startPublisher({ nats: natsConfig, maxPendingBytes: 1024, metrics: createMetrics(), logger: logCapture().logger });
    cleanups.push(() => closed.close());
    // Retrying on the same schedule, it shows when the closed one would have connected had it kept trying.
    const control = startPublisher({ nats: natsConfig, maxPendingBytes: 1024, metrics: createMetrics(), logger: logCapture().logger });
    cleanups.push(() => control.close());
    await closed.close();
    await proxy.restore();
    await eventually('the other publisher to connect', () => control.isConnected());
    await control.close();
    await eventually('its connection to close', () => proxy.open === 0);
    expect(proxy.accepted).toBe(1);
    expect(closed.isConnected()).toBe(false);
  });

  it('counts events the server refuses for lack of permission as dropped (permission_denied), never as published, and logs each subject once', async () => {
    const POST = 'request-mirror.requests.POST';
    const nats = await startNatsServer({
      extraConfig: [
        'authorization {',
        '  users: [',
        `    { user: tap, password: pw, permissions: { publish: { deny: "${POST}" } } }`,
        '    { user: watcher, password: pw }',
        '  ]',
        '}',
      ],
    });
    cleanups.push(() => nats.stop());
    const received = await subscribe(nats.url, { user: 'watcher', pass: 'pw' });
    const { nats: natsConfig } = Config.parse({ nats: { url: nats.url, auth: { user: 'tap', password: { env: 'P' } } } });
    const { credentials } = resolveNatsCredentials(natsConfig, { env: { P: 'pw' }, readFile: () => '' });
    const metrics = createMetrics();
    const { logs, logger } = logCapture();
    const publisher = startPublisher({ nats: natsConfig, credentials, maxPendingBytes: 1024 * 1024, metrics, logger });
    cleanups.push(() => publisher.close());
    await eventually('the publisher to connect', () => publisher.isConnected());
    const r = { metrics } as Running;
    for (const [subject, n] of [[SUBJECT, 1], [POST, 2], [SUBJECT, 3], [POST, 4], [POST, 5]] as const) expect(publisher.publish(subject, payload(n))).toBe('queued');
    await eventually('3 refused, 2 published', async () => (await dropped(r, 'permission_denied')) === 3 && (await published(r)) === 2);
    expect(received).toEqual([1, 3]);
    expect(publisher.publish(POST, payload(6))).toBe('queued');
    await eventually('the next one refused too', async () => (await dropped(r, 'permission_denied')) === 4);
    expect(await published(r)).toBe(2);
    expect(publisher.problems()).toEqual(['nats: the server refuses publishes to request-mirror.requests.POST; their events are dropped (permission_denied)']);
    // Refusals already set against their own batches are not held against later ones.
    for (const n of [7, 8]) expect(publisher.publish(SUBJECT, payload(n))).toBe('queued');
    await eventually('the next two published', async () => (await published(r)) === 4 && received.length === 4);
    expect(received).toEqual([1, 3, 7, 8]);
    expect(await dropped(r, 'permission_denied')).toBe(4);
    expect(await inDoubt(r)).toBe(0);
    expect(logs.filter((l) => l.msg === 'NATS refused a publish; its events are dropped (permission_denied)')).toEqual([
      expect.objectContaining({
        level: 50,
        subject: POST,
        err: expect.objectContaining({ code: 'RM_NATS_PERMISSION_DENIED', message: expect.stringMatching(/^the NATS server refused a publish to request-mirror\.requests\.POST: Permissions Violation/) as unknown }) as unknown,
      }),
    ]);
    // Still connected: a refused publish does not cost the connection.
    expect(publisher.isConnected()).toBe(true);
  });

  it('keeps reconnecting through refused credentials after a server restart, naming the refusal once, and reconnects once they are accepted', async () => {
    const port = await freePort();
    const requiring = (password: string) => ['authorization {', '  user: tap', `  password: "${password}"`, '}'];
    let server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    cleanups.push(() => server.stop());
    const { nats: natsConfig } = Config.parse({ nats: { url: server.url, auth: { user: 'tap', password: { env: 'P' } }, reconnectTimeWaitMs: 50 } });
    const { credentials } = resolveNatsCredentials(natsConfig, { env: { P: 'pw-1' }, readFile: () => '' });
    const { logs, logger } = logCapture();
    const metrics = createMetrics();
    const publisher = startPublisher({ nats: natsConfig, credentials, maxPendingBytes: 1024 * 1024, metrics, logger });
    cleanups.push(() => publisher.close());
    await eventually('the publisher to connect', () => publisher.isConnected());

    // The password is rotated on the server only: every reconnect attempt is refused.
    await server.stop();
    server = await startNatsServer({ port, extraConfig: requiring('pw-2') });
    const refusals = () => server.output().split('authentication error').length - 1;
    // nats.js's default gives up for good at the second refusal in a row; three show it did not.
    await eventually('three refused reconnects', () => refusals() >= 3, 20_000);
    expect(publisher.isConnected()).toBe(false);
    expect(publisher.problems()).toEqual(['nats: the NATS server refused the credentials: Authorization Violation']);
    // nats.js reports a disconnect at each refused attempt; the outage is one.
    expect(logs.filter((l) => l.level === 40 && l.msg === 'disconnected from NATS; dropping events until reconnected')).toHaveLength(1);
    expect(logs.filter((l) => l.msg === 'cannot connect to NATS; retrying')).toEqual([
      expect.objectContaining({ level: 50, err: expect.objectContaining({ code: 'RM_NATS_AUTH_FAILED' }) as unknown }),
    ]);

    // Rotated back: the same connection comes back without a restart.
    await server.stop();
    server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    await eventually('the publisher to reconnect', () => publisher.isConnected(), 20_000);
    expect(publisher.problems()).toEqual([]);
    // nats.js reports a reconnect for each refused attempt; the connection came back once, and what is published on
    // it is counted as published once confirmed.
    expect(logs.filter((l) => l.msg === 'reconnected to NATS')).toHaveLength(1);
    expect(publisher.publish(SUBJECT, payload(1))).toBe('queued');
    const r = { metrics } as Running;
    await eventually('the event counted as published', async () => (await published(r)) === 1);
  });

  it('names credentials refused at start once, in its log and its problems, while it keeps trying', async () => {
    const server = await startNatsServer({ extraConfig: ['authorization {', '  user: tap', '  password: "right"', '}'] });
    cleanups.push(() => server.stop());
    const { nats: natsConfig } = Config.parse({ nats: { url: server.url, auth: { user: 'tap', password: { env: 'P' } }, reconnectTimeWaitMs: 50 } });
    const { credentials } = resolveNatsCredentials(natsConfig, { env: { P: 'wrong' }, readFile: () => '' });
    const { logs, logger } = logCapture();
    const publisher = startPublisher({ nats: natsConfig, credentials, maxPendingBytes: 1024 * 1024, metrics: createMetrics(), logger });
    cleanups.push(() => publisher.close());
    const refusals = () => server.output().split('authentication error').length - 1;
    await eventually('three refused logins', () => refusals() >= 3, 20_000);
    expect(publisher.isConnected()).toBe(false);
    expect(publisher.problems()).toEqual(['nats: the NATS server refused the credentials: Authorization Violation']);
    expect(logs.filter((l) => l.msg === 'cannot connect to NATS; retrying')).toEqual([
      expect.objectContaining({ level: 50, err: expect.objectContaining({ code: 'RM_NATS_AUTH_FAILED' }) as unknown }),
    ]);
  });

  it('counts the events a close still waits for as in doubt, once, when it is abandoned (the shutdown deadline)', async () => {
    const r = await start();
    r.freeze();
    await handOver(r, [1, 2, 3]);
    // The frozen server never answers the drain's flush, so close() waits, as the tap's shutdown would.
    let closed = false;
    const closing = r.publisher.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(closed).toBe(false);
    expect(await inDoubt(r)).toBe(0);
    r.publisher.abandon();
    expect(await inDoubt(r)).toBe(3);
    expect(await published(r)).toBe(3);
    expect(warnings(r, 'events handed to NATS but not confirmed when the publisher stopped')).toEqual([expect.objectContaining({ inDoubt: 3 })]);
    // The server's late answer counts nothing twice: its flushes settle a turn after they resolve.
    r.thaw();
    await closing;
    await eventually('the events to reach the subscriber', () => r.received.length === 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([await inDoubt(r), await published(r)]).toEqual([3, 3]);
  });

  it('counts the events whose connection is cut under its final drain as in doubt, once, and closes', async () => {
    const r = await start({ reconnectTimeWaitMs: 0 });
    r.freeze();
    await handOver(r, [1, 2, 3]);
    const closing = r.publisher.close();
    await r.proxy.cut();
    await closing;
    expect(await inDoubt(r)).toBe(3);
    expect(await published(r)).toBe(3);
    expect(await dropped(r, 'nats_disconnected')).toBe(0);
  });

  it('closes while NATS is unreachable, without waiting for it to come back', async () => {
    const r = await start({ reconnectTimeWaitMs: 0 });
    await r.proxy.cut();
    await eventually('the publisher to see the drop', () => !r.publisher.isConnected());
    await r.publisher.close();
    expect(r.publisher.publish(SUBJECT, payload(1))).toBe('nats_disconnected');
  });
});

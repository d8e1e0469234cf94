import { connect } from '@nats-io/transport-node';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { resolveNatsCredentials } from '../../contract/nats-credentials.ts';
import { createMetrics, type TapMetrics } from '../../ingress-tap/metrics.ts';
import { startPublisher, type Publisher } from '../../ingress-tap/publisher.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { eventually, waitUntil } from '../support/eventually.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

// The publisher while nats.js reconnects: events keep coming (as Traefik's requests do) while the server it is
// connected to dies and comes back on its port, or refuses its logins for a while. Whatever the window, each event
// offered ends counted once, as published or as dropped with a reason (docs/ingress-tap.md, the accounting
// identity), nothing stays pending, and what was counted published and not in doubt reached a subscriber.
//
// The publisher reaches the server through a loopback relay, the subscriber directly: the relay holds the publisher
// off until the subscriber has its own connection back, so every event published after the outage has a reader.

const SUBJECT = 'request-mirror.requests.GET';
const MAX_PENDING_BYTES = 64 * 1024;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const payload = (n: number, size = 100) => Buffer.from(JSON.stringify({ n }).padEnd(size, ' '));

async function sum(metrics: TapMetrics, name: string): Promise<Record<string, number>> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const byReason: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    const key = (v.labels as { reason?: string }).reason ?? '';
    byReason[key] = (byReason[key] ?? 0) + v.value;
  }
  return byReason;
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

interface Flow {
  /** Events offered so far, and the `n` of each the publisher took ('queued'). */
  readonly offered: () => number;
  readonly queued: readonly number[];
  stop(): void;
}

/**
 * Offers 3 events every 2 ms, counting the drops `publish` returns as the tap's request path does
 * (event-output.ts); the publisher counts the rest itself.
 */
function flow(publisher: Publisher, metrics: TapMetrics): Flow {
  let n = 0;
  const queued: number[] = [];
  const timer = setInterval(() => {
    for (let i = 0; i < 3; i++) {
      n++;
      const outcome = publisher.publish(SUBJECT, payload(n));
      if (outcome === 'queued') queued.push(n);
      else metrics.dropped.inc({ reason: outcome });
    }
  }, 2);
  cleanup.add(() => {
    clearInterval(timer);
  });
  return {
    offered: () => n,
    queued,
    stop: () => {
      clearInterval(timer);
    },
  };
}

interface Subscriber {
  readonly received: number[];
  /** How many times it has reconnected so far. */
  reconnects(): number;
  /** Resolves once it has reconnected more than `since` times and the server has its subscription again. */
  back(since: number): Promise<void>;
}

/** A subscriber on SUBJECT that reconnects at once, as a user or password of its own (`login`). */
async function subscribe(url: string, login: { user?: string; pass?: string } = {}): Promise<Subscriber> {
  const nc = await connect({ servers: url, ...login, reconnectTimeWait: 20, maxReconnectAttempts: -1 });
  cleanup.add(() => nc.close());
  const received: number[] = [];
  nc.subscribe(SUBJECT, { callback: (_error, m) => void received.push(m.json<{ n: number }>().n) });
  await nc.flush();
  let reconnects = 0;
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') reconnects++;
  })();
  return {
    received,
    reconnects: () => reconnects,
    back: async (since) => {
      await eventually('the subscriber to reconnect', () => reconnects > since, { timeoutMs: 20_000 });
      await nc.flush();
    },
  };
}

interface Running {
  readonly publisher: Publisher;
  readonly metrics: TapMetrics;
  readonly proxy: TcpProxy;
}

function startPublisherThrough(proxy: TcpProxy, credentials?: { user: string; pass: string }): Running {
  const { nats } = Config.parse({
    nats: { url: `nats://127.0.0.1:${proxy.port}`, reconnectTimeWaitMs: 50, ...(credentials && { auth: { user: credentials.user, password: { env: 'P' } } }) },
  });
  const resolved = credentials && resolveNatsCredentials(nats, { env: { P: credentials.pass }, readFile: () => '' }).credentials;
  const metrics = createMetrics();
  const publisher = startPublisher({ nats, credentials: resolved, maxPendingBytes: MAX_PENDING_BYTES, metrics, logger: pino({ level: 'silent' }) });
  cleanup.add(() => publisher.close());
  return { publisher, metrics, proxy };
}

/** Kills `server` as a crash would (SIGKILL) and waits until it is gone, so its port is free. */
async function crash(server: NatsServer): Promise<void> {
  process.kill(server.pid, 'SIGKILL');
  await server.stop();
}

/**
 * After the flow stopped: every event offered is counted once, as published or dropped, only with `reasons`;
 * nothing is left pending (an event of exactly maxPendingBytes is taken); and the subscriber got every event counted
 * published and not in doubt, and nothing the publisher had not taken.
 */
async function expectAccountedFor(r: Running, f: Flow, subscriber: Subscriber, reasons: readonly string[]): Promise<void> {
  f.stop();
  const published = async () => total(await sum(r.metrics, 'request_mirror_tap_events_published_total'));
  const dropped = () => sum(r.metrics, 'request_mirror_tap_events_dropped_total');
  await waitUntil('every event offered counted as published or dropped', async () => (await published()) + total(await dropped()) === f.offered(), { timeoutMs: 10_000 });
  const drops = await dropped();
  expect(Object.keys(drops).filter((reason) => (drops[reason] ?? 0) > 0).sort()).toEqual([...reasons].sort());
  const inDoubt = total(await sum(r.metrics, 'request_mirror_tap_events_in_doubt_total'));
  const confirmed = (await published()) - inDoubt;
  await eventually('the subscriber to get every confirmed event', () => subscriber.received.length >= confirmed);
  expect(subscriber.received.length).toBeLessThanOrEqual(await published());
  expect(new Set(subscriber.received).size).toBe(subscriber.received.length);
  const taken = new Set(f.queued);
  expect(subscriber.received.filter((n) => !taken.has(n))).toEqual([]);

  const last = f.offered() + 1;
  await eventually('nothing pending', () => r.publisher.publish(SUBJECT, payload(last, MAX_PENDING_BYTES)) === 'queued');
  await eventually('the last event received', () => subscriber.received.includes(last));
  await waitUntil('the last event counted as published', async () => (await published()) + total(await dropped()) === f.offered() + 1);
}

describe('publisher through a NATS reconnect', () => {
  it('counts every event offered while the server is killed and restarted on its port as published or dropped (nats_disconnected), and leaves nothing pending', async () => {
    const port = await freePort();
    let server = await startNatsServer({ port });
    cleanup.add(() => server.stop());
    const proxy = await startTcpProxy(port);
    cleanup.add(() => proxy.close());
    const subscriber = await subscribe(server.url);
    const r = startPublisherThrough(proxy);
    await eventually('the publisher to connect', () => r.publisher.isConnected());
    const f = flow(r.publisher, r.metrics);
    await eventually('events flowing', () => subscriber.received.length > 100);

    const seen = subscriber.reconnects();
    await crash(server);
    await eventually('the publisher to see the loss', () => !r.publisher.isConnected());
    await proxy.cut();
    const dropsBefore = f.offered() - f.queued.length;
    server = await startNatsServer({ port });
    await subscriber.back(seen);
    await proxy.restore();
    await eventually('the publisher to reconnect', () => r.publisher.isConnected(), { timeoutMs: 20_000 });
    expect(f.offered() - f.queued.length).toBeGreaterThan(dropsBefore);
    const after = f.queued.length;
    await eventually('events flowing again', () => subscriber.received.filter((n) => n > (f.queued[after - 1] ?? 0)).length > 100);

    await expectAccountedFor(r, f, subscriber, ['nats_disconnected']);
  });

  it('counts every event offered while the restarted server refuses its logins, and after it accepts them again, as published or dropped (nats_disconnected), and leaves nothing pending', async () => {
    const port = await freePort();
    const requiring = (tapPassword: string) => ['authorization {', '  users: [', `    { user: tap, password: "${tapPassword}" }`, '    { user: watcher, password: "pw" }', '  ]', '}'];
    let server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    cleanup.add(() => server.stop());
    const proxy = await startTcpProxy(port);
    cleanup.add(() => proxy.close());
    const subscriber = await subscribe(server.url, { user: 'watcher', pass: 'pw' });
    const r = startPublisherThrough(proxy, { user: 'tap', pass: 'pw-1' });
    await eventually('the publisher to connect', () => r.publisher.isConnected());
    const f = flow(r.publisher, r.metrics);
    await eventually('events flowing', () => subscriber.received.length > 100);

    // Restarted with the tap's password rotated: every reconnect is refused, while events keep coming.
    const seen = subscriber.reconnects();
    await crash(server);
    await eventually('the publisher to see the loss', () => !r.publisher.isConnected());
    server = await startNatsServer({ port, extraConfig: requiring('pw-2') });
    await subscriber.back(seen);
    const refusals = () => server.output().split('authentication error').length - 1;
    await eventually('three refused reconnects', () => refusals() >= 3, { timeoutMs: 20_000 });
    expect(r.publisher.isConnected()).toBe(false);
    expect(r.publisher.problems()).toEqual(['nats: the NATS server refused the credentials: Authorization Violation']);

    // Rotated back.
    const seenAgain = subscriber.reconnects();
    await crash(server);
    await proxy.cut();
    server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    await subscriber.back(seenAgain);
    await proxy.restore();
    await eventually('the publisher to reconnect', () => r.publisher.isConnected(), { timeoutMs: 20_000 });
    expect(r.publisher.problems()).toEqual([]);
    const after = f.queued.length;
    await eventually('events flowing again', () => subscriber.received.filter((n) => n > (f.queued[after - 1] ?? 0)).length > 100);

    await expectAccountedFor(r, f, subscriber, ['nats_disconnected']);
  });

  it('counts every event offered while the server reloads a config that refuses its login, and after one that accepts it, as published or dropped, and leaves nothing pending', async () => {
    // nats-server re-checks its clients at a config reload (server/reload.go, reloadAuthorization()) and closes the
    // tap's live connection; the server stays up, and refuses every reconnect until a reload accepts the password again.
    const dir = mkdtempSync(join(tmpdir(), 'rm-nats-auth-'));
    cleanup.add(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const users = join(dir, 'users.conf');
    const allow = (tapPassword: string) => {
      writeFileSync(users, ['authorization {', '  users: [', `    { user: tap, password: "${tapPassword}" }`, '    { user: watcher, password: "pw" }', '  ]', '}'].join('\n'));
    };
    allow('pw-1');
    // startNatsServer writes its config in a directory of its own beside ours; nats-server resolves includes
    // relative to the including file.
    const server = await startNatsServer({ extraConfig: [`include "../${basename(dir)}/users.conf"`] });
    cleanup.add(() => server.stop());
    const proxy = await startTcpProxy(server.port);
    cleanup.add(() => proxy.close());
    const subscriber = await subscribe(server.url, { user: 'watcher', pass: 'pw' });
    const r = startPublisherThrough(proxy, { user: 'tap', pass: 'pw-1' });
    await eventually('the publisher to connect', () => r.publisher.isConnected());
    const f = flow(r.publisher, r.metrics);
    await eventually('events flowing', () => subscriber.received.length > 100);

    allow('pw-2');
    process.kill(server.pid, 'SIGHUP');
    await eventually('the publisher to lose its connection', () => !r.publisher.isConnected(), { timeoutMs: 10_000 });
    const refusals = () => server.output().split('authentication error').length - 1;
    await eventually('three refused reconnects', () => refusals() >= 3, { timeoutMs: 20_000 });
    expect(r.publisher.problems()).toEqual(['nats: the NATS server refused the credentials: Authorization Violation']);

    allow('pw-1');
    process.kill(server.pid, 'SIGHUP');
    await eventually('the publisher to reconnect', () => r.publisher.isConnected(), { timeoutMs: 20_000 });
    expect(r.publisher.problems()).toEqual([]);
    const after = f.queued.length;
    await eventually('events flowing again', () => subscriber.received.filter((n) => n > (f.queued[after - 1] ?? 0)).length > 100);

    await expectAccountedFor(r, f, subscriber, ['nats_disconnected']);
  });
});

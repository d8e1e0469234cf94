import type { Status } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../contract/config.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { startHttpReceiver, type HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { startNatsCluster, type NatsCluster, type NatsClusterNode } from '../../tools/stack/nats-cluster.ts';
import { metric, startDispatcher, testConfig, type RunningDispatcher } from '../dispatcher/harness.ts';
import { startTap, type TapHarness } from '../ingress-tap/tap-harness.ts';
import { eventually, waitUntil } from '../support/eventually.ts';
import { percentile, startSteadyLoad, type SteadyLoad } from '../support/steady-load.ts';

// The tap and the dispatchers over a real 3-node nats-server cluster, under a constant request load, while nodes
// are killed, restarted and frozen. Every request the load sends must end up delivered to the webhook or counted as
// dropped with a reason; what NATS core loses without telling anyone (it is at-most-once) is bounded by what the
// tap counts as in doubt, and the figures are printed.
//
// Topology: the tap knows only n1, dispatcher d1 only n2, d2 only n3; anything else they learn from the cluster.

const RATE = 250;
const FREEZE_MS = 3000;
// Clients give a silent server up after pingIntervalMs x maxPingsOutstanding of unanswered pings.
// A frozen node still accepts TCP connections, so a reconnect that picks it waits connectTimeoutMs.
const NATS = { pingIntervalMs: 250, maxPingsOutstanding: 2, connectTimeoutMs: 500, reconnectTimeWaitMs: 100 } as const;

let cluster: NatsCluster;
const node = (i: number): NatsClusterNode => {
  const n = cluster.nodes[i];
  if (!n) throw new Error(`no node ${i}`);
  return n;
};
beforeAll(async () => {
  cluster = await startNatsCluster();
});
afterAll(async () => {
  await cluster.stop();
});
const cleanup = new Cleanup();
afterEach(async () => {
  await cleanup.run();
  // The next test starts from a whole cluster.
  for (const n of cluster.nodes) {
    n.resume();
    if (!n.running()) await n.restart();
  }
});

let prefixes = 0;

interface World {
  readonly tap: TapHarness;
  readonly dispatchers: readonly RunningDispatcher[];
  readonly receiver: HttpReceiver;
  /** Sequence numbers of the events the receiver got, with how many times each arrived. */
  readonly deliveries: Map<number, number>;
}

async function startWorld(): Promise<World> {
  const subjectPrefix = `cluster-${++prefixes}`;
  const deliveries = new Map<number, number>();
  const receiver = await startHttpReceiver((req, res) => {
    const { data } = JSON.parse(req.body.toString('utf8')) as { data: { path: string } };
    const seq = Number(data.path.slice('/seq/'.length));
    deliveries.set(seq, (deliveries.get(seq) ?? 0) + 1);
    res.writeHead(204).end();
  });
  cleanup.add(() => receiver.close());
  const targets: NonNullable<ConfigInput['targets']> = [{ name: 'all', watchURL: receiver.url, methods: ['*'] }];
  const dispatchers: RunningDispatcher[] = [];
  for (const [i, n] of [node(1), node(2)].entries()) {
    const d = await startDispatcher(n.url, testConfig({ nats: { ...NATS, subjectPrefix }, targets }), {}, { name: `d${i + 1}` });
    cleanup.add(() => d.close());
    dispatchers.push(d);
  }
  const tap = await startTap({ natsUrl: node(0).url, subscribe: false, config: { nats: { ...NATS, subjectPrefix }, targets } });
  cleanup.add(() => tap.close());
  // A message published before n1 knows the queue group's interest would be dropped by n1 with no trace.
  await waitUntil('n1 to know both dispatchers', async () => {
    const routez = await node(0).monitor<{ routes?: { subscriptions_list?: string[] }[] }>('/routez?subs=1');
    const subs = (routez.routes ?? []).flatMap((r) => r.subscriptions_list ?? []).filter((s) => s.startsWith(`${subjectPrefix}.`));
    return subs.length >= 2 && tap.publisher.isConnected();
  });
  return { tap, dispatchers, receiver, deliveries };
}

function load(world: World): SteadyLoad {
  const l = startSteadyLoad(world.tap.forwardAuthUrl, { ratePerSecond: RATE });
  cleanup.add(() => l.stop());
  return l;
}

/** Waits until `count` more requests have been answered. */
async function runFor(l: SteadyLoad, count: number): Promise<void> {
  const target = l.answered() + count;
  await eventually(`${count} more answered requests`, () => l.answered() >= target, { timeoutMs: 20_000, intervalMs: 10 });
}

/** Samples `up()` every millisecond until it has gone false and come back true; returns when each happened. */
async function watchOutage(up: () => boolean, timeoutMs = 15_000): Promise<{ downAt: number; upAt: number }> {
  const deadline = Date.now() + timeoutMs;
  let downAt = 0;
  for (;;) {
    const now = Date.now();
    if (now > deadline) throw new Error(`no outage and recovery within ${timeoutMs} ms (down at ${downAt})`);
    if (downAt === 0 && !up()) downAt = now;
    if (downAt !== 0 && up()) return { downAt, upAt: now };
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** When the dispatcher's connection went down and when it came back. */
async function watchStatus(d: RunningDispatcher, timeoutMs = 15_000): Promise<{ downAt: number; upAt: number }> {
  let downAt = 0;
  const statuses = d.nc.status() as AsyncIterable<Status> & { stop(): void };
  const timer = setTimeout(() => {
    statuses.stop();
  }, timeoutMs);
  try {
    for await (const s of statuses) {
      if (s.type === 'disconnect' && downAt === 0) downAt = Date.now();
      if (s.type === 'reconnect' && downAt !== 0) return { downAt, upAt: Date.now() };
    }
  } finally {
    clearTimeout(timer);
    statuses.stop();
  }
  throw new Error(`no disconnect and reconnect within ${timeoutMs} ms`);
}

/** The name of the running node that holds a client connection named `client`. */
async function connectedTo(client: string): Promise<string | undefined> {
  for (const n of cluster.nodes.filter((x) => x.running())) {
    const connz = await n.monitor<{ connections?: { name?: string }[] }>('/connz');
    if ((connz.connections ?? []).some((c) => c.name === client)) return n.name;
  }
  return undefined;
}

async function tapDrops(tap: TapHarness): Promise<Record<string, number>> {
  const values = (await tap.metrics.dropped.get()).values;
  return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [String(v.labels.reason), v.value]));
}

async function dispatcherDrops(dispatchers: readonly RunningDispatcher[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const d of dispatchers) {
    for (const v of (await d.metrics.dropped.get()).values) out[String(v.labels.reason)] = (out[String(v.labels.reason)] ?? 0) + v.value;
    const invalid = await metric(d.metrics, 'request_mirror_dispatcher_invalid_events_total');
    if (invalid > 0) out.invalid = (out.invalid ?? 0) + invalid;
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

interface Accounting {
  readonly sent: number;
  readonly delivered: number;
  readonly duplicates: number;
  readonly tapDrops: Record<string, number>;
  readonly dispatcherDrops: Record<string, number>;
  readonly inDoubt: number;
  /** sent - delivered - every drop: requests neither delivered nor counted anywhere, lost inside NATS. */
  readonly lost: number;
  /** The sequence numbers never delivered (lost or dropped). */
  readonly undelivered: readonly number[];
}

/**
 * Waits until every sent request is delivered or counted, or, when some never will be (lost inside NATS), until the
 * dispatchers hold nothing and the receiver has been quiet for 500 ms; then returns the books.
 */
async function settle(world: World, l: SteadyLoad): Promise<Accounting> {
  await l.stop();
  const sent = l.records.length;
  const counted = async () => world.deliveries.size + sum(await tapDrops(world.tap)) + sum(await dispatcherDrops(world.dispatchers));
  try {
    await waitUntil('every request delivered or counted', async () => (await counted()) === sent, { timeoutMs: 2000, intervalMs: 20 });
  } catch {
    let last = -1;
    let quietSince = Date.now();
    await waitUntil(
      'the dispatchers to finish and the receiver to go quiet',
      () => {
        const n = world.receiver.requests.length;
        if (n !== last) [last, quietSince] = [n, Date.now()];
        return Promise.resolve(world.dispatchers.every((d) => d.dispatcher.pending() === 0) && Date.now() - quietSince > 500);
      },
      { timeoutMs: 20_000, intervalMs: 20 },
    );
  }
  const dropsTap = await tapDrops(world.tap);
  const dropsDispatcher = await dispatcherDrops(world.dispatchers);
  const delivered = world.deliveries.size;
  return {
    sent,
    delivered,
    duplicates: [...world.deliveries.values()].reduce((a, n) => a + n - 1, 0),
    tapDrops: dropsTap,
    dispatcherDrops: dropsDispatcher,
    inDoubt: (await world.tap.metrics.inDoubt.get()).values[0]?.value ?? 0,
    lost: sent - delivered - sum(dropsTap) - sum(dropsDispatcher),
    undelivered: l.records.map((r) => r.seq).filter((seq) => !world.deliveries.has(seq)),
  };
}

function report(what: string, figures: Record<string, unknown>): void {
  process.stdout.write(`[nats-cluster] ${what}: ${JSON.stringify(figures)}\n`);
}

function latencies(l: SteadyLoad, from: number, to: number): number[] {
  return l.records.filter((r) => r.sentAt >= from && r.sentAt < to).map((r) => r.latencyMs);
}

describe('NATS cluster', () => {
  it('keeps answering 200 and fails the tap over to another node when its node is killed, and accounts for every request', async () => {
    const world = await startWorld();
    const l = load(world);
    await runFor(l, RATE);
    const killedAt = Date.now();
    const outage = watchOutage(() => world.tap.publisher.isConnected());
    await node(0).kill();
    const { downAt, upAt } = await outage;
    // The tap was told only of n1: it found n2 or n3 through the servers the cluster announced.
    expect(await connectedTo('request-mirror-ingress-tap')).toMatch(/^n[23]$/);
    await runFor(l, RATE / 2);
    await node(0).restart();
    await runFor(l, RATE / 2);
    const books = await settle(world, l);

    const before = latencies(l, 0, killedAt);
    const during = latencies(l, killedAt, upAt + 250);
    report('tap node SIGKILL', {
      ...books,
      reconnectMs: upAt - killedAt,
      noticedMs: downAt - killedAt,
      latencyBeforeMs: { p50: percentile(before, 50), p99: percentile(before, 99), max: Math.max(...before) },
      latencyDuringMs: { p50: percentile(during, 50), p99: percentile(during, 99), max: Math.max(...during), n: during.length },
    });
    expect(l.records.filter((r) => r.status !== 200)).toEqual([]);
    // SIGKILL closes the sockets at once: the tap sees it and is on another node within a few hundred ms.
    expect(upAt - killedAt).toBeLessThan(2000);
    expect(books.duplicates).toBe(0);
    expect(books.lost).toBeGreaterThanOrEqual(0);
    // At-most-once: only what the tap had handed over unconfirmed when the connection died may vanish.
    expect(books.lost).toBeLessThanOrEqual(books.inDoubt);
  });

  it('keeps delivering through the other dispatcher when a dispatcher\'s node is killed, never twice', async () => {
    const world = await startWorld();
    const [d1, d2] = world.dispatchers;
    if (!d1 || !d2) throw new Error('two dispatchers');
    const l = load(world);
    await runFor(l, RATE);
    const delivered = (d: RunningDispatcher) => metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total');
    const d2AtKill = await delivered(d2);
    const d1Outage = watchStatus(d1);
    const killedAt = Date.now();
    await node(1).kill();
    const { downAt, upAt } = await d1Outage;
    await runFor(l, RATE);
    const d2Since = (await delivered(d2)) - d2AtKill;
    const d1Since = await delivered(d1);
    await node(1).restart();
    await runFor(l, RATE / 2);
    const books = await settle(world, l);
    const lostAt = books.undelivered.map((seq) => (l.records[seq]?.sentAt ?? 0) - killedAt);
    report('dispatcher node SIGKILL', { ...books, lostSentMsAfterKill: lostAt, d1ReconnectMs: upAt - killedAt, d1NoticedMs: downAt - killedAt });

    expect(l.records.filter((r) => r.status !== 200)).toEqual([]);
    // A kill closes the sockets, so the loss is seen as a close, not as unanswered pings. (It reads slow_consumer
    // if this busy test process had just stalled for 500 ms, which says nothing about the kill.)
    const lossesOf = (cause: string) => metric(d1.metrics, 'request_mirror_dispatcher_nats_disconnects_total', { cause });
    expect((await lossesOf('closed')) + (await lossesOf('slow_consumer'))).toBeGreaterThanOrEqual(1);
    expect(d2Since).toBeGreaterThan(RATE / 4);
    expect(d1Since).toBeGreaterThan(0);
    expect(books.duplicates).toBe(0);
    expect(books.lost).toBeGreaterThanOrEqual(0);
    expect(sum(books.tapDrops) + sum(books.dispatcherDrops)).toBe(0);
    // What vanishes was on its way to d1 through n2 when n2 died: sent just before the kill, never long before or after.
    for (const ms of lostAt) expect(ms).toBeGreaterThan(-1000);
    for (const ms of lostAt) expect(ms).toBeLessThan(upAt - killedAt + 1000);
  });

  it('moves the tap off a frozen node (SIGSTOP, then SIGCONT) and accounts for every request', async () => {
    const world = await startWorld();
    const l = load(world);
    await runFor(l, RATE);
    const outage = watchOutage(() => world.tap.publisher.isConnected());
    const pausedAt = Date.now();
    node(0).pause();
    const { downAt, upAt } = await outage;
    await eventually('a 3 s freeze', () => Date.now() - pausedAt >= FREEZE_MS, { timeoutMs: FREEZE_MS + 5000, intervalMs: 10 });
    node(0).resume();
    const resumedAt = Date.now();
    await runFor(l, RATE / 2);
    const books = await settle(world, l);
    const during = latencies(l, pausedAt, upAt + 250);
    report('tap node SIGSTOP', {
      ...books,
      undelivered: books.undelivered.length,
      noticedMs: downAt - pausedAt,
      reconnectMs: upAt - pausedAt,
      freezeMs: resumedAt - pausedAt,
      latencyDuringMs: { p50: percentile(during, 50), p99: percentile(during, 99), max: Math.max(...during), n: during.length },
    });
    expect(l.records.filter((r) => r.status !== 200)).toEqual([]);
    // Unanswered pings reveal the frozen node after (maxPingsOutstanding + 1) x pingIntervalMs; a reconnect may first
    // try the frozen node again and wait connectTimeoutMs on it.
    expect(upAt - pausedAt).toBeLessThan(NATS.pingIntervalMs * (NATS.maxPingsOutstanding + 1) + NATS.connectTimeoutMs + 1000);
    expect(books.duplicates).toBe(0);
    expect(books.lost).toBeGreaterThanOrEqual(0);
    expect(books.inDoubt).toBeGreaterThan(0);
    expect(books.lost).toBeLessThanOrEqual(books.inDoubt);
  });

  it('keeps delivering when a dispatcher\'s node freezes, and loses only what the cluster routed to it while frozen', async () => {
    const world = await startWorld();
    const [d1] = world.dispatchers;
    if (!d1) throw new Error('a dispatcher');
    const l = load(world);
    await runFor(l, RATE);
    const d1Outage = watchStatus(d1);
    const pausedAt = Date.now();
    node(1).pause();
    const { downAt, upAt } = await d1Outage;
    await eventually('a 3 s freeze', () => Date.now() - pausedAt >= FREEZE_MS, { timeoutMs: FREEZE_MS + 5000, intervalMs: 10 });
    node(1).resume();
    const resumedAt = Date.now();
    await runFor(l, RATE / 2);
    const books = await settle(world, l);
    const lostAt = books.undelivered.map((seq) => (l.records[seq]?.sentAt ?? 0) - pausedAt);
    report('dispatcher node SIGSTOP', {
      ...books,
      undelivered: books.undelivered.length,
      lostSentFirstMs: Math.min(...lostAt),
      lostSentLastMs: Math.max(...lostAt),
      d1NoticedMs: downAt - pausedAt,
      d1ReconnectMs: upAt - pausedAt,
      freezeMs: resumedAt - pausedAt,
    });
    expect(l.records.filter((r) => r.status !== 200)).toEqual([]);
    expect(books.duplicates).toBe(0);
    expect(await metric(d1.metrics, 'request_mirror_dispatcher_nats_disconnects_total', { cause: 'stale' })).toBeGreaterThanOrEqual(1);
    expect(sum(books.tapDrops) + sum(books.dispatcherDrops)).toBe(0);
    // Lost: what was on its way to d1 through n2 when n2 froze, or routed to n2 during the freeze; nothing sent
    // after it. (Observed: from 107 ms before the freeze; the margin is for a busy machine's pipeline latency.)
    for (const ms of lostAt) expect(ms).toBeGreaterThan(-1000);
    for (const ms of lostAt) expect(ms).toBeLessThan(resumedAt - pausedAt + 250);
  });
});

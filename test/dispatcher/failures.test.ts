import { spawn } from 'node:child_process';
import { connect as tcpConnect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../contract/config.ts';
import {
  accounting,
  closedPort,
  eventually,
  makeEvent,
  metric,
  publish,
  startBlackhole,
  startDispatcher,
  testConfig,
  useDispatcherFixture,
  type RunningDispatcher,
} from './harness.ts';

const { nats, receiver, defer } = useDispatcherFixture();

async function dispatcher(input: ConfigInput): Promise<RunningDispatcher> {
  const d = await startDispatcher(nats.url, testConfig(input));
  defer(() => d.close());
  return d;
}

type TargetInput = NonNullable<ConfigInput['targets']>[number];
const fastRetry = { maxAttempts: 3, initialBackoffMs: 5, maxBackoffMs: 20 };
const target = (name: string, watchURL: string, extra: Partial<TargetInput> = {}): TargetInput => ({
  name,
  watchURL,
  methods: ['*'],
  retry: fastRetry,
  ...extra,
});

const dropped = (d: RunningDispatcher, target: string, reason: string) =>
  metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target, reason });
const failed = (d: RunningDispatcher, target: string, reason: string) =>
  metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target, reason });

/** Publishes one event every poll until `done` holds: a circuit's cooldown is over when an event gets through. */
async function publishUntil(d: RunningDispatcher, what: string, done: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  await eventually(
    async () => {
      if (await done()) return true;
      await publish(d.nc, makeEvent());
      return false;
    },
    timeoutMs,
    what,
  );
}

async function settled(d: RunningDispatcher, name: string): Promise<void> {
  await eventually(async () => (await accounting(d.metrics, name)).pending === 0 && (await accounting(d.metrics, name)).received > 0);
}

/**
 * A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs until the client gives up.
 * It lives in a child process blocked in Atomics.wait, which never accepts and takes no CPU. (Backlog 1: Node reads 0 as
 * "use the default".)
 */
async function startFullBacklog(): Promise<{ url: string; close(): Promise<void> }> {
  const script = `
    const net = require('node:net');
    const server = net.createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      require('node:fs').writeSync(1, server.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => {
      resolve(Number(chunk.toString().trim()));
    });
    child.once('exit', (code) => {
      reject(new Error(`backlog listener exited (${code})`));
    });
  });
  // Fill the queue: the first connections complete the handshake and wait there, unaccepted; later ones hang. Linux
  // queues backlog + 1 = 2 of them.
  const fillers: Socket[] = [];
  let queued = 0;
  for (let i = 0; i < 4; i++) {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.once('connect', () => queued++);
    fillers.push(socket);
  }
  await eventually(() => queued >= 2, 5000, 'two connections queued, unaccepted, on the full-backlog listener');
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of fillers) socket.destroy();
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

describe('delivery failures', () => {
  it('gives up on a target slower than its timeout and retries it', async () => {
    const r = await receiver((_req, res) => {
      setTimeout(() => res.writeHead(204).end(), 2000);
    });
    const d = await dispatcher({ targets: [target('slow', r.url, { timeoutMs: 100, retry: { ...fastRetry, maxAttempts: 2 } })] });
    await publish(d.nc, makeEvent());
    await settled(d, 'slow');
    expect(await failed(d, 'slow', 'timeout')).toBe(2);
    expect(await dropped(d, 'slow', 'retries_exhausted')).toBe(1);
    expect(r.requests).toHaveLength(2);
  });

  it('retries a refused connection, then drops the event as retries exhausted', async () => {
    const port = await closedPort();
    const d = await dispatcher({ targets: [target('down', `http://127.0.0.1:${port}/`)] });
    await publish(d.nc, makeEvent());
    await settled(d, 'down');
    expect(await failed(d, 'down', 'connection')).toBe(3);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_delivery_retries_total', { target: 'down' })).toBe(2);
    expect(await dropped(d, 'down', 'retries_exhausted')).toBe(1);
  });

  it('times out on a blackholed target that accepts and never answers', async () => {
    const hole = await startBlackhole();
    defer(() => hole.close());
    const d = await dispatcher({ targets: [target('hole', hole.url, { headersTimeoutMs: 100, timeoutMs: 150, retry: { ...fastRetry, maxAttempts: 1 } })] });
    await publish(d.nc, makeEvent());
    await settled(d, 'hole');
    expect(await failed(d, 'hole', 'timeout')).toBe(1);
    expect(await dropped(d, 'hole', 'retries_exhausted')).toBe(1);
  });

  it('fails an attempt whose connection is not established within connectTimeoutMs', async () => {
    const full = await startFullBacklog();
    defer(() => full.close());
    const d = await dispatcher({
      targets: [target('unreachable', full.url, { connectTimeoutMs: 200, timeoutMs: 60_000, retry: { ...fastRetry, maxAttempts: 2 } })],
    });
    await publish(d.nc, makeEvent());
    await settled(d, 'unreachable');
    expect(await failed(d, 'unreachable', 'connect_timeout')).toBe(2);
    expect(await dropped(d, 'unreachable', 'retries_exhausted')).toBe(1);
  });

  it('frees the concurrency slot of a sleeping retry for the events behind it', async () => {
    const first = makeEvent();
    const second = makeEvent();
    let answeredFirst = false;
    const r = await receiver((req, res) => {
      if (req.headers['webhook-id'] === first.id && !answeredFirst) {
        answeredFirst = true;
        res.writeHead(503, { 'retry-after': '2' }).end();
      } else {
        res.writeHead(204).end();
      }
    });
    const d = await dispatcher({ targets: [target('one-slot', r.url, { concurrency: 1, circuitBreaker: { failureThreshold: 100 } })] });
    await publish(d.nc, first, second);
    await r.waitFor(3);
    // Had the retry slept in its slot, the second event would wait for it: first, first, second.
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual([first.id, second.id, first.id]);
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'one-slot' })) === 2);
  });

  it('counts a 2xx with a long answer as delivered, reading only part of it', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(Buffer.alloc(1024 * 1024, 'a'));
    });
    const d = await dispatcher({ targets: [target('chatty', r.url)] });
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'chatty' })) === 2);
    expect(r.requests).toHaveLength(2);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target: 'chatty' })).toBe(0);
  });

  it('goes by the status of an answer whose body does not finish within the timeout', async () => {
    const r = await receiver((req, res) => {
      // Headers now, the rest of the body never. The 2 s timeout leaves room for the headers on a loaded machine (with
      // 200 ms, a dry run of make mutate at load 20 saw the 200 miss it).
      res.writeHead(req.url === '/ok' ? 200 : 503, { 'content-length': '100' });
      res.write('partial');
    });
    const d = await dispatcher({
      targets: [
        target('ok', `${r.url}/ok`, { timeoutMs: 2000, retry: { maxAttempts: 1 } }),
        target('busy', `${r.url}/busy`, { timeoutMs: 2000, retry: { maxAttempts: 1 } }),
      ],
    });
    await publish(d.nc, makeEvent());
    await settled(d, 'ok');
    await settled(d, 'busy');
    // Accepted is accepted: sending it again would only duplicate it.
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'ok' })).toBe(1);
    expect(await failed(d, 'busy', 'http_5xx')).toBe(1);
    expect(await failed(d, 'busy', 'timeout')).toBe(0);
  });

  it('times out every attempt in flight and every retry, not only the first', async () => {
    const hole = await startBlackhole();
    defer(() => hole.close());
    const d = await dispatcher({
      targets: [target('hole', hole.url, { concurrency: 3, timeoutMs: 150, headersTimeoutMs: 60_000, retry: { ...fastRetry, maxAttempts: 2 } })],
    });
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent());
    await eventually(async () => (await dropped(d, 'hole', 'retries_exhausted')) === 3);
    expect(await failed(d, 'hole', 'timeout')).toBe(6);
  });

  it('applies a shorter timeout from a reload while a longer one is still running', async () => {
    const hole = await startBlackhole();
    defer(() => hole.close());
    const long = { concurrency: 2, timeoutMs: 60_000, headersTimeoutMs: 60_000, retry: { maxAttempts: 1 } };
    const d = await dispatcher({ targets: [target('hole', hole.url, long)] });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_deliveries_in_flight', { target: 'hole' })) === 1);
    d.dispatcher.reconfigure(testConfig({ targets: [target('hole', hole.url, { ...long, timeoutMs: 150 })] }), new Map());
    await publish(d.nc, makeEvent());
    // The second attempt's deadline comes long before the first's: it must not wait behind it.
    await eventually(async () => (await failed(d, 'hole', 'timeout')) === 1);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_deliveries_in_flight', { target: 'hole' })).toBe(1);
  });

  it('keeps delivering to a healthy target while another is blackholed', async () => {
    const hole = await startBlackhole();
    defer(() => hole.close());
    const healthy = await receiver();
    const d = await dispatcher({
      targets: [
        target('hole', hole.url, { concurrency: 2, timeoutMs: 60_000, headersTimeoutMs: 60_000, queue: { maxEvents: 10 } }),
        target('healthy', healthy.url, { concurrency: 2 }),
      ],
    });
    const events = Array.from({ length: 200 }, () => makeEvent());
    await publish(d.nc, ...events);
    // Every event reaches the healthy target while the blackholed one still holds all its slots.
    await healthy.waitFor(200, 15_000);
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'healthy' })) === 200);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_deliveries_in_flight', { target: 'hole' })).toBe(2);
    expect(await dropped(d, 'hole', 'queue_full')).toBe(200 - 2 - 10);
  });

  it('disables a target that answers 410 Gone until the config changes', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(410).end('gone');
    });
    const d = await dispatcher({ targets: [target('gone', r.url)] });
    await publish(d.nc, makeEvent());
    await settled(d, 'gone');
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(async () => (await dropped(d, 'gone', 'disabled_410')) === 3);
    expect(r.requests).toHaveLength(1);
    expect(await failed(d, 'gone', 'http_410')).toBe(1);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_target_disabled', { target: 'gone' })).toBe(1);

    r.respond = (_req, res) => {
      res.writeHead(204).end();
    };
    d.dispatcher.reconfigure(testConfig({ targets: [target('gone', r.url, { timeoutMs: 5000 })] }), new Map());
    expect(await metric(d.metrics, 'request_mirror_dispatcher_target_disabled', { target: 'gone' })).toBe(0);
    await publish(d.nc, makeEvent());
    await r.waitFor(2);
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'gone' })) === 1);
  });

  it('retries a 429 after its Retry-After', async () => {
    let calls = 0;
    const r = await receiver((_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(429, { 'retry-after': '1' }).end();
      else res.writeHead(204).end();
    });
    const d = await dispatcher({ targets: [target('limited', r.url, { retry: { ...fastRetry, initialBackoffMs: 0, maxBackoffMs: 0 } })] });
    await publish(d.nc, makeEvent());
    const [first, second] = await r.waitFor(2);
    if (!first || !second) throw new Error('the receiver returned fewer than the two requests it waited for');
    // Backoff is 0 here, so a gap of about a second can only come from Retry-After.
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(900);
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'limited' })) === 1);
    expect(await failed(d, 'limited', 'http_429')).toBe(1);
  });

  it('retries a 5xx and drops the event once retries are exhausted', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(503).end('busy');
    });
    const d = await dispatcher({ targets: [target('flaky', r.url, { circuitBreaker: { failureThreshold: 100 } })] });
    await publish(d.nc, makeEvent());
    await settled(d, 'flaky');
    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id'])).size).toBe(1);
    expect(await failed(d, 'flaky', 'http_5xx')).toBe(3);
    expect(await dropped(d, 'flaky', 'retries_exhausted')).toBe(1);
  });

  it('does not retry other 4xx answers', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(400).end('bad');
    });
    const d = await dispatcher({ targets: [target('picky', r.url)] });
    await publish(d.nc, makeEvent());
    await settled(d, 'picky');
    expect(r.requests).toHaveLength(1);
    expect(await dropped(d, 'picky', 'not_retryable')).toBe(1);
    expect(await failed(d, 'picky', 'http_4xx')).toBe(1);
  });

  it('treats a redirect as a failure and never follows it', async () => {
    const elsewhere = await receiver();
    const r = await receiver((_req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}/stolen` }).end();
    });
    const d = await dispatcher({ targets: [target('moved', r.url)] });
    await publish(d.nc, makeEvent());
    await settled(d, 'moved');
    expect(await failed(d, 'moved', 'http_3xx')).toBe(1);
    expect(await dropped(d, 'moved', 'not_retryable')).toBe(1);
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('opens the circuit after consecutive failures, drops while open, and closes after a good trial', async () => {
    let healthy = false;
    const r = await receiver((_req, res) => {
      res.writeHead(healthy ? 204 : 500).end();
    });
    const d = await dispatcher({
      targets: [target('breaker', r.url, { concurrency: 1, retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 3, cooldownMs: 500 } })],
    });
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent());
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'breaker' })) === 1);
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(async () => (await dropped(d, 'breaker', 'circuit_open')) === 2);
    expect(r.requests).toHaveLength(3);

    healthy = true;
    const delivered = () => metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'breaker' });
    await publishUntil(d, 'a good trial after the cooldown', async () => (await delivered()) === 1);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'breaker' })).toBe(0);
    const next = makeEvent();
    await publish(d.nc, next);
    await eventually(() => r.requests.some((q) => q.headers['webhook-id'] === next.id), 10_000, 'an event after the circuit closed');
  });

  it('lets another trial through after a failed one, and closes once the target recovers', async () => {
    let healthy = false;
    const r = await receiver((_req, res) => {
      res.writeHead(healthy ? 204 : 500).end();
    });
    const d = await dispatcher({
      targets: [target('relapse', r.url, { concurrency: 1, retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 2, cooldownMs: 300 } })],
    });
    const attemptsFailed = () => metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target: 'relapse' });
    const delivered = () => metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: 'relapse' });
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'relapse' })) === 1);
    // The first trial after the cooldown fails: the circuit opens again.
    await publishUntil(d, 'a first trial', async () => (await attemptsFailed()) === 3);
    expect(r.requests).toHaveLength(3);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'relapse' })).toBe(1);

    healthy = true;
    await publishUntil(d, 'a second trial, after the failed one', async () => (await delivered()) >= 1);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'relapse' })).toBe(0);
    expect(await attemptsFailed()).toBe(3);
  });

  it('drops the events queued behind the failures that open the circuit, without attempting them', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(500).end();
    });
    const d = await dispatcher({
      targets: [target('queued', r.url, { concurrency: 1, retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 } })],
    });
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent(), makeEvent(), makeEvent());
    await eventually(async () => (await dropped(d, 'queued', 'circuit_open')) === 3);
    expect(r.requests).toHaveLength(2);
    expect(await accounting(d.metrics, 'queued')).toMatchObject({ received: 5, delivered: 0, pending: 0 });
    // What was dropped left the queue: its gauges are back to nothing, so later events are not refused as queue_full.
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queue_events', { target: 'queued' })).toBe(0);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queue_bytes', { target: 'queued' })).toBe(0);
  });

  it('takes exactly one trial when the cooldown is over, not a millisecond before, and holds the rest for its outcome', async () => {
    let clock = 1_000_000;
    let failing = true;
    let release: (() => void) | undefined;
    const r = await receiver((_req, res) => {
      if (failing) res.writeHead(500).end();
      else if (release === undefined) release = () => res.writeHead(204).end();
      else res.writeHead(204).end();
    });
    const config = testConfig({
      targets: [target('trial', r.url, { concurrency: 3, retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 1, cooldownMs: 5000 } })],
    });
    const d = await startDispatcher(nats.url, config, {}, { now: () => clock });
    defer(() => d.close());
    const m = (name: string, labels: Record<string, string> = {}) => metric(d.metrics, `request_mirror_dispatcher_${name}`, { target: 'trial', ...labels });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await m('circuit_open')) === 1);

    clock += 4999;
    await publish(d.nc, makeEvent());
    await eventually(async () => (await m('events_dropped_total', { reason: 'circuit_open' })) === 1);
    expect(r.requests).toHaveLength(1);

    clock += 1;
    failing = false;
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent());
    await eventually(async () => (await m('events_received_total')) === 5);
    // Offered and pumped in the same turn: had the gate let more than the trial through, they would be in flight now.
    expect(await m('deliveries_in_flight')).toBe(1);
    await eventually(() => release !== undefined, 10_000, 'the trial at the receiver');
    release?.();
    await eventually(async () => (await m('events_delivered_total')) === 3);
    expect(await m('circuit_open')).toBe(0);
    expect(r.requests).toHaveLength(4);
  });

  it('sends a retry that is due ahead of the fresh events queued before it', async () => {
    const [a, b, c, e] = [makeEvent(), makeEvent(), makeEvent(), makeEvent()];
    const started: { d?: RunningDispatcher } = {};
    let failedA = false;
    const r = await receiver((req, res) => {
      const id = req.headers['webhook-id'];
      if (id === a.id && !failedA) {
        failedA = true;
        res.writeHead(503).end();
      } else if (id === b.id) {
        // B holds the one slot until A's retry is scheduled (backoff 0), and 50 ms more for its timer to fire: A's retry
        // and the fresh C and E then wait together for the slot.
        void eventually(async () => started.d !== undefined && (await metric(started.d.metrics, 'request_mirror_dispatcher_delivery_retries_total', { target: 'order' })) === 1).then(() =>
          setTimeout(() => res.writeHead(204).end(), 50),
        );
      } else {
        res.writeHead(204).end();
      }
    });
    const d = await dispatcher({
      targets: [target('order', r.url, { concurrency: 1, retry: { maxAttempts: 2, initialBackoffMs: 0, maxBackoffMs: 0 }, circuitBreaker: { failureThreshold: 100 } })],
    });
    started.d = d;
    await publish(d.nc, a, b, c, e);
    await r.waitFor(5);
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual([a.id, b.id, a.id, c.id, e.id]);
  });
});

describe('what counts against a target', () => {
  /** The reason label of a target's failed attempts; fails unless there is exactly one. */
  async function reasonOf(d: RunningDispatcher, name: string): Promise<string> {
    const values = (await d.metrics.registry.getSingleMetric('request_mirror_dispatcher_delivery_attempts_failed_total')?.get())?.values ?? [];
    const mine = values.filter((v) => v.labels.target === name && v.value > 0);
    if (mine.length !== 1) throw new Error(`${name}: ${JSON.stringify(mine)}`);
    return String(mine[0]?.labels.reason);
  }

  it('labels failed attempts 408, 410 and 429 by their status and the rest by class, 300 and 418 included', async () => {
    const r = await receiver((req, res) => {
      res.writeHead(Number(req.url.slice(1))).end('no');
    });
    const statuses = [300, 408, 410, 418, 429, 599];
    const d = await dispatcher({
      targets: statuses.map((s) => target(`s${s}`, `${r.url}/${s}`, { retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 100 } })),
    });
    await publish(d.nc, makeEvent());
    for (const s of statuses) await settled(d, `s${s}`);
    const labels = await Promise.all(statuses.map(async (s) => [s, await reasonOf(d, `s${s}`)] as const));
    expect(Object.fromEntries(labels)).toEqual({ 300: 'http_3xx', 408: 'http_408', 410: 'http_410', 418: 'http_4xx', 429: 'http_429', 599: 'http_5xx' });
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total')).toBe(0);
  });

  it('takes a 4xx answer as a sign of life: it resets the run of failures that opens the circuit', async () => {
    // Three 5xx in a row open the circuit; the 400 in between must break the run.
    const answers = [500, 500, 400, 500, 500, 500];
    const r = await receiver((_req, res) => {
      res.writeHead(answers[r.requests.length - 1] ?? 204).end();
    });
    const d = await dispatcher({
      targets: [target('alive', r.url, { concurrency: 1, retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 3, cooldownMs: 60_000 } })],
    });
    const open = () => metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'alive' });
    for (let i = 0; i < 5; i++) {
      await publish(d.nc, makeEvent());
      await eventually(async () => (await accounting(d.metrics, 'alive')).pending === 0 && r.requests.length === i + 1, 10_000, `answer ${i + 1}`);
    }
    expect(await open()).toBe(0);
    await publish(d.nc, makeEvent());
    await eventually(async () => (await open()) === 1, 10_000, 'the third 5xx in a row opening the circuit');
    expect(r.requests).toHaveLength(6);
  });

  it('counts timeouts (whole attempt or headers), refused connections and connect timeouts towards the circuit', async () => {
    const hole = await startBlackhole();
    defer(() => hole.close());
    const full = await startFullBacklog();
    defer(() => full.close());
    const once = { retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } };
    const d = await dispatcher({
      targets: [
        target('slow', hole.url, { ...once, timeoutMs: 200, headersTimeoutMs: 60_000 }),
        target('headless', hole.url, { ...once, timeoutMs: 60_000, headersTimeoutMs: 200 }),
        target('refused', `http://127.0.0.1:${await closedPort()}`, once),
        target('unreachable', full.url, { ...once, connectTimeoutMs: 200, timeoutMs: 60_000 }),
      ],
    });
    await publish(d.nc, makeEvent());
    for (const name of ['slow', 'headless', 'refused', 'unreachable']) {
      await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: name })) === 1, 10_000, `${name}'s circuit open`);
    }
    const reasons = await Promise.all(['slow', 'headless', 'refused', 'unreachable'].map((name) => reasonOf(d, name)));
    expect(reasons).toEqual(['timeout', 'timeout', 'connection', 'connect_timeout']);
  });

  it('does not count an address the network policy refuses towards the circuit, and never retries it', async () => {
    const d = await dispatcher({
      targets: [target('metadata', 'http://169.254.169.254/latest', { retry: { maxAttempts: 3 }, circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } })],
    });
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(async () => (await dropped(d, 'metadata', 'address_refused')) === 2);
    expect(await failed(d, 'metadata', 'address_refused')).toBe(2);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'metadata' })).toBe(0);
  });

  it('drops a retry that was in flight when another attempt got 410 when it wakes, without sending it again', async () => {
    const [gone, busy] = [makeEvent(), makeEvent()];
    const started: { d?: RunningDispatcher } = {};
    const r = await receiver((req, res) => {
      if (req.headers['webhook-id'] === gone.id) {
        res.writeHead(410).end();
        return;
      }
      // The 503 comes once the 410 has disabled the target: its retry is scheduled on a disabled target.
      void eventually(async () => started.d !== undefined && (await metric(started.d.metrics, 'request_mirror_dispatcher_target_disabled', { target: 'both' })) === 1).then(() =>
        res.writeHead(503).end(),
      );
    });
    const d = await dispatcher({ targets: [target('both', r.url, { concurrency: 2, retry: { maxAttempts: 3, initialBackoffMs: 0, maxBackoffMs: 0 } })] });
    started.d = d;
    await publish(d.nc, busy, gone);
    await eventually(async () => (await dropped(d, 'both', 'disabled_410')) === 2);
    expect(r.requests).toHaveLength(2);
    expect(await accounting(d.metrics, 'both')).toMatchObject({ received: 2, delivered: 0, pending: 0 });
  });

  it('drops a retry sleeping out its backoff at once when the target answers 410', async () => {
    const [sleeper, gone] = [makeEvent(), makeEvent()];
    const r = await receiver((req, res) => {
      if (req.headers['webhook-id'] === sleeper.id) res.writeHead(503, { 'retry-after': '30' }).end();
      else res.writeHead(410).end();
    });
    const d = await dispatcher({
      targets: [target('later', r.url, { concurrency: 1, retry: { maxAttempts: 3, maxRetryAfterMs: 30_000 }, circuitBreaker: { failureThreshold: 100 } })],
    });
    await publish(d.nc, sleeper);
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_delivery_retries_total', { target: 'later' })) === 1);
    await publish(d.nc, gone);
    // Well before the retry's 30 s Retry-After ends.
    await eventually(async () => (await dropped(d, 'later', 'disabled_410')) === 2, 10_000, 'both events dropped as disabled_410');
    expect(r.requests).toHaveLength(2);
  });
});

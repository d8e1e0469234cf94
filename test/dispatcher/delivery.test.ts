import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../contract/config.ts';
import { requestSubject } from '../../contract/subjects.ts';
import { capturedLogger } from '../support/captured-logger.ts';
import { eventually, makeEvent, metric, PREFIX, publish, startDispatcher, testConfig, useDispatcherFixture, type RunningDispatcher } from './harness.ts';

// One HTTP attempt, as a real receiver sees it and as the dispatcher's metrics and log report it: which answers
// count as delivered, what of a refusal's answer reaches the log, and when a connection is kept for the next event.

const { nats, receiver, defer } = useDispatcherFixture();

interface LogLine {
  readonly msg: string;
  readonly err?: { readonly message?: string; readonly reason?: string; readonly status?: number };
  readonly [field: string]: unknown;
}

/** A dispatcher whose log lines are kept; the caller closes it. */
async function loggedDispatcher(input: ConfigInput): Promise<RunningDispatcher & { readonly lines: LogLine[] }> {
  const { logger, lines } = capturedLogger<LogLine>();
  const d = await startDispatcher(nats.url, testConfig(input), {}, { logger });
  return { ...d, lines };
}

async function dispatcher(input: ConfigInput): Promise<RunningDispatcher & { readonly lines: LogLine[] }> {
  const d = await loggedDispatcher(input);
  defer(() => d.close());
  return d;
}

const delivered = (d: RunningDispatcher, target: string) => metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target });
const failedAttempts = (d: RunningDispatcher, target: string) => metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target });

describe('delivery attempt', () => {
  it('counts a 200 with a body as delivered', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const d = await dispatcher({ targets: [{ name: 'ok', watchURL: r.url, methods: ['*'] }] });
    // A target's state gauges read 0 from the start, so that a dashboard sees the target before its first event.
    for (const gauge of ['request_mirror_dispatcher_target_disabled', 'request_mirror_dispatcher_circuit_open']) {
      const series = (await d.metrics.registry.getSingleMetric(gauge)?.get())?.values.filter((v) => v.labels.target === 'ok');
      expect(series?.map((v) => v.value), gauge).toEqual([0]);
    }
    const started = Date.now();
    await publish(d.nc, makeEvent());
    await eventually(async () => (await delivered(d, 'ok')) === 1);
    const elapsedSeconds = (Date.now() - started) / 1000;
    expect(await failedAttempts(d, 'ok')).toBe(0);
    // One attempt observed under its outcome, in seconds: more than nothing, less than the whole wait.
    const histogram = (await d.metrics.registry.getSingleMetric('request_mirror_dispatcher_delivery_duration_seconds')?.get())?.values ?? [];
    const mine = (suffix: string) =>
      histogram.find((v) => (v as { metricName?: string }).metricName === `request_mirror_dispatcher_delivery_duration_seconds_${suffix}` && v.labels.target === 'ok' && v.labels.outcome === 'delivered');
    expect(mine('count')?.value).toBe(1);
    expect(mine('sum')?.value).toBeGreaterThan(0);
    expect(mine('sum')?.value).toBeLessThan(elapsedSeconds);
  });

  it('goes by the final status after an informational 103 Early Hints, also when no refusal is read', async () => {
    const r = await receiver((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.writeHead(204).end();
    });
    // With responseBodyLimitBytes 0 a refusal is cut off at its status line: the 103 must not be taken for one.
    const d = await dispatcher({ dispatcher: { responseBodyLimitBytes: 0 }, targets: [{ name: 'hints', watchURL: r.url, methods: ['*'] }] });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await delivered(d, 'hints')) === 1);
    expect(await failedAttempts(d, 'hints')).toBe(0);
    expect(r.requests).toHaveLength(1);
  });

  it('logs the start of a refusal, cut at responseBodyLimitBytes, however the answer is split', async () => {
    // Three pieces 20 ms apart, so that the dispatcher most likely reads them apart: the cut falls in the third.
    const r = await receiver((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      const pieces = ['ab', 'cdefgh', 'ijklmnopqrstuvwxyz'];
      const next = () => {
        const piece = pieces.shift();
        if (piece === undefined) res.end();
        else res.write(piece, () => setTimeout(next, 20));
      };
      next();
    });
    const d = await dispatcher({ dispatcher: { responseBodyLimitBytes: 12 }, targets: [{ name: 'picky', watchURL: r.url, methods: ['*'] }] });
    await publish(d.nc, makeEvent());
    await eventually(() => d.lines.some((l) => l.msg === 'delivery failed, not retryable'));
    const line = d.lines.find((l) => l.msg === 'delivery failed, not retryable');
    expect(line?.err).toMatchObject({ message: 'HTTP 400: abcdefghijkl', reason: 'http_4xx', status: 400 });
  });

  it('settles a refusal that never ends as soon as responseBodyLimitBytes of it arrived, or at its status line with 0', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.write('0123456789abcdefghij');
    });
    // Far longer timeouts than the wait below: only the limit can settle these attempts in time. One dispatcher at a
    // time: they share the queue group.
    const slow = { methods: ['*'], timeoutMs: 120_000, headersTimeoutMs: 120_000 };
    const logged: Record<number, string | undefined> = {};
    for (const limit of [16, 0]) {
      const d = await loggedDispatcher({ dispatcher: { responseBodyLimitBytes: limit }, targets: [{ name: `limit${limit}`, watchURL: r.url, ...slow }] });
      try {
        await publish(d.nc, makeEvent());
        await eventually(() => d.lines.some((l) => l.msg === 'delivery failed, not retryable'), 10_000, `the refusal logged with limit ${limit}`);
        logged[limit] = d.lines.find((l) => l.msg === 'delivery failed, not retryable')?.err?.message;
      } finally {
        await d.close();
      }
    }
    expect(logged).toEqual({ 16: 'HTTP 400: 0123456789abcdef', 0: 'HTTP 400' });
  });

  it('logs one error when two attempts in flight are both answered 410, naming the watchURL', async () => {
    const pending: ServerResponse[] = [];
    const r = await receiver((_req, res) => {
      if (r.requests.length < 2) {
        pending.push(res);
        return;
      }
      for (const held of [...pending.splice(0), res]) held.writeHead(410).end('gone for good');
    });
    const d = await dispatcher({ targets: [{ name: 'gone', watchURL: `${r.url}/hook`, methods: ['*'], concurrency: 2 }] });
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'gone', reason: 'disabled_410' })) === 2);
    const disabled = d.lines.filter((l) => l.msg === 'target disabled until the config changes');
    expect(disabled).toHaveLength(1);
    expect(disabled[0]?.err?.message).toBe(`${r.url}/hook answered HTTP 410: gone for good`);
  });

  it('logs the circuit opening with the reason of the failure that opened it and the cooldown', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(503).end();
    });
    const d = await dispatcher({
      targets: [{ name: 'down', watchURL: r.url, methods: ['*'], retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 1, cooldownMs: 45_000 } }],
    });
    await publish(d.nc, makeEvent());
    await eventually(() => d.lines.some((l) => l.msg === 'circuit opened'));
    expect(d.lines.find((l) => l.msg === 'circuit opened')).toMatchObject({ reason: 'http_5xx', cooldownMs: 45_000, target: 'down' });
  });

  it('logs an invalid event it skips with the error code', async () => {
    const d = await dispatcher({ targets: [{ name: 'any', watchURL: 'http://127.0.0.1:9/', methods: ['*'] }] });
    d.nc.publish(requestSubject(PREFIX, 'GET'), 'not json');
    await d.nc.flush();
    await eventually(() => d.lines.some((l) => l.msg === 'skipping an invalid event'));
    expect(d.lines.find((l) => l.msg === 'skipping an invalid event')).toMatchObject({ code: 'RM_EVENT_INVALID', err: { message: expect.any(String) as unknown } });
  });

  it('logs a refusal whose answer is shorter than the limit whole, and an empty one as its status alone', async () => {
    const r = await receiver((req, res) => {
      res.writeHead(req.url === '/empty' ? 422 : 403).end(req.url === '/empty' ? '' : 'forbidden');
    });
    const d = await dispatcher({
      targets: [
        { name: 'short', watchURL: `${r.url}/short`, methods: ['*'] },
        { name: 'empty', watchURL: `${r.url}/empty`, methods: ['*'] },
      ],
    });
    await publish(d.nc, makeEvent());
    await eventually(() => d.lines.filter((l) => l.msg === 'delivery failed, not retryable').length === 2);
    const messages = d.lines.filter((l) => l.msg === 'delivery failed, not retryable').map((l) => l.err?.message);
    expect(messages.sort()).toEqual(['HTTP 403: forbidden', 'HTTP 422']);
  });

  it('reads none of a refusal when responseBodyLimitBytes is 0', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(400).end('not logged');
    });
    const d = await dispatcher({ dispatcher: { responseBodyLimitBytes: 0 }, targets: [{ name: 'quiet', watchURL: r.url, methods: ['*'] }] });
    await publish(d.nc, makeEvent());
    await eventually(() => d.lines.some((l) => l.msg === 'delivery failed, not retryable'));
    expect(d.lines.find((l) => l.msg === 'delivery failed, not retryable')?.err?.message).toBe('HTTP 400');
  });

  it('keeps the connection after a short 2xx answer (even one past responseBodyLimitBytes), and closes it after 128 KiB of a long one', async () => {
    const ports: Record<string, number[]> = { short: [], long: [] };
    const r = await receiver((req, res) => {
      const which = req.url === '/long' ? 'long' : 'short';
      ports[which]?.push(res.socket?.remotePort ?? -1);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(Buffer.alloc(which === 'long' ? 1024 * 1024 : 1024, 'a'));
    });
    // The limit is for refusals: a 2xx answer longer than it is read and thrown away, and its connection kept.
    const d = await dispatcher({
      dispatcher: { responseBodyLimitBytes: 16 },
      targets: [
        { name: 'short', watchURL: `${r.url}/short`, methods: ['*'], concurrency: 1 },
        { name: 'long', watchURL: `${r.url}/long`, methods: ['*'], concurrency: 1 },
      ],
    });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await delivered(d, 'short')) === 1 && (await delivered(d, 'long')) === 1);
    await publish(d.nc, makeEvent());
    await eventually(async () => (await delivered(d, 'short')) === 2 && (await delivered(d, 'long')) === 2);
    expect(ports.short).toHaveLength(2);
    expect(ports.short?.[1]).toBe(ports.short?.[0]);
    expect(ports.long).toHaveLength(2);
    expect(ports.long?.[1]).not.toBe(ports.long?.[0]);
  });

  it('logs RM_DELIVERY_FAILED once per event given up, with its attempts, while every failed attempt is counted', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(503).end();
    });
    const d = await dispatcher({ targets: [{ name: 'busy', watchURL: r.url, methods: ['*'], retry: { maxAttempts: 2, initialBackoffMs: 0, maxBackoffMs: 0 } }] });
    const event = makeEvent();
    await publish(d.nc, event);
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'busy', reason: 'retries_exhausted' })) === 1);
    expect(r.requests).toHaveLength(2);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target: 'busy', reason: 'http_5xx' })).toBe(2);
    const logged = d.lines.filter((l) => (l.err as { code?: string } | undefined)?.code === 'RM_DELIVERY_FAILED');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ msg: 'delivery failed, retries exhausted', eventId: event.id, attempts: 2, err: { status: 503 } });
  });

  it('logs a refusal that is not retried once, with its single attempt', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(400).end();
    });
    const d = await dispatcher({ targets: [{ name: 'refuses', watchURL: r.url, methods: ['*'] }] });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'refuses', reason: 'not_retryable' })) === 1);
    const logged = d.lines.filter((l) => (l.err as { code?: string } | undefined)?.code === 'RM_DELIVERY_FAILED');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ msg: 'delivery failed, not retryable', attempts: 1, err: { status: 400 } });
  });

  it('fails an attempt to a host name that does not resolve as a connection failure, retries it, and counts the drop', async () => {
    const d = await dispatcher({
      targets: [{ name: 'nowhere', watchURL: 'http://no-such-host.invalid/hook', methods: ['*'], retry: { maxAttempts: 2, initialBackoffMs: 0, maxBackoffMs: 0 } }],
    });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'nowhere', reason: 'retries_exhausted' })) === 1);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target: 'nowhere', reason: 'connection' })).toBe(2);
    expect(d.lines.find((l) => l.msg === 'delivery failed, retries exhausted')?.err?.message).toMatch(/^ENOTFOUND: getaddrinfo ENOTFOUND no-such-host\.invalid/);
  });
});

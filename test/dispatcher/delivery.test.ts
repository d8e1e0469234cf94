import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../contract/config.ts';
import { eventually, makeEvent, metric, publish, startDispatcher, testConfig, useDispatcherFixture, type RunningDispatcher } from './harness.ts';

// One HTTP attempt, as a real receiver sees it and as the dispatcher's metrics and log report it: which answers
// count as delivered, what of a refusal's answer reaches the log, and when a connection is kept for the next event.

const { nats, receiver, defer } = useDispatcherFixture();

interface LogLine {
  readonly msg: string;
  readonly err?: { readonly message?: string; readonly reason?: string; readonly status?: number };
}

async function dispatcher(input: ConfigInput): Promise<RunningDispatcher & { readonly lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const logger = pino(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as LogLine);
        done();
      },
    }),
  );
  const d = await startDispatcher(nats.url, testConfig(input), {}, { logger });
  defer(() => d.close());
  return { ...d, lines };
}

const delivered = (d: RunningDispatcher, target: string) => metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target });
const failedAttempts = (d: RunningDispatcher, target: string) => metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target });

describe('delivery attempt', () => {
  it('counts a 200 with a body as delivered', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const d = await dispatcher({ targets: [{ name: 'ok', watchURL: r.url, methods: ['*'] }] });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await delivered(d, 'ok')) === 1);
    expect(await failedAttempts(d, 'ok')).toBe(0);
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
    const r = await receiver((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.write('bad event: ');
      res.write('field x is missing');
      res.end(' and more');
    });
    const d = await dispatcher({ dispatcher: { responseBodyLimitBytes: 16 }, targets: [{ name: 'picky', watchURL: r.url, methods: ['*'] }] });
    await publish(d.nc, makeEvent());
    await eventually(() => d.lines.some((l) => l.msg === 'delivery failed, not retryable'));
    const line = d.lines.find((l) => l.msg === 'delivery failed, not retryable');
    expect(line?.err).toMatchObject({ message: 'HTTP 400: bad event: field', reason: 'http_4xx', status: 400 });
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

  it('keeps the connection after a short 2xx answer, and closes it after 128 KiB of a long one', async () => {
    const ports: Record<string, number[]> = { short: [], long: [] };
    const r = await receiver((req, res) => {
      const which = req.url === '/long' ? 'long' : 'short';
      ports[which]?.push(res.socket?.remotePort ?? -1);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(Buffer.alloc(which === 'long' ? 1024 * 1024 : 1024, 'a'));
    });
    const d = await dispatcher({
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

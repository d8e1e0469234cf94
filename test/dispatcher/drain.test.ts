import { describe, expect, it } from 'vitest';
import type { Responder } from '../../tools/stack/http-receiver.ts';
import { accounting, eventually, makeEvent, metric, publish, startDispatcher, testConfig, useDispatcherFixture } from './harness.ts';

// Shutdown (main.ts at SIGTERM calls drain(dispatcher.shutdownTimeoutMs)): what was received is delivered within
// the bound or dropped with reason shutdown, never lost without a count, removed targets included.

const { nats, receiver, defer } = useDispatcherFixture();
// Each test drains its dispatcher itself (drain runs once, as at SIGTERM), so its cleanup only closes the connection.

/** Answers nothing until `release()`; each held request is answered 204 then. */
function held() {
  const waiting: (() => void)[] = [];
  const respond: Responder = (_req, res) => {
    waiting.push(() => res.writeHead(204).end());
  };
  return {
    respond,
    held: () => waiting.length,
    release: () => {
      for (const f of waiting.splice(0)) f();
    },
  };
}

describe('drain', () => {
  it('finishes what is queued and in flight within the timeout, and says it completed', async () => {
    const gate = held();
    const r = await receiver(gate.respond);
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'slow', watchURL: r.url, methods: ['*'], concurrency: 1 }] }));
    defer(async () => {
      gate.release();
      await d.nc.close();
    });
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent());
    await eventually(() => gate.held() === 1 && d.dispatcher.pending() === 3, 10_000, 'one in flight and two queued');
    const draining = d.dispatcher.drain(20_000);
    // Answer each request as it comes: the queue empties one delivery at a time while drain waits.
    await eventually(() => {
      gate.release();
      return r.requests.length === 3 && d.dispatcher.pending() === 0;
    }, 10_000, 'the three deliveries');
    expect(await draining).toEqual({ completed: true });
    expect(await accounting(d.metrics, 'slow')).toEqual({ received: 3, delivered: 3, dropped: 0, pending: 0 });
  });

  it('drops what is left at the timeout with reason shutdown, in flight included, and says it did not complete', async () => {
    const gate = held();
    const r = await receiver(gate.respond);
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'stuck', watchURL: r.url, methods: ['*'], concurrency: 2, timeoutMs: 60_000 }] }));
    defer(async () => {
      gate.release();
      await d.nc.close();
    });
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent(), makeEvent());
    await eventually(() => gate.held() === 2 && d.dispatcher.pending() === 4, 10_000, 'two in flight and two queued');
    const started = Date.now();
    expect(await d.dispatcher.drain(300)).toEqual({ completed: false });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(await accounting(d.metrics, 'stuck')).toEqual({ received: 4, delivered: 0, dropped: 4, pending: 0 });
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'stuck', reason: 'shutdown' })).toBe(4);
    expect(d.dispatcher.pending()).toBe(0);
  });

  it('counts and waits for a target removed by a reload while it still delivers', async () => {
    const gate = held();
    const r = await receiver(gate.respond);
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'leaving', watchURL: r.url, methods: ['*'], concurrency: 1 }] }));
    defer(async () => {
      gate.release();
      await d.nc.close();
    });
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(() => gate.held() === 1, 10_000, 'one in flight');
    d.dispatcher.reconfigure(testConfig({ targets: [] }), new Map());
    expect(d.dispatcher.pending()).toBe(2);
    const draining = d.dispatcher.drain(300);
    expect(await draining).toEqual({ completed: false });
    expect(await accounting(d.metrics, 'leaving')).toEqual({ received: 2, delivered: 0, dropped: 2, pending: 0 });
    expect(d.dispatcher.pending()).toBe(0);
  });

  it('drops a retry sleeping out its Retry-After at the timeout at once, counts nothing twice, and drops what comes after', async () => {
    // `once` fails once then is delivered after a retry; `sleeper` waits 30 s to be retried; `stuck` stays in flight.
    const [once, sleeper, stuck] = [makeEvent(), makeEvent(), makeEvent()];
    let failedOnce = false;
    const gate = held();
    const r = await receiver((req, res) => {
      const id = req.headers['webhook-id'];
      if (id === once.id && !failedOnce) {
        failedOnce = true;
        res.writeHead(503, { 'retry-after': '0' }).end();
      } else if (id === sleeper.id) {
        res.writeHead(503, { 'retry-after': '30' }).end();
      } else if (id === stuck.id) {
        void gate.respond(req, res);
      } else {
        res.writeHead(204).end();
      }
    });
    const d = await startDispatcher(
      nats.url,
      testConfig({ targets: [{ name: 'mixed', watchURL: r.url, methods: ['*'], concurrency: 2, timeoutMs: 60_000, circuitBreaker: { failureThreshold: 100 } }] }),
    );
    defer(async () => {
      gate.release();
      await d.nc.close();
    });
    await publish(d.nc, once, sleeper, stuck);
    await eventually(
      async () => gate.held() === 1 && (await accounting(d.metrics, 'mixed')).delivered === 1 && r.requests.some((q) => q.headers['webhook-id'] === sleeper.id),
      10_000,
      'one retried and delivered, one asleep, one in flight',
    );
    const started = Date.now();
    expect(await d.dispatcher.drain(300)).toEqual({ completed: false });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await accounting(d.metrics, 'mixed')).toEqual({ received: 3, delivered: 1, dropped: 2, pending: 0 });
    // An event handed over after shutdown gave up is dropped as such, never attempted.
    const attempts = () => metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target: 'mixed' });
    const attemptsBefore = await attempts();
    d.dispatcher.handle(Buffer.from(JSON.stringify(makeEvent())));
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'mixed', reason: 'shutdown' })).toBe(3);
    expect(await attempts()).toBe(attemptsBefore);
    expect(r.requests).toHaveLength(4);
  });

  it('completes at once with nothing pending', async () => {
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'idle', watchURL: 'http://127.0.0.1:9/', methods: ['*'] }] }));
    defer(() => d.nc.close());
    expect(d.dispatcher.pending()).toBe(0);
    const started = Date.now();
    expect(await d.dispatcher.drain(10_000)).toEqual({ completed: true });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

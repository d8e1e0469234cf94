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

  it('completes at once with nothing pending', async () => {
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'idle', watchURL: 'http://127.0.0.1:9/', methods: ['*'] }] }));
    defer(() => d.nc.close());
    expect(d.dispatcher.pending()).toBe(0);
    const started = Date.now();
    expect(await d.dispatcher.drain(10_000)).toEqual({ completed: true });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

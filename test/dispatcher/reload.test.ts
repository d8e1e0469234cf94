import { describe, expect, it } from 'vitest';
import type { Responder } from '../../tools/stack/http-receiver.ts';
import { accounting, eventually, makeEvent, metric, publish, startDispatcher, testConfig, useDispatcherFixture } from './harness.ts';

const { nats, receiver, defer } = useDispatcherFixture();

describe('hot reload', () => {
  it('keeps queued and in-flight deliveries of changed and removed targets, and routes to new ones', async () => {
    const release: (() => void)[] = [];
    const hold: Responder = (_req, res) => {
      release.push(() => res.writeHead(204).end());
    };
    const kept = await receiver(hold);
    const removed = await receiver(hold);
    const added = await receiver();
    const d = await startDispatcher(
      nats.url,
      testConfig({
        targets: [
          { name: 'kept', watchURL: kept.url, methods: ['*'], concurrency: 1 },
          { name: 'removed', watchURL: removed.url, methods: ['*'], concurrency: 1 },
        ],
      }),
    );
    defer(async () => {
      for (const f of release.splice(0)) f();
      await d.close();
    });
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent());
    await kept.waitFor(1);
    await removed.waitFor(1);
    // One in flight and two queued for each target when the config changes.
    d.dispatcher.reconfigure(
      testConfig({
        targets: [
          { name: 'kept', watchURL: kept.url, methods: ['*'], concurrency: 4, timeoutMs: 20_000 },
          { name: 'added', watchURL: added.url, methods: ['*'] },
        ],
      }),
      new Map(),
    );
    await publish(d.nc, makeEvent());
    await added.waitFor(1);
    // Nothing held is released yet: kept holds 4 in flight, the removed target still 3 (1 in flight, 2 queued).
    await eventually(() => d.dispatcher.pending() === 7, 10_000, "the removed target's events still counted as pending");
    await eventually(() => {
      release.shift()?.();
      return kept.requests.length >= 4 && removed.requests.length >= 3 && release.length === 0;
    }, 10_000, 'every held request released');
    await eventually(async () => (await accounting(d.metrics, 'kept')).delivered === 4);
    await eventually(async () => (await accounting(d.metrics, 'removed')).delivered === 3);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total')).toBe(0);
    expect(removed.requests).toHaveLength(3);
    expect(d.dispatcher.pending()).toBe(0);
  });

  it('sends to a new watchURL origin after a reload, over a new pool, and closes the old one', async () => {
    const before = await receiver();
    const after = await receiver();
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'moved', watchURL: before.url, methods: ['*'] }] }));
    defer(() => d.close());
    await publish(d.nc, makeEvent());
    await eventually(async () => (await accounting(d.metrics, 'moved')).delivered === 1);
    expect(before.openConnections()).toBe(1);
    d.dispatcher.reconfigure(testConfig({ targets: [{ name: 'moved', watchURL: after.url, methods: ['*'] }] }), new Map());
    await publish(d.nc, makeEvent());
    await after.waitFor(1);
    expect(before.requests).toHaveLength(1);
    await eventually(() => before.openConnections() === 0, 10_000, 'the old pool closing its idle connection');
  });

  it('starts queued events at once when a reload raises the concurrency', async () => {
    const release: (() => void)[] = [];
    const r = await receiver((_req, res) => {
      release.push(() => res.writeHead(204).end());
    });
    // Attempts outlast the test, so no attempt ending (a timeout and its retry) can start the queued events instead.
    const wider = { name: 'wider', watchURL: r.url, methods: ['*'], timeoutMs: 120_000, headersTimeoutMs: 120_000 };
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ ...wider, concurrency: 1 }] }));
    defer(async () => {
      for (const f of release.splice(0)) f();
      await d.close();
    });
    await publish(d.nc, makeEvent(), makeEvent(), makeEvent());
    await eventually(async () => release.length === 1 && (await accounting(d.metrics, 'wider')).received === 3, 10_000, 'one in flight, two queued');
    d.dispatcher.reconfigure(testConfig({ targets: [{ ...wider, concurrency: 3 }] }), new Map());
    // Nothing finished: only the reload can have started the two queued events.
    await r.waitFor(3);
    expect(release).toHaveLength(3);
  });

  it('closes the connections of a removed target once it delivered what it held', async () => {
    const release: (() => void)[] = [];
    const r = await receiver((_req, res) => {
      release.push(() => res.writeHead(204).end());
    });
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'leaving', watchURL: r.url, methods: ['*'], concurrency: 1 }] }));
    defer(async () => {
      for (const f of release.splice(0)) f();
      await d.close();
    });
    await publish(d.nc, makeEvent(), makeEvent());
    await eventually(() => release.length === 1, 10_000, 'one in flight');
    d.dispatcher.reconfigure(testConfig({ targets: [] }), new Map());
    expect(d.dispatcher.pending()).toBe(2);
    await eventually(() => {
      release.shift()?.();
      return r.requests.length === 2 && release.length === 0;
    }, 10_000, 'both held events released');
    await eventually(() => d.dispatcher.pending() === 0, 10_000, 'the removed target idle');
    await eventually(() => r.openConnections() === 0, 10_000, 'the removed target closing its connection');
    expect(await accounting(d.metrics, 'leaving')).toEqual({ received: 2, delivered: 2, dropped: 0, pending: 0 });
  });

  it('applies a new circuitBreaker setting from a reload to the next failures', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(500).end();
    });
    const once = { name: 'tripped', watchURL: r.url, methods: ['*'], concurrency: 1, retry: { maxAttempts: 1 } };
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ ...once, circuitBreaker: { failureThreshold: 100 } }] }));
    defer(() => d.close());
    const open = () => metric(d.metrics, 'request_mirror_dispatcher_circuit_open', { target: 'tripped' });
    await publish(d.nc, makeEvent());
    await eventually(async () => (await accounting(d.metrics, 'tripped')).pending === 0 && r.requests.length === 1);
    expect(await open()).toBe(0);
    d.dispatcher.reconfigure(testConfig({ targets: [{ ...once, circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 } }] }), new Map());
    await publish(d.nc, makeEvent());
    await eventually(async () => (await open()) === 1, 10_000, 'the circuit opening at the reloaded threshold of 2');
    expect(r.requests).toHaveLength(2);
  });
});

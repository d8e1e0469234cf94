import { describe, expect, it } from 'vitest';
import type { Responder } from '../../tools/stack/http-receiver.ts';
import { accounting, eventually, makeEvent, metric, publish, startDispatcher, testConfig, useDispatcherFixture } from './harness.ts';

const { nats, receiver, defer } = useDispatcherFixture();

describe('accounting', () => {
  it('drops the newest events when the target queue is full and counts them', async () => {
    const release: (() => void)[] = [];
    const r = await receiver((_req, res) => {
      release.push(() => res.writeHead(204).end());
    });
    const d = await startDispatcher(nats.url, testConfig({ targets: [{ name: 'q', watchURL: r.url, methods: ['*'], concurrency: 1, queue: { maxEvents: 3 } }] }));
    defer(() => d.close());
    const events = Array.from({ length: 10 }, () => makeEvent());
    await publish(d.nc, ...events);
    await r.waitFor(1);
    await eventually(async () => (await accounting(d.metrics, 'q')).received === 10);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'q', reason: 'queue_full' })).toBe(6);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queue_events', { target: 'q' })).toBe(3);
    // Released one by one: the oldest four were kept, the six newest dropped.
    await eventually(() => {
      release.shift()?.();
      return r.requests.length >= 4 && release.length === 0;
    }, 10_000, 'the four kept events, released one by one');
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual(events.slice(0, 4).map((e) => e.id));
  });

  it('delivers a queue of thousands once each, oldest first, across the compactions of a long queue', async () => {
    // Past 1024 taken events the fresh queue is compacted (target-queue.ts #takeFresh): none may be sent twice,
    // skipped or reordered by it.
    let hold: (() => void) | undefined;
    const r = await receiver((_req, res) => {
      if (hold === undefined && r.requests.length === 1) {
        hold = () => res.writeHead(204).end();
        return;
      }
      res.writeHead(204).end();
    });
    const d = await startDispatcher(
      nats.url,
      testConfig({
        targets: [
          {
            name: 'long',
            watchURL: r.url,
            methods: ['*'],
            concurrency: 1,
            queue: { maxEvents: 5000, maxBytes: 64 * 1024 * 1024 },
            // The held attempt must not time out (and be sent again) while the queue fills on a loaded machine.
            timeoutMs: 120_000,
            headersTimeoutMs: 120_000,
          },
        ],
      }),
    );
    defer(() => d.close());
    const events = Array.from({ length: 3000 }, () => makeEvent());
    await publish(d.nc, ...events);
    // All of them queued behind the one held in flight, before any is taken from the queue.
    await eventually(
      async () => hold !== undefined && (await metric(d.metrics, 'request_mirror_dispatcher_queue_events', { target: 'long' })) === 2999,
      10_000,
      'the first event held by the receiver and 2999 queued',
    );
    hold?.();
    await eventually(async () => (await accounting(d.metrics, 'long')).delivered === 3000, 20_000, 'all 3000 delivered');
    expect(r.requests.map((q) => q.headers['webhook-id'])).toEqual(events.map((e) => e.id));
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queue_events', { target: 'long' })).toBe(0);
  });

  it('queues exactly queue.maxBytes of events, refuses one byte more, and takes as much again once they are delivered', async () => {
    const release: (() => void)[] = [];
    const r = await receiver((_req, res) => {
      release.push(() => res.writeHead(204).end());
    });
    // Same-size events (ids and times have fixed widths): one in flight, then room for exactly three waiting.
    const events = Array.from({ length: 10 }, () => makeEvent({ body: 'q'.repeat(500) }));
    const size = Buffer.byteLength(JSON.stringify(events[0]));
    const d = await startDispatcher(
      nats.url,
      testConfig({ targets: [{ name: 'bytes', watchURL: r.url, methods: ['*'], concurrency: 1, queue: { maxEvents: 100, maxBytes: 3 * size } }] }),
    );
    defer(async () => {
      for (const f of release.splice(0)) f();
      await d.close();
    });
    const queued = (name: string) => metric(d.metrics, `request_mirror_dispatcher_queue_${name}`, { target: 'bytes' });
    await publish(d.nc, ...events.slice(0, 5));
    await eventually(async () => (await accounting(d.metrics, 'bytes')).received === 5 && release.length === 1, 10_000, 'five received, one held');
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'bytes', reason: 'queue_full' })).toBe(1);
    expect([await queued('events'), await queued('bytes')]).toEqual([3, 3 * size]);
    await eventually(() => {
      release.shift()?.();
      return r.requests.length === 4 && release.length === 0;
    }, 10_000, 'the four kept events delivered');
    await eventually(async () => (await accounting(d.metrics, 'bytes')).delivered === 4);
    expect([await queued('events'), await queued('bytes')]).toEqual([0, 0]);
    // The same again: the bytes of the delivered events were given back.
    await publish(d.nc, ...events.slice(5));
    await eventually(async () => (await accounting(d.metrics, 'bytes')).received === 10 && release.length === 1, 10_000, 'ten received, one held');
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target: 'bytes', reason: 'queue_full' })).toBe(2);
  });

  it('holds exactly maxQueuedBytes across targets, in flight included, and shows it in queued_bytes', async () => {
    const release: (() => void)[] = [];
    const r = await receiver((_req, res) => {
      release.push(() => res.writeHead(204).end());
    });
    const events = Array.from({ length: 4 }, () => makeEvent({ body: 'g'.repeat(500) }));
    const size = Buffer.byteLength(JSON.stringify(events[0]));
    const d = await startDispatcher(
      nats.url,
      testConfig({ dispatcher: { maxQueuedBytes: 3 * size }, targets: [{ name: 'global', watchURL: r.url, methods: ['*'], concurrency: 1 }] }),
    );
    defer(async () => {
      for (const f of release.splice(0)) f();
      await d.close();
    });
    await publish(d.nc, ...events);
    await eventually(async () => (await accounting(d.metrics, 'global')).received === 4);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { reason: 'global_limit' })).toBe(1);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queued_bytes')).toBe(3 * size);
  });

  it('drops events beyond the global byte ceiling across targets', async () => {
    const release: (() => void)[] = [];
    const hold: Responder = (_req, res) => {
      release.push(() => res.writeHead(204).end());
    };
    const a = await receiver(hold);
    const b = await receiver(hold);
    const event = makeEvent({ body: 'x'.repeat(1000) });
    const size = Buffer.byteLength(JSON.stringify(event));
    const d = await startDispatcher(
      nats.url,
      testConfig({
        // Room for three events in all; each target would take many more on its own.
        dispatcher: { maxQueuedBytes: size * 3 + 10 },
        targets: [
          { name: 'a', watchURL: a.url, methods: ['*'], concurrency: 1 },
          { name: 'b', watchURL: b.url, methods: ['*'], concurrency: 1 },
        ],
      }),
    );
    defer(async () => {
      for (const f of release.splice(0)) f();
      await d.close();
    });
    await publish(d.nc, event, makeEvent({ body: 'y'.repeat(1000) }), makeEvent({ body: 'z'.repeat(1000) }));
    await eventually(async () => (await accounting(d.metrics, 'b')).received === 3);
    const droppedGlobal = await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { reason: 'global_limit' });
    expect(droppedGlobal).toBe(3);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queued_bytes')).toBeLessThanOrEqual(size * 3 + 10);
  });

  it('keeps received = delivered + dropped + pending during and after a burst with mixed outcomes', async () => {
    let n = 0;
    const r = await receiver((_req, res) => {
      const k = n++ % 5;
      if (k === 0) res.writeHead(500).end();
      else if (k === 1) res.writeHead(400).end();
      else if (k === 2) setTimeout(() => res.writeHead(204).end(), 30);
      else res.writeHead(204).end();
    });
    const d = await startDispatcher(
      nats.url,
      testConfig({
        targets: [
          {
            name: 'mixed',
            watchURL: r.url,
            methods: ['*'],
            concurrency: 4,
            queue: { maxEvents: 50 },
            retry: { maxAttempts: 2, initialBackoffMs: 5, maxBackoffMs: 20 },
            circuitBreaker: { failureThreshold: 1000 },
          },
        ],
      }),
    );
    defer(() => d.close());
    const burst = Array.from({ length: 400 }, () => makeEvent());
    const publishing = publish(d.nc, ...burst);
    let samples = 0;
    let sawPending = false;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = await accounting(d.metrics, 'mixed');
      expect(s.received).toBe(s.delivered + s.dropped + s.pending);
      samples++;
      if (s.pending > 0) sawPending = true;
      if (s.received === 400 && s.pending === 0) break;
      if (Date.now() > deadline) throw new Error(`not settled within 20 s: ${JSON.stringify(s)}`);
      // Sampled every 2 ms: the point is many snapshots while events are in flight.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await publishing;
    expect(sawPending).toBe(true);
    expect(samples).toBeGreaterThan(1);
    const final = await accounting(d.metrics, 'mixed');
    expect(final.delivered).toBeGreaterThan(0);
    expect(final.dropped).toBeGreaterThan(0);
    expect(final.received).toBe(final.delivered + final.dropped);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queue_events', { target: 'mixed' })).toBe(0);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_queued_bytes')).toBe(0);
  });
});

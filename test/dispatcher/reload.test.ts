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
});

import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { allRequestsSubject } from '../../contract/subjects.ts';
import { accounting, eventually, makeEvent, metric, publish, startDispatcher, testConfig, useDispatcherFixture, PREFIX } from './harness.ts';

const { nats, receiver, defer } = useDispatcherFixture();

describe('queue group', () => {
  it('delivers each event exactly once across two dispatchers while a plain subscriber sees every event', async () => {
    const r = await receiver();
    const config = testConfig({ targets: [{ name: 'a', watchURL: r.url, methods: ['*'] }] });
    const one = await startDispatcher(nats.url, config);
    defer(() => one.close());
    const two = await startDispatcher(nats.url, config);
    defer(() => two.close());
    const watcher = await connect({ servers: nats.url });
    defer(() => watcher.close());
    let seen = 0;
    watcher.subscribe(allRequestsSubject(PREFIX), {
      callback: () => {
        seen++;
      },
    });
    await watcher.flush();

    const events = Array.from({ length: 200 }, (_, i) => makeEvent({ method: i % 2 ? 'GET' : 'POST' }));
    await publish(one.nc, ...events);
    await r.waitFor(200);
    await eventually(() => seen === 200);
    const ids = r.requests.map((q) => q.headers['webhook-id']);
    expect(new Set(ids).size).toBe(200);
    const received = async (d: typeof one) => metric(d.metrics, 'request_mirror_dispatcher_events_received_total', { target: 'a' });
    const [n1, n2] = [await received(one), await received(two)];
    expect(n1 + n2).toBe(200);
    expect(n1).toBeGreaterThan(0);
    expect(n2).toBeGreaterThan(0);
    // Nothing arrives late as a duplicate. A PING/PONG on each dispatcher's connection returns only after every message
    // the server had routed to it (all 200 were published and flushed before); once neither then has anything
    // pending, no delivery can follow.
    await Promise.all([one.nc.flush(), two.nc.flush()]);
    await eventually(async () => (await accounting(one.metrics, 'a')).pending === 0 && (await accounting(two.metrics, 'a')).pending === 0);
    expect(await accounting(one.metrics, 'a')).toMatchObject({ received: n1, delivered: n1, dropped: 0 });
    expect(await accounting(two.metrics, 'a')).toMatchObject({ received: n2, delivered: n2, dropped: 0 });
    expect(r.requests).toHaveLength(200);
  });
});

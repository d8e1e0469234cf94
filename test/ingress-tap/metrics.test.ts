import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRUNCATION_REASONS } from '../../ingress-tap/metrics.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { eventually, send, startTap, target } from './tap-harness.ts';

// The metrics are an interface operators build dashboards and alerts on; docs/ingress-tap.md is where they read it.
// Each test builds its own tap inside the test, so that what the tap registers while it is built is checked per test.

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNatsServer({ maxPayloadBytes: 2048 });
});
afterAll(() => nats.stop());

interface Documented {
  readonly type: string;
  readonly labels: string[];
  readonly help: string;
}

const doc = readFileSync(join(import.meta.dirname, '../../docs/ingress-tap.md'), 'utf8');

/** Rows of the Metrics table of docs/ingress-tap.md: each name with its type, labels and HELP text. */
function documented(): Map<string, Documented> {
  const rows = new Map<string, Documented>();
  for (const m of doc.matchAll(/^\| `(request_mirror_\w+)` \| (\w+) \|([^|]*)\| (.*) \|$/gm)) {
    const labels = (m[3] ?? '').split(',').map((l) => l.trim()).filter(Boolean);
    rows.set(m[1] ?? '', { type: m[2] ?? '', labels, help: m[4] ?? '' });
  }
  return rows;
}

interface Registered {
  readonly labelNames: readonly string[];
  readonly upperBounds?: readonly number[];
}

describe('tap metrics', () => {
  it('registers exactly the metrics docs/ingress-tap.md lists, with their types, labels and HELP texts', async () => {
    const harness = await startTap({ natsUrl: nats.url, subscribe: false });
    try {
      const { registry } = harness.metrics;
      const docs = documented();
      expect(docs.size).toBeGreaterThan(10);
      const ours = (await registry.getMetricsAsJSON()).filter((m) => m.name.startsWith('request_mirror_'));
      expect(ours.map((m) => m.name).sort()).toEqual([...docs.keys()].sort());
      for (const m of ours) {
        const labels = [...(registry.getSingleMetric(m.name) as unknown as Registered).labelNames];
        expect({ name: m.name, type: m.type, labels, help: m.help }).toEqual({ name: m.name, ...docs.get(m.name) });
      }
    } finally {
      await harness.close();
    }
  });

  it('names every truncation reason in the HELP text of the truncated-bodies counter', () => {
    const help = documented().get('request_mirror_tap_bodies_truncated_total')?.help ?? '';
    expect(TRUNCATION_REASONS.length).toBe(4);
    for (const reason of TRUNCATION_REASONS) expect(help, reason).toContain(`(${reason}`);
  });

  it('buckets the handling time as docs/ingress-tap.md says, from 50 µs to 1 s', async () => {
    const harness = await startTap({ natsUrl: nats.url, subscribe: false });
    try {
      const histogram = harness.metrics.registry.getSingleMetric('request_mirror_tap_handling_seconds') as unknown as Registered;
      const line = /`request_mirror_tap_handling_seconds` buckets \(seconds\): ([\d.,\s]+)\./.exec(doc)?.[1];
      expect(line).toBeDefined();
      expect(histogram.upperBounds).toEqual((line ?? '').split(',').map((v) => Number(v.trim())));
    } finally {
      await harness.close();
    }
  });

  it('holds the accounting identity: received − skipped = published + dropped, once the tap is idle', async () => {
    const harness = await startTap({ natsUrl: nats.url, config: { targets: [target('writes', { methods: ['POST'] })] } });
    try {
      for (let i = 0; i < 5; i++) await send(`${harness.forwardAuthUrl}/published`, { method: 'POST', body: 'x' });
      for (let i = 0; i < 3; i++) await send(`${harness.mirrorUrl}/skipped`, { method: 'GET' });
      // Headers alone larger than the server's max_payload: dropped as event_too_large.
      for (let i = 0; i < 2; i++) await send(`${harness.mirrorUrl}/dropped`, { method: 'POST', headers: { 'x-big': 'h'.repeat(3000) }, body: 'x' });
      await harness.waitForEvents(5);
      await eventually('the two drops counted', async () => (await harness.metric('request_mirror_tap_events_dropped_total')) === 2);
      // Published once the server has confirmed them, a round trip after they were handed over.
      await eventually('the five events counted as published', async () => (await harness.metric('request_mirror_tap_events_published_total')) === 5);
      const received = await harness.metric('request_mirror_tap_requests_received_total');
      const skipped = await harness.metric('request_mirror_tap_requests_skipped_total');
      const published = await harness.metric('request_mirror_tap_events_published_total');
      const dropped = await harness.metric('request_mirror_tap_events_dropped_total');
      expect({ received, skipped, published, dropped }).toEqual({ received: 10, skipped: 3, published: 5, dropped: 2 });
      expect(await harness.metric('request_mirror_tap_events_dropped_total', { reason: 'event_too_large' })).toBe(2);
    } finally {
      await harness.close();
    }
  });
});

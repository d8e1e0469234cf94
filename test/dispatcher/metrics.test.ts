import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics, TargetMetrics } from '../../dispatcher/metrics.ts';

// The metrics are an interface operators build dashboards and alerts on; docs/dispatcher.md is where they read it.

const PREFIX = 'request_mirror_dispatcher_';

/** Rows of the Metrics table of docs/dispatcher.md: each name with its type and labels. */
function documented(): Map<string, { type: string; labels: string[] }> {
  const doc = readFileSync(join(import.meta.dirname, '../../docs/dispatcher.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Metrics'), doc.indexOf('**The accounting identity.**'));
  const rows = new Map<string, { type: string; labels: string[] }>();
  for (const m of table.matchAll(/^\| (`[^|]+`) \| (\w+) \|([^|]*)\|/gm)) {
    const labels = (m[3] ?? '').split(',').map((l) => l.trim()).filter(Boolean);
    for (const name of (m[1] ?? '').matchAll(/`(\w+)`/g)) rows.set(`${PREFIX}${name[1]}`, { type: m[2] ?? '', labels });
  }
  return rows;
}

interface Registered {
  readonly type: string;
  readonly labelNames: readonly string[];
}

describe('dispatcher metrics', () => {
  it('registers exactly the metrics docs/dispatcher.md lists, with their types and labels', async () => {
    const { registry } = createMetrics();
    const docs = documented();
    expect(docs.size).toBeGreaterThan(10);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
    expect(names).toEqual([...docs.keys()].sort());
    for (const [name, want] of docs) {
      const metric = registry.getSingleMetric(name) as unknown as Registered;
      expect({ name, type: (await registry.getSingleMetric(name)?.get())?.type, labels: [...metric.labelNames] }).toEqual({ name, type: want.type, labels: want.labels });
    }
  });

  it('gives every metric a help text', async () => {
    for (const m of await createMetrics().registry.getMetricsAsJSON()) expect(m.help, m.name).toMatch(/\w{3,}/);
  });

  it("adds Node.js's process metrics only when asked", async () => {
    const bare = (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
    expect(bare.some((n) => n.startsWith('process_') || n.startsWith('nodejs_'))).toBe(false);
    const full = (await createMetrics({ defaultMetrics: true }).registry.getMetricsAsJSON()).map((m) => m.name);
    expect(full).toContain('process_cpu_user_seconds_total');
    expect(full).toContain('nodejs_eventloop_lag_seconds');
  });

  it('records attempt durations in seconds by outcome, in buckets from 5 ms to 30 s', async () => {
    const metrics = createMetrics();
    const t = new TargetMetrics(metrics, 'audit');
    t.observeLatency('delivered', 0.004);
    t.observeLatency('delivered', 0.02);
    t.observeLatency('http_5xx', 31);
    // Bucket rows carry an `le` label the histogram's own label type does not list.
    const values = (await metrics.latency.get()).values.map((v) => {
      const labels: Record<string, string | number | undefined> = v.labels;
      return { ...v, labels };
    });
    const bucket = (outcome: string, le: number | string) =>
      values.find((v) => v.metricName === `${PREFIX}delivery_duration_seconds_bucket` && v.labels.outcome === outcome && v.labels.le === le)?.value;
    expect(values.filter((v) => v.metricName?.endsWith('_bucket') && v.labels.outcome === 'delivered').map((v) => String(v.labels.le))).toEqual([
      '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '+Inf',
    ]);
    expect(bucket('delivered', 0.005)).toBe(1);
    expect(bucket('delivered', 0.025)).toBe(2);
    expect(bucket('http_5xx', 30)).toBe(0);
    expect(bucket('http_5xx', '+Inf')).toBe(1);
    expect(values.every((v) => v.labels.target === 'audit')).toBe(true);
  });

  it('counts drops and failed attempts per target by reason, each reason on its own', async () => {
    const metrics = createMetrics();
    const a = new TargetMetrics(metrics, 'a');
    const b = new TargetMetrics(metrics, 'b');
    a.dropped('queue_full');
    a.dropped('queue_full', 3);
    a.dropped('shutdown', 2);
    b.dropped('queue_full');
    a.failedAttempt('timeout');
    a.failedAttempt('timeout');
    b.failedAttempt('http_5xx');
    const counts = async (counter: typeof metrics.dropped) =>
      Object.fromEntries((await counter.get()).values.map((v) => [`${String(v.labels.target)}/${String(v.labels.reason)}`, v.value]));
    expect(await counts(metrics.dropped)).toEqual({ 'a/queue_full': 4, 'a/shutdown': 2, 'b/queue_full': 1 });
    expect(await counts(metrics.failedAttempts)).toEqual({ 'a/timeout': 2, 'b/http_5xx': 1 });
  });
});

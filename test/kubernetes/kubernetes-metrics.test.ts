import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createKubernetesMetrics } from '../../kubernetes/kubernetes-metrics.ts';

// The metrics are an interface operators build dashboards and alerts on; operators of the Kubernetes mode read them
// in docs/install-kubernetes.md. Both services register them with this factory (kubernetes/kubernetes-targets.ts).

interface Documented {
  readonly type: string;
  readonly labels: string[];
  readonly help: string;
}

/** Rows of the Metrics section of docs/install-kubernetes.md: each name with its type, labels and HELP text. */
function documented(): Map<string, Documented> {
  const doc = readFileSync(join(import.meta.dirname, '../../docs/install-kubernetes.md'), 'utf8');
  const start = doc.indexOf('\n## Metrics\n');
  expect(start, 'docs/install-kubernetes.md has a "## Metrics" section').toBeGreaterThan(0);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end === -1 ? undefined : end);
  const rows = new Map<string, Documented>();
  for (const m of section.matchAll(/^\| `(request_mirror_\w+)` \| (\w+) \|([^|]*)\| (.*) \|$/gm)) {
    const labels = (m[3] ?? '').split(',').map((l) => l.trim()).filter(Boolean);
    rows.set(m[1] ?? '', { type: m[2] ?? '', labels, help: m[4] ?? '' });
  }
  return rows;
}

interface Registered {
  readonly labelNames: readonly string[];
}

describe('kubernetes metrics', () => {
  it('registers exactly the metrics docs/install-kubernetes.md lists, with their types, labels and HELP texts', async () => {
    const registry = new Registry();
    createKubernetesMetrics(registry);
    const docs = documented();
    expect(docs.size).toBeGreaterThanOrEqual(5);
    const registered = await registry.getMetricsAsJSON();
    expect(registered.map((m) => m.name).sort()).toEqual([...docs.keys()].sort());
    for (const m of registered) {
      const labels = [...(registry.getSingleMetric(m.name) as unknown as Registered).labelNames];
      expect({ name: m.name, type: m.type, labels, help: m.help }).toEqual({ name: m.name, ...docs.get(m.name) });
    }
  });
});

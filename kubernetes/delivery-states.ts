import type { DispatcherMetrics } from '../dispatcher/metrics.ts';
import type { DeliveryState } from './status-writer.ts';

// Reads each target's delivery state from the dispatcher's own metrics, so the status writer needs no hook inside
// the delivery path. An attempt's outcome is known from counters that moved since the previous sample.

type Sample = ReadonlyMap<string, { delivered: number; failed: ReadonlyMap<string, number> }>;

async function valuesOf<L extends string>(metric: { get(): Promise<{ values: { value: number; labels: Partial<Record<L, string | number>> }[] }> }) {
  return (await metric.get()).values;
}

export function deliveryStatesFrom(metrics: DispatcherMetrics): () => Promise<ReadonlyMap<string, DeliveryState>> {
  let previous: Sample = new Map();
  return async () => {
    const sample = new Map<string, { delivered: number; failed: Map<string, number> }>();
    const entry = (target: string) => {
      let e = sample.get(target);
      if (!e) sample.set(target, (e = { delivered: 0, failed: new Map() }));
      return e;
    };
    for (const v of await valuesOf(metrics.delivered)) entry(String(v.labels.target)).delivered = v.value;
    for (const v of await valuesOf(metrics.failedAttempts)) entry(String(v.labels.target)).failed.set(String(v.labels.reason), v.value);
    const flags = new Map<string, { disabled: boolean; circuitOpen: boolean }>();
    const flag = (target: string) => {
      let f = flags.get(target);
      if (!f) flags.set(target, (f = { disabled: false, circuitOpen: false }));
      return f;
    };
    for (const v of await valuesOf(metrics.disabled)) flag(String(v.labels.target)).disabled = v.value > 0;
    for (const v of await valuesOf(metrics.circuitOpen)) flag(String(v.labels.target)).circuitOpen = v.value > 0;

    const states = new Map<string, DeliveryState>();
    for (const target of new Set([...sample.keys(), ...flags.keys()])) {
      const now = sample.get(target) ?? { delivered: 0, failed: new Map<string, number>() };
      const before = previous.get(target);
      const delivered = now.delivered - (before?.delivered ?? 0);
      // The failure reason that grew most since the previous sample; deliveries win a tie.
      let latest: string | undefined = delivered > 0 ? 'delivered' : undefined;
      let most = delivered;
      for (const [reason, count] of now.failed) {
        const grew = count - (before?.failed.get(reason) ?? 0);
        if (grew > most) {
          latest = reason;
          most = grew;
        }
      }
      states.set(target, { ...(flags.get(target) ?? { disabled: false, circuitOpen: false }), latestOutcome: latest });
    }
    previous = sample;
    return states;
  };
}

import { Counter, Gauge, type Registry } from 'prom-client';
import { PLUGIN_DROP_REASONS, type BatchHeader, type PluginCounters } from '../contract/plugin-batch.ts';

// The counters Traefik plugins report with every batch, turned into the tap's own /metrics. A plugin's counters
// are cumulative since its Traefik started; the tap adds what each reporter's counters grew by since its last batch,
// so the totals here sum over every Traefik and survive tap restarts as rates (Prometheus' rate() handles resets).
// What a plugin counted while the tap was unreachable arrives with its next accepted batch.

/** Reporters remembered; a new Traefik start is a new reporter, so the map would otherwise grow for ever. */
const MAX_REPORTERS = 1024;

export interface PluginReports {
  record(header: BatchHeader): void;
}

export function createPluginReports(registry: Registry): PluginReports {
  const registers = [registry];
  const snapshots = new Counter({
    name: 'request_mirror_plugin_snapshots_total',
    help: 'Snapshots Traefik plugins handled, as they reported them: queued (handed to their queue) or sent (accepted by a tap).',
    labelNames: ['outcome'],
    registers,
  });
  const dropped = new Counter({
    name: 'request_mirror_plugin_snapshots_dropped_total',
    help: `Snapshots Traefik plugins dropped, by reason (${PLUGIN_DROP_REASONS.join(', ')}), as they reported them.`,
    labelNames: ['reason'],
    registers,
  });
  const bodyBytes = new Counter({
    name: 'request_mirror_plugin_body_bytes_sent_total',
    help: 'Body bytes in the snapshots Traefik plugins sent.',
    registers,
  });
  const budgetCuts = new Counter({
    name: 'request_mirror_plugin_bodies_cut_total',
    help: "Bodies Traefik plugins cut short because their byte budget (maxQueueBytes) was spent.",
    registers,
  });
  const reporters = new Gauge({
    name: 'request_mirror_plugin_reporters',
    help: 'Plugin worker pools this tap has heard from (at most 1024 remembered).',
    registers,
  });
  const last = new Map<string, PluginCounters>();
  const grew = (now: number, before: number | undefined) => (before === undefined || now < before ? now : now - before);
  return {
    record({ reporter, counters }) {
      const before = last.get(reporter);
      snapshots.inc({ outcome: 'queued' }, grew(counters.queued, before?.queued));
      snapshots.inc({ outcome: 'sent' }, grew(counters.sent, before?.sent));
      bodyBytes.inc(grew(counters.sentBodyBytes, before?.sentBodyBytes));
      budgetCuts.inc(grew(counters.budgetCuts, before?.budgetCuts));
      for (const reason of PLUGIN_DROP_REASONS) {
        const n = counters.dropped[reason];
        if (n !== undefined) dropped.inc({ reason }, grew(n, before?.dropped[reason]));
      }
      // Re-inserted so the map's order is least recently heard first.
      last.delete(reporter);
      last.set(reporter, counters);
      if (last.size > MAX_REPORTERS) {
        const oldest = last.keys().next().value;
        if (oldest !== undefined) last.delete(oldest);
      }
      reporters.set(last.size);
    },
  };
}

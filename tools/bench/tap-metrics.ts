import type { Pipeline } from './pipeline.ts';

// The tap's own view after the latency rounds, from its /metrics: how long it took from seeing a request to writing
// the 200 (request_mirror_tap_handling_seconds), its event-loop lag, and what happened to the events, the Traefik
// plugin's included. Compared with the client-side figures, it tells time inside the tap apart from time in
// Traefik, the kernel and queueing.

export interface TapView {
  readonly pipeline: string;
  /** Share of requests answered within each bucket bound (seconds → fraction), per attachment. */
  readonly handling: Readonly<Record<string, readonly { le: string; fraction: number }[]>>;
  readonly eventLoopLagMs: Readonly<Record<string, number>>;
  readonly counters: Readonly<Record<string, number>>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/;

export async function tapView(p: Pipeline): Promise<TapView> {
  const res = await fetch(`${p.tapAdminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const buckets: Record<string, { le: string; count: number }[]> = {};
  const lag: Record<string, number> = {};
  const counters: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m?.[1] || !m[3]) continue;
    const [, name, labels = '', raw] = m;
    const value = Number(raw);
    if (name === 'request_mirror_tap_handling_seconds_bucket') {
      const le = /le="([^"]+)"/.exec(labels)?.[1] ?? '';
      const attachment = /attachment="([^"]+)"/.exec(labels)?.[1] ?? '';
      (buckets[attachment] ??= []).push({ le, count: value });
    } else if (/^nodejs_eventloop_lag_(p50|p90|p99|max|mean)_seconds$/.test(name)) {
      lag[name.replace(/^nodejs_eventloop_lag_|_seconds$/g, '')] = value * 1000;
    } else if ((name.startsWith('request_mirror_tap_') || name.startsWith('request_mirror_plugin_')) && name.endsWith('_total')) {
      // The plugin's own counters (queued, sent, dropped by reason), as its pools report them to the tap: S10's
      // snapshots that never reached the tap show here with their reason.
      counters[`${name}${labels}`] = value;
    }
  }
  const handling: Record<string, { le: string; fraction: number }[]> = {};
  for (const [attachment, list] of Object.entries(buckets)) {
    const total = list.find((b) => b.le === '+Inf')?.count ?? 0;
    handling[attachment] = list.map((b) => ({ le: b.le, fraction: total ? b.count / total : 0 }));
  }
  return { pipeline: p.name, handling, eventLoopLagMs: lag, counters };
}

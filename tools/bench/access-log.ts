import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { summarize } from './stats.ts';

// Traefik's own account of each request from its JSON access log: Duration (whole request), OriginDuration (the
// upstream) and Overhead (Duration minus OriginDuration: Traefik itself plus every middleware, forwardAuth's call to
// the tap included). Read per router, i.e. per scenario; the warm-up requests are included.

export interface RouterTiming {
  readonly router: string;
  readonly requests: number;
  readonly durationMs: { p50: number; p99: number };
  readonly originMs: { p50: number; p99: number };
  readonly overheadMs: { p50: number; p99: number };
}

interface Line {
  RouterName?: string;
  Duration?: number;
  OriginDuration?: number;
  Overhead?: number;
}

export async function routerTimings(path: string): Promise<RouterTiming[]> {
  if (!existsSync(path)) return [];
  const by = new Map<string, { d: number[]; o: number[]; h: number[] }>();
  const lines = createInterface({ input: createReadStream(path) });
  for await (const text of lines) {
    if (!text) continue;
    let l: Line;
    try {
      l = JSON.parse(text) as Line;
    } catch {
      continue;
    }
    const router = (l.RouterName ?? '').replace(/@.*$/, '');
    if (!router) continue;
    const acc = by.get(router) ?? { d: [], o: [], h: [] };
    acc.d.push((l.Duration ?? 0) / 1e6);
    acc.o.push((l.OriginDuration ?? 0) / 1e6);
    acc.h.push((l.Overhead ?? 0) / 1e6);
    by.set(router, acc);
  }
  const two = (xs: number[]) => {
    const s = summarize(Float64Array.from(xs));
    return { p50: s.ms.p50, p99: s.ms.p99 };
  };
  return [...by.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([router, acc]) => ({ router, requests: acc.d.length, durationMs: two(acc.d), originMs: two(acc.o), overheadMs: two(acc.h) }));
}

import type { ScenarioResult } from './latency.ts';

// CPU time per mirrored request, from the /proc deltas the latency rounds record (utime+stime of each process over a
// round and its settling pause, over the round's requests). The goal ratio is the whole system's CPU added per
// request (Traefik's CPU per request in the scenario minus S0's, plus the tap, NATS and the dispatcher, or the
// server forwardAuth calls when that is not a tap) over S0's Traefik CPU per request, both at the same offered rate
// and round by round: round r of a scenario and of S0 ran in the same rotation.

/** The processes counted as the cost of mirroring; the webhook receiver is the user's and is shown apart. */
export const OURS = ['tap', 'nats', 'dispatcher', 'authServer'] as const;

export interface Spread {
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

export interface CpuCost {
  readonly id: string;
  readonly rate: number;
  /** µs of CPU per request, per process (proxy = Traefik), over the rounds. */
  readonly perProcessUs: Readonly<Record<string, Spread>>;
  /** Traefik's µs per request minus S0's, plus OURS. */
  readonly addedUs: Spread;
  /** addedUs over S0's Traefik µs per request; mean = mean added over mean S0, min/max over the rounds. */
  readonly ratio: Spread;
}

function spread(xs: readonly number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (!ok.length) return { mean: Number.NaN, min: Number.NaN, max: Number.NaN };
  return { mean: ok.reduce((a, b) => a + b, 0) / ok.length, min: Math.min(...ok), max: Math.max(...ok) };
}

/** One cost per cell that has a matching S0 cell (same rate); S0 itself included (its added cost is zero). */
export function cpuCosts(cells: readonly ScenarioResult[]): CpuCost[] {
  const base = new Map(cells.filter((c) => c.id === 'S0' && c.cpu?.seconds.proxy).map((c) => [c.offeredRate ?? 0, c]));
  const out: CpuCost[] = [];
  for (const c of cells) {
    const s0 = base.get(c.offeredRate ?? 0)?.cpu;
    const mine = c.cpu;
    if (!s0 || !mine?.seconds.proxy || c.via === 'nginx') continue;
    const rounds = Math.min(s0.requests.length, mine.requests.length);
    const perProcess: Record<string, number[]> = {};
    const s0Us: number[] = [];
    const added: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const us = (name: string) => ((mine.seconds[name]?.[r] ?? Number.NaN) * 1e6) / (mine.requests[r] ?? Number.NaN);
      const base0 = ((s0.seconds.proxy?.[r] ?? Number.NaN) * 1e6) / (s0.requests[r] ?? Number.NaN);
      const proxy = us('proxy');
      for (const name of Object.keys(mine.seconds)) (perProcess[name] ??= []).push(name === 'proxy' ? proxy : us(name));
      const a = proxy - base0 + OURS.reduce((sum, name) => sum + (mine.seconds[name] ? us(name) : 0), 0);
      s0Us.push(base0);
      added.push(a);
      ratios.push(a / base0);
    }
    const addedUs = spread(added);
    out.push({
      id: c.id,
      rate: c.offeredRate ?? 0,
      perProcessUs: Object.fromEntries(Object.entries(perProcess).map(([name, xs]) => [name, spread(xs)])),
      addedUs,
      ratio: { ...spread(ratios), mean: addedUs.mean / spread(s0Us).mean },
    });
  }
  return out;
}

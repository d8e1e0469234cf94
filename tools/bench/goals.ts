import { cpuCosts } from './cpu-cost.ts';
import { judgeKnees, KNEE_FACTOR } from './knee.ts';
import type { ScenarioResult } from './latency.ts';
import type { PluginAccounting } from './plugin-accounting.ts';
import type { UploadMemory } from './memory.ts';
import type { Isolation } from './isolation.ts';
import type { DispatcherThroughput, TapThroughput } from './throughput.ts';
import type { PercentileLabel } from './stats.ts';

// The benchmark's goals, each judged from this run's figures only, and each a comparison between figures measured
// side by side in the same rounds (issue 9): a 2-core machine shared with the load generator moves absolute
// latencies by an order of magnitude between rounds, but moves a scenario and its baseline alike.

export interface Section<T> {
  readonly status: 'run' | 'not run' | 'failed';
  readonly reason?: string;
  readonly value?: T;
}

export interface Goal {
  readonly goal: string;
  readonly measured: string;
  /** `undecided`: the figures measured cannot settle it either way (a knee off the sweep's grid, rounds that disagree). */
  readonly status: 'met' | 'not met' | 'undecided' | 'not run';
}

export interface Findings {
  /** One result per scenario at its own rate (the sweep's scenarios at the plan's `rate`). */
  readonly scenarios: readonly ScenarioResult[];
  /** Every (scenario, rate) cell of the latency-versus-offered-rate sweep. */
  readonly sweep: readonly ScenarioResult[];
  readonly tapThroughput: Section<TapThroughput>;
  readonly dispatcherThroughput: Section<DispatcherThroughput>;
  readonly isolation: Section<Isolation>;
  readonly uploads: Section<UploadMemory[]>;
  readonly pluginAccounting: Section<PluginAccounting>;
}

/** Each attachment's knee must reach this share of S1's (forwardAuth to a minimal Go responder: the floor). */
export const KNEE_SHARE_OF_S1 = 0.9;
/** Attachments whose knee is judged against S1's. */
export const KNEE_GOALS = ['S2h2', 'S2', 'S7', 'S10'] as const;
/**
 * Bound on the whole system's CPU added per mirrored request, as a multiple of S0's Traefik CPU per request
 * (cpu-cost.ts), judged at the plan's `rate` for these attachments.
 */
export const CPU_RATIO_BOUND = 3;
export const CPU_GOALS = ['S2h2', 'S7', 'S10'] as const;
/** A failing webhook or NATS (S3–S6) may not cost the request path more than this × S2's p99 in the same rounds. */
export const FAILURE_P99_SHARE_OF_S2 = 1.2;

/**
 * Bound on the tap's RSS growth under concurrent uploads: a fixed allowance for V8 heap slack, plus this many MiB
 * per upload in flight (capture, encoded copy, serialised event) at the 1 MiB capture limit.
 */
export const UPLOAD_GROWTH_BOUND = 3;
export const UPLOAD_GROWTH_ALLOWANCE_MIB = 64;


export function added(s: ScenarioResult, all: readonly ScenarioResult[], label: PercentileLabel): number | null {
  const base = all.find((b) => b.id === s.baseline);
  if (!s.latency || !base?.latency) return null;
  return s.latency.ms[label] - base.latency.ms[label];
}

export function evaluate(f: Findings, rate: number): Goal[] {
  const get = (id: string) => f.scenarios.find((s) => s.id === id && s.status === 'run');
  const goals: Goal[] = [];
  for (const id of KNEE_GOALS) {
    const goal = `${id} knee ≥ ${KNEE_SHARE_OF_S1} × S1's (rate where p99 first exceeds ${KNEE_FACTOR} × S0's), pooled and in every round`;
    const c = judgeKnees(f.sweep, id, 'S1', KNEE_SHARE_OF_S1);
    goals.push(c ? { goal, measured: c.text, status: c.verdict } : { goal, measured: `${id}, S1 or S0 not in the sweep`, status: 'not run' });
  }
  const costs = cpuCosts(f.sweep);
  for (const id of CPU_GOALS) {
    const goal = `${id} whole-system CPU added per mirrored request ≤ ${CPU_RATIO_BOUND} × S0's Traefik CPU per request, at ${rate.toLocaleString('en-US')} req/s`;
    const c = costs.find((x) => x.id === id && x.rate === rate);
    const s0 = costs.find((x) => x.id === 'S0' && x.rate === rate);
    if (!c || !s0 || !Number.isFinite(c.ratio.mean)) {
      goals.push({ goal, measured: `${id} or S0 not measured at ${rate} req/s`, status: 'not run' });
      continue;
    }
    goals.push({
      goal,
      measured: `${c.ratio.mean.toFixed(2)}× (rounds ${c.ratio.min.toFixed(2)}–${c.ratio.max.toFixed(2)}): +${c.addedUs.mean.toFixed(0)} µs over S0's ${s0.perProcessUs.proxy?.mean.toFixed(0) ?? '–'} µs`,
      status: c.ratio.mean <= CPU_RATIO_BOUND && c.ratio.max <= CPU_RATIO_BOUND ? 'met' : 'not met',
    });
  }
  const s2 = get('S2');
  for (const id of ['S3', 'S4', 'S5', 'S6']) {
    const s = get(id);
    const goal = `${id} p99 ≤ ${FAILURE_P99_SHARE_OF_S2} × S2's in the same rounds, zero client errors`;
    const mine = s?.perRound ?? [];
    const theirs = s2?.perRound ?? [];
    const shared = Math.min(mine.length, theirs.length);
    if (!s || !s2 || s.offeredRate !== s2.offeredRate || shared === 0) {
      goals.push({ goal, measured: `${id} or S2 not run at the same rate`, status: 'not run' });
      continue;
    }
    // Round r of both ran in the same rotation: the mean of the per-round ratios.
    const ratios = mine.slice(0, shared).map((x, r) => x.p99 / (theirs[r]?.p99 ?? Number.NaN));
    const ratio = ratios.reduce((a, b) => a + b, 0) / shared;
    goals.push({
      goal,
      measured: `${ratio.toFixed(3)}× (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')}) at ${s.offeredRate ?? 0} req/s, ${s.errors ?? 0} errors of ${s.requests ?? 0}`,
      status: ratio <= FAILURE_P99_SHARE_OF_S2 && s.errors === 0 ? 'met' : 'not met',
    });
  }
  const acc = f.pluginAccounting.value;
  const accGoal = 'S10: requests = plugin snapshots the tap received + plugin drops by reason, exactly';
  goals.push(
    acc
      ? {
          goal: accGoal,
          measured: `${acc.requests} = ${acc.received} + ${Object.entries(acc.dropped).filter(([, n]) => n > 0).map(([r, n]) => `${n} ${r}`).join(' + ') || '0 dropped'}${acc.unaccounted === 0 ? '' : `; ${acc.unaccounted} unaccounted`}`,
          status: acc.unaccounted === 0 ? 'met' : 'not met',
        }
      : { goal: accGoal, measured: f.pluginAccounting.reason ?? 'not run', status: 'not run' },
  );
  const tt = f.tapThroughput.value;
  const range = (x: { min: number; max: number }) => `${x.min.toFixed(2)}–${x.max.toFixed(2)}`;
  goals.push(
    tt
      ? {
          goal: 'tap throughput ≥ 0.8 × bare fastify (median of interleaved rounds)',
          measured: `${tt.ratio.toFixed(2)}× (rounds ${range(tt.ratioSpread)}; ${mean(tt.tapRps).toFixed(0)} vs ${mean(tt.fastifyRps).toFixed(0)} req/s)`,
          status: tt.ratio >= 0.8 && tt.tapErrors === 0 ? 'met' : 'not met',
        }
      : { goal: 'tap throughput ≥ 0.8 × bare fastify (median of interleaved rounds)', measured: f.tapThroughput.reason ?? 'not run', status: 'not run' },
  );
  const dt = f.dispatcherThroughput.value;
  goals.push(
    dt
      ? {
          goal: 'dispatcher throughput ≥ 0.7 × raw undici (median of interleaved rounds)',
          measured: `${dt.ratio.toFixed(2)}× (rounds ${range(dt.ratioSpread)}; ${mean(dt.dispatcherEps.map((x) => x ?? 0)).toFixed(0)} vs ${mean(dt.undiciEps).toFixed(0)} events/s)`,
          status: dt.ratio >= 0.7 ? 'met' : 'not met',
        }
      : { goal: 'dispatcher throughput ≥ 0.7 × raw undici (median of interleaved rounds)', measured: f.dispatcherThroughput.reason ?? 'not run', status: 'not run' },
  );
  const iso = f.isolation.value;
  goals.push(
    iso
      ? {
          goal: 'isolation (one of four targets blackholed) ≥ 0.95',
          measured: iso.ratio.toFixed(3),
          status: iso.ratio >= 0.95 ? 'met' : 'not met',
        }
      : { goal: 'isolation (one of four targets blackholed) ≥ 0.95', measured: f.isolation.reason ?? 'not run', status: 'not run' },
  );
  const up = f.uploads.value;
  if (up) {
    const worst = up.reduce((w, u) => (u.tapPeakMiB - u.tapBeforeMiB > w.tapPeakMiB - w.tapBeforeMiB ? u : w));
    const bound = UPLOAD_GROWTH_ALLOWANCE_MIB + UPLOAD_GROWTH_BOUND * worst.concurrency;
    const growth = worst.tapPeakMiB - worst.tapBeforeMiB;
    goals.push({
      goal: `tap memory bounded under ${worst.concurrency} concurrent 1 MiB uploads (growth ≤ ${UPLOAD_GROWTH_ALLOWANCE_MIB} MiB + ${UPLOAD_GROWTH_BOUND} MiB per upload)`,
      measured: `worst +${growth.toFixed(0)} MiB (${worst.attachment}), bound ${bound} MiB`,
      status: growth <= bound ? 'met' : 'not met',
    });
  } else {
    goals.push({ goal: 'tap memory bounded under concurrent 1 MiB uploads', measured: f.uploads.reason ?? 'not run', status: 'not run' });
  }
  return goals;
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

import type { ScenarioResult } from './latency.ts';
import type { UploadMemory } from './memory.ts';
import type { Isolation } from './isolation.ts';
import type { DispatcherThroughput, TapThroughput } from './throughput.ts';
import type { PercentileLabel } from './stats.ts';

// Issue #4's goals, each judged from this run's figures only.

export interface Section<T> {
  readonly status: 'run' | 'not run' | 'failed';
  readonly reason?: string;
  readonly value?: T;
}

export interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly status: 'met' | 'not met' | 'not run';
}

export interface Findings {
  readonly scenarios: readonly ScenarioResult[];
  readonly tapThroughput: Section<TapThroughput>;
  readonly dispatcherThroughput: Section<DispatcherThroughput>;
  readonly isolation: Section<Isolation>;
  readonly uploads: Section<UploadMemory[]>;
}

/**
 * Bound on the tap's RSS growth under concurrent uploads: a fixed allowance for V8 heap slack, plus this many MiB
 * per upload in flight (capture, encoded copy, serialised event) at the 1 MiB capture limit.
 */
export const UPLOAD_GROWTH_BOUND = 3;
export const UPLOAD_GROWTH_ALLOWANCE_MIB = 64;

const ms = (v: number) => `${v.toFixed(3)} ms`;

export function added(s: ScenarioResult, all: readonly ScenarioResult[], label: PercentileLabel): number | null {
  const base = all.find((b) => b.id === s.baseline);
  if (!s.latency || !base?.latency) return null;
  return s.latency.ms[label] - base.latency.ms[label];
}

export function evaluate(f: Findings): Goal[] {
  const get = (id: string) => f.scenarios.find((s) => s.id === id && s.status === 'run');
  const goals: Goal[] = [];
  const s2 = get('S2');
  const s1 = get('S1');
  const add2 = s2 ? added(s2, f.scenarios, 'p99') : null;
  const add1 = s1 ? added(s1, f.scenarios, 'p99') : null;
  goals.push(
    add2 === null || !s2
      ? { goal: 'S2 added p99 ≤ 1 ms at 2,000 req/s', measured: 'S2 or S0 not run', status: 'not run' }
      : {
          goal: 'S2 added p99 ≤ 1 ms at 2,000 req/s',
          measured: `${ms(add2)} at ${s2.offeredRate ?? 0} req/s offered, ${(s2.sentRate ?? 0).toFixed(0)} sent`,
          status: add2 <= 1 && (s2.offeredRate ?? 0) >= 2000 ? 'met' : 'not met',
        },
  );
  goals.push(
    add2 === null || add1 === null
      ? { goal: "S2 added p99 ≤ 1.15 × S1's", measured: 'S1, S2 or S0 not run', status: 'not run' }
      : {
          goal: "S2 added p99 ≤ 1.15 × S1's",
          measured: `S2 ${ms(add2)} vs S1 ${ms(add1)}${add1 > 0 ? ` (${(add2 / add1).toFixed(2)}×)` : ''}`,
          status: add1 > 0 && add2 <= 1.15 * add1 ? 'met' : 'not met',
        },
  );
  for (const id of ['S3', 'S4', 'S5', 'S6']) {
    const s = get(id);
    const goal = `${id} p99 ≤ 1.05 × S2 p99, zero client errors`;
    if (!s?.latency || !s2?.latency) {
      goals.push({ goal, measured: `${id} or S2 not run`, status: 'not run' });
      continue;
    }
    const ratio = s.latency.ms.p99 / s2.latency.ms.p99;
    goals.push({
      goal,
      measured: `${ms(s.latency.ms.p99)} vs ${ms(s2.latency.ms.p99)} (${ratio.toFixed(3)}×), ${s.errors ?? 0} errors of ${s.requests ?? 0}`,
      status: ratio <= 1.05 && s.errors === 0 ? 'met' : 'not met',
    });
  }
  const s7 = get('S7');
  const add7 = s7 ? added(s7, f.scenarios, 'p99') : null;
  goals.push(
    add7 === null
      ? { goal: 'S7 added p99 ≤ 0.2 ms', measured: 'S7 or S0 not run', status: 'not run' }
      : { goal: 'S7 added p99 ≤ 0.2 ms', measured: ms(add7), status: add7 <= 0.2 ? 'met' : 'not met' },
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

import { slope } from '../bench/stats.ts';

// What a soak's memory series says: its peak, the least-squares slope of RSS over the second half of the run, and
// whether both stay within their bounds. The first half is the warm-up (V8 sizing its heap, the allocator its
// arenas, queues filling to their limits); a leak shows as a slope that does not go to zero once they are full.

export interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly mib: number;
}

export interface Trend {
  readonly samples: number;
  readonly startMiB: number;
  readonly peakMiB: number;
  readonly endMiB: number;
  /** Least-squares slope over the samples with t ≥ half the duration, MiB per minute. */
  readonly lastHalfSlopeMiBPerMin: number;
  /** Judged only when the last half is at least `minJudgedS` long: a shorter window's slope is mostly GC noise. */
  readonly judged: boolean;
  readonly plateau: boolean;
  readonly withinBound: boolean;
}

export interface TrendLimits {
  readonly boundMiB: number;
  readonly slopeMiBPerMin: number;
  readonly minJudgedS: number;
}

export function trend(series: readonly Sample[], durationS: number, limits: TrendLimits): Trend {
  const half = series.filter((s) => s.t >= durationS / 2);
  const perMin = slope(half.map((s) => s.t), half.map((s) => s.mib)) * 60;
  const peak = series.length ? Math.max(...series.map((s) => s.mib)) : 0;
  const judged = durationS / 2 >= limits.minJudgedS && half.length >= 2;
  return {
    samples: series.length,
    startMiB: series[0]?.mib ?? 0,
    peakMiB: peak,
    endMiB: series.at(-1)?.mib ?? 0,
    lastHalfSlopeMiBPerMin: perMin,
    judged,
    plateau: perMin <= limits.slopeMiBPerMin,
    withinBound: peak <= limits.boundMiB,
  };
}

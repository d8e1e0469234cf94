import { slope } from '../bench/stats.ts';

// What a soak's memory series says: its peak, the least-squares slope over the second half of the run, and whether
// both stay within their bounds. The first half is the warm-up (V8 sizing its heap, the allocator its arenas, queues
// filling to their limits); a leak shows as a slope that does not go to zero once they are full.

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
  /**
   * How fast the floor rose over the last half: the lowest sample of its second quarter (the run's last) minus the lowest
   * of its first, per minute. Memory in use between two garbage collections includes the garbage the next one frees,
   * and where the run stops in that sawtooth moves a least-squares slope by more than a slow leak would; the lowest
   * sample of a 2.5-minute quarter is what survived its collections, and a leak lifts it by its rate × the quarter's
   * length. `plateau` is judged on this.
   */
  readonly floorGrowthMiBPerMin: number;
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
  const quarter = durationS / 4;
  const floorOf = (from: number, to: number) => Math.min(...series.filter((s) => s.t >= from && s.t < to).map((s) => s.mib));
  const floorGrowth = ((floorOf(3 * quarter, Infinity) - floorOf(2 * quarter, 3 * quarter)) / quarter) * 60;
  const peak = series.length ? Math.max(...series.map((s) => s.mib)) : 0;
  const judged = durationS / 2 >= limits.minJudgedS && half.length >= 2;
  return {
    samples: series.length,
    startMiB: series[0]?.mib ?? 0,
    peakMiB: peak,
    endMiB: series.at(-1)?.mib ?? 0,
    lastHalfSlopeMiBPerMin: perMin,
    floorGrowthMiBPerMin: floorGrowth,
    judged: judged && Number.isFinite(floorGrowth),
    plateau: floorGrowth <= limits.slopeMiBPerMin,
    withinBound: peak <= limits.boundMiB,
  };
}

export type Verdict = 'plateau' | 'GROWING' | 'OVER BOUND' | 'not judged';

/**
 * One process's verdict. A Node service is judged on what it retains (V8 heap in use + external memory: where anything
 * our code keeps must live), because its RSS moves in steps as V8 commits heap and the allocator keeps freed pages,
 * neither of which is kept data; the RSS peak must stay under the bound all the same. A process without /metrics
 * (Traefik) is judged on its RSS slope.
 */
export function verdict(p: { readonly rssTrend: Trend; readonly retainedTrend?: Trend }): Verdict {
  const judged = p.retainedTrend ?? p.rssTrend;
  if (!p.rssTrend.judged || !judged.judged) return 'not judged';
  if (!p.rssTrend.withinBound) return 'OVER BOUND';
  return judged.plateau ? 'plateau' : 'GROWING';
}

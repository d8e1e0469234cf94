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
   * How fast the floor rose over the last half, per minute: split it in thirds, take each third's lowest sample, and
   * compare the last third's with the higher of the two before. Memory in use between two garbage collections includes
   * the garbage the next one frees, and where the run stops in that sawtooth moves a least-squares slope by more than a
   * slow leak would; the lowest sample of a third (100 s of a 10-minute run) is what survived its collections. A leak
   * lifts every floor in turn, so the last stands above both earlier ones by its rate × a third's length; comparing with
   * the higher of them absorbs one floor caught low. `plateau` is judged on this.
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
  const third = durationS / 6;
  const floorOf = (from: number, to: number) => Math.min(...series.filter((s) => s.t >= from && s.t < to).map((s) => s.mib));
  const [f1, f2, f3] = [0, 1, 2].map((k) => floorOf(durationS / 2 + k * third, k === 2 ? Infinity : durationS / 2 + (k + 1) * third));
  const floorGrowth = (((f3 ?? Number.NaN) - Math.max(f1 ?? Number.NaN, f2 ?? Number.NaN)) / third) * 60;
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
 * One process's verdict. A Node service is judged on its V8 heap in use, where anything our code keeps has a JS object
 * (a Buffer's bytes sit outside the heap, but its wrapper, over 100 bytes, inside), because its RSS moves in steps as V8
 * commits heap and the allocator keeps freed pages, and its external memory jitters by whole bodies in flight, neither
 * of which is kept data. Its RSS peak must stay under the bound all the same. A process without /metrics (Traefik) is
 * judged on its RSS.
 */
export function verdict(p: { readonly rssTrend: Trend; readonly heapTrend?: Trend }): Verdict {
  const judged = p.heapTrend ?? p.rssTrend;
  if (!p.rssTrend.judged || !judged.judged) return 'not judged';
  if (!p.rssTrend.withinBound) return 'OVER BOUND';
  return judged.plateau ? 'plateau' : 'GROWING';
}

// Order statistics computed from every recorded sample (no histograms, no interpolation between buckets).

export const PERCENTILES = [50, 90, 99, 99.9] as const;
export type Percentile = (typeof PERCENTILES)[number];

export interface LatencySummary {
  readonly count: number;
  /** Milliseconds, keyed by percentile label: p50, p90, p99, p99.9, max. */
  readonly ms: Readonly<Record<PercentileLabel, number>>;
}

export type PercentileLabel = 'p50' | 'p90' | 'p99' | 'p99.9' | 'max';
export const LABELS: readonly PercentileLabel[] = ['p50', 'p90', 'p99', 'p99.9', 'max'];

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function summarize(latenciesMs: Float64Array): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    count: sorted.length,
    ms: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      'p99.9': percentile(sorted, 99.9),
      max: sorted.length ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN,
    },
  };
}

/** Points for a percentile plot: latency at p = 1 - 10^-k for k on a fine grid up to what the sample count supports. */
export function percentileCurve(latenciesMs: Float64Array): { p: number; ms: number }[] {
  const sorted = Float64Array.from(latenciesMs).sort();
  const points: { p: number; ms: number }[] = [];
  const maxNines = Math.log10(Math.max(10, sorted.length));
  for (let k = 0; k <= maxNines + 1e-9; k += 0.05) {
    const p = 100 * (1 - 10 ** -k);
    points.push({ p, ms: percentile(sorted, Math.max(p, 0.0001)) });
  }
  return points;
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i] ?? 0;
    sy += ys[i] ?? 0;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] ?? 0) - mx;
    num += dx * ((ys[i] ?? 0) - my);
    den += dx * dx;
  }
  return den === 0 ? Number.NaN : num / den;
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
}

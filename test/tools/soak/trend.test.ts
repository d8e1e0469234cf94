import { describe, expect, it } from 'vitest';
import { trend, verdict, type Sample } from '../../../tools/soak/trend.ts';

// How `make soak` judges a memory series: the slope over the last half only, so the warm-up's climb never counts, and
// a bound on the peak.

const limits = { boundMiB: 300, slopeMiBPerMin: 1, minJudgedS: 120 };

/** One sample a second for `seconds`, from `f(t)`. */
function series(seconds: number, f: (t: number) => number): Sample[] {
  return Array.from({ length: seconds + 1 }, (_, t) => ({ t, mib: f(t) }));
}

describe('soak memory trend', () => {
  it('calls a series that climbs during warm-up and then stays flat a plateau', () => {
    const s = series(600, (t) => (t < 200 ? 100 + t / 2 : 200 + (t % 7) * 0.3));
    const r = trend(s, 600, limits);
    expect(r.judged).toBe(true);
    expect(Math.abs(r.lastHalfSlopeMiBPerMin)).toBeLessThan(0.1);
    expect(r.plateau).toBe(true);
    expect(r.peakMiB).toBeCloseTo(201.8, 5);
    expect(r.withinBound).toBe(true);
  });

  it('does not call a series growing 2 MiB per minute over its last half a plateau', () => {
    const r = trend(series(600, (t) => 150 + (2 * t) / 60), 600, limits);
    expect(r.lastHalfSlopeMiBPerMin).toBeCloseTo(2, 6);
    expect(r.floorGrowthMiBPerMin).toBeCloseTo(2, 1);
    expect(r.plateau).toBe(false);
  });

  it('reports a peak above the bound even when the series is flat', () => {
    const r = trend(series(600, (t) => (t === 100 ? 320 : 150)), 600, limits);
    expect(r.plateau).toBe(true);
    expect(r.withinBound).toBe(false);
  });

  it('does not judge a run whose last half is shorter than the minimum', () => {
    const r = trend(series(200, () => 150), 200, limits);
    expect(r.judged).toBe(false);
  });

  it('judges a service by its heap in use: a step in RSS with a flat heap is a plateau', () => {
    const rss = trend(series(600, (t) => (t < 450 ? 250 : 290)), 600, limits);
    const heap = trend(series(600, (t) => 90 + (t % 11) * 0.5), 600, limits);
    expect(rss.plateau).toBe(false);
    expect(verdict({ rssTrend: rss, heapTrend: heap })).toBe('plateau');
    expect(verdict({ rssTrend: rss })).toBe('GROWING');
  });

  it('calls a service whose heap in use grows GROWING, and one whose RSS peak passes the bound OVER BOUND', () => {
    const flatRss = trend(series(600, () => 200), 600, limits);
    expect(verdict({ rssTrend: flatRss, heapTrend: trend(series(600, (t) => 80 + (3 * t) / 60), 600, limits) })).toBe('GROWING');
    const over = trend(series(600, (t) => (t === 30 ? 400 : 200)), 600, limits);
    expect(verdict({ rssTrend: over, heapTrend: trend(series(600, () => 80), 600, limits) })).toBe('OVER BOUND');
    expect(verdict({ rssTrend: trend(series(100, () => 200), 100, limits) })).toBe('not judged');
  });

  it('judges the floors between collections: a steady sawtooth that stops at its top is a plateau', () => {
    // Garbage piles up for 100 s, then a collection frees it; the run ends just before one.
    const r = trend(series(590, (t) => 100 + (t % 100) / 2), 590, limits);
    expect(r.lastHalfSlopeMiBPerMin).toBeGreaterThan(1);
    expect(Math.abs(r.floorGrowthMiBPerMin)).toBeLessThan(0.01);
    expect(r.plateau).toBe(true);
  });
});

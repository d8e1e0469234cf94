import { describe, expect, it } from 'vitest';
import { trend, type Sample } from '../../../tools/soak/trend.ts';

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
});

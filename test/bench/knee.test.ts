import { describe, expect, it } from 'vitest';
import { compareKnees, judgeKnees, kneeOf, knees, type Knee } from '../../tools/bench/knee.ts';
import type { ScenarioResult } from '../../tools/bench/latency.ts';

// The knee arithmetic the benchmark's headline goals rest on.

function cell(id: string, rate: number, p99: number): ScenarioResult {
  return { id, title: id, baseline: id === 'S0' ? null : 'S0', status: 'run', offeredRate: rate, latency: { count: 1, ms: { p50: p99, p90: p99, p99, 'p99.9': p99, max: p99 } } };
}

const knee = (id: string, low: number, high: number): Knee => ({ id, ratios: [], low, high, label: `${low}-${high}` });

describe('the knee of a sweep scenario', () => {
  it('interpolates the crossing of 2 × S0 linearly in log(rate) between the grid rates around it', () => {
    // Ratio 1 at 500 and 3 at 2000: half way in log(rate) between them is 1000.
    const k = kneeOf([
      { rate: 250, ratio: 1 },
      { rate: 500, ratio: 1 },
      { rate: 2000, ratio: 3 },
    ]);
    expect(k.low).toBeCloseTo(1000, 6);
    expect(k.high).toBe(k.low);
    expect(k.label).toBe('1,000 req/s');
  });

  it('says "> highest rate" when the ratio never exceeds 2', () => {
    expect(kneeOf([{ rate: 250, ratio: 1.2 }, { rate: 2000, ratio: 2 }])).toEqual({ low: 2000, high: Number.POSITIVE_INFINITY, label: '> 2,000 req/s' });
  });

  it('says "≤ lowest rate" when the ratio already exceeds 2 at the lowest rate', () => {
    expect(kneeOf([{ rate: 250, ratio: 2.5 }, { rate: 500, ratio: 9 }])).toEqual({ low: 0, high: 250, label: '≤ 250 req/s' });
  });

  it('divides each scenario\'s p99 by S0\'s at the same rate', () => {
    const cells = [cell('S0', 500, 2), cell('S0', 1000, 4), cell('S1', 500, 3), cell('S1', 1000, 12)];
    const [s1] = knees(cells);
    expect(s1?.ratios).toEqual([{ rate: 500, ratio: 1.5 }, { rate: 1000, ratio: 3 }]);
    expect(s1?.low).toBeCloseTo(Math.exp(Math.log(500) + (0.5 / 1.5) * Math.log(2)), 6);
  });

  it("reads one round's p99 alone when given the round", () => {
    const withRounds = (id: string, rate: number, p99s: number[]) => ({ ...cell(id, rate, 1), perRound: p99s.map((p99) => ({ p50: 1, p99, sentRate: rate })) });
    const cells = [withRounds('S0', 500, [2, 4]), withRounds('S1', 500, [3, 12])];
    expect(knees(cells, 0)[0]?.ratios).toEqual([{ rate: 500, ratio: 1.5 }]);
    expect(knees(cells, 1)[0]?.ratios).toEqual([{ rate: 500, ratio: 3 }]);
  });
});

describe('judging a knee against S1', () => {
  const withRounds = (id: string, rate: number, pooled: number, p99s: number[]) => ({ ...cell(id, rate, pooled), perRound: p99s.map((p99) => ({ p50: 1, p99, sentRate: rate })) });

  it('decides when the pooled figures and every round agree', () => {
    const sweep = [
      withRounds('S0', 500, 1, [1, 1]),
      withRounds('S0', 1000, 1, [1, 1]),
      withRounds('S1', 500, 1, [1, 1]),
      withRounds('S1', 1000, 1, [1, 1]),
      withRounds('S2h2', 500, 5, [5, 5]),
      withRounds('S2h2', 1000, 9, [9, 9]),
    ];
    expect(judgeKnees(sweep, 'S2h2', 'S1', 0.9)?.verdict).toBe('not met');
  });

  it('is undecided when one round says otherwise', () => {
    const sweep = [
      withRounds('S0', 500, 1, [1, 1]),
      withRounds('S0', 1000, 1, [1, 1]),
      withRounds('S1', 500, 1, [1, 1]),
      withRounds('S1', 1000, 1, [1, 1]),
      withRounds('S2h2', 500, 5, [5, 1]),
      withRounds('S2h2', 1000, 9, [9, 1]),
    ];
    const c = judgeKnees(sweep, 'S2h2', 'S1', 0.9);
    expect(c?.verdict).toBe('undecided');
    expect(c?.text).toContain('the rounds disagree');
  });
});

describe('comparing two knees', () => {
  it('judges two knees inside the grid by their ratio', () => {
    expect(compareKnees(knee('S2h2', 900, 900), knee('S1', 1000, 1000), 0.9).verdict).toBe('met');
    expect(compareKnees(knee('S2h2', 890, 890), knee('S1', 1000, 1000), 0.9).verdict).toBe('not met');
  });

  it('is undecided when both hold past the highest rate', () => {
    const c = compareKnees(knee('S2h2', 2000, Number.POSITIVE_INFINITY), knee('S1', 2000, Number.POSITIVE_INFINITY), 0.9);
    expect(c.verdict).toBe('undecided');
  });

  it('is met when the attachment holds past the highest rate and the floor breaks inside the grid', () => {
    expect(compareKnees(knee('S2h2', 2000, Number.POSITIVE_INFINITY), knee('S1', 1500, 1500), 0.9).verdict).toBe('met');
  });

  it('is not met when the attachment breaks well below a floor that holds past the grid', () => {
    expect(compareKnees(knee('S2h2', 600, 600), knee('S1', 2000, Number.POSITIVE_INFINITY), 0.9).verdict).toBe('not met');
  });
});

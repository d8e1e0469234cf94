import { describe, expect, it } from 'vitest';
import { cpuCosts } from '../../tools/bench/cpu-cost.ts';
import type { ScenarioResult } from '../../tools/bench/latency.ts';

// The CPU-per-request arithmetic behind the benchmark's CPU goal.

/** µs per request given, as CPU seconds over 1000 requests a round. */
function cell(id: string, rate: number, us: Record<string, number[]>): ScenarioResult {
  const seconds = Object.fromEntries(Object.entries(us).map(([name, xs]) => [name, xs.map((x) => (x * 1000) / 1e6)]));
  const rounds = us.proxy?.length ?? 0;
  return {
    id,
    title: id,
    baseline: id === 'S0' ? null : 'S0',
    via: 'traefik',
    status: 'run',
    offeredRate: rate,
    cpu: { seconds, requests: Array<number>(rounds).fill(1000) },
  };
}

describe('CPU time per mirrored request', () => {
  it("adds Traefik's CPU over S0's, round by round, to the tap's, NATS' and the dispatcher's, and leaves the receiver out", () => {
    const [s0, s2] = cpuCosts([
      cell('S0', 1000, { proxy: [100, 200] }),
      cell('S2', 1000, { proxy: [150, 260], tap: [100, 100], nats: [20, 20], dispatcher: [80, 80], receiver: [500, 500] }),
    ]);
    expect(s0?.addedUs.mean).toBe(0);
    // Round 1: 50 + 200 = 250 over 100; round 2: 60 + 200 = 260 over 200.
    expect(s2?.addedUs).toEqual({ mean: 255, min: 250, max: 260 });
    expect(s2?.ratio.min).toBeCloseTo(1.3, 9);
    expect(s2?.ratio.max).toBeCloseTo(2.5, 9);
    // The pooled ratio: mean added over mean S0.
    expect(s2?.ratio.mean).toBeCloseTo(255 / 150, 9);
  });

  it('compares only with S0 at the same offered rate', () => {
    const costs = cpuCosts([cell('S0', 500, { proxy: [100] }), cell('S2', 1000, { proxy: [150], tap: [100] })]);
    expect(costs.map((c) => c.id)).toEqual(['S0']);
  });
});

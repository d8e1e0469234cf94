import type { ScenarioResult } from './latency.ts';

// The knee of each sweep scenario: the offered rate at which its p99 first exceeds KNEE_FACTOR × S0's p99 at the same
// rate (S0's cell at that rate, in the same rounds). Between two grid rates the ratio is taken as linear in log(rate): the knee is
// where that line crosses KNEE_FACTOR. A knee beyond the grid is known only as a bound ("> highest rate", "< lowest
// rate"), so every knee is an interval and comparisons between knees say when the grid cannot decide them.

export const KNEE_FACTOR = 2;

export interface Knee {
  readonly id: string;
  /** p99 over S0's p99 at each sweep rate, ascending rates. */
  readonly ratios: readonly { readonly rate: number; readonly ratio: number }[];
  /** The knee lies within [low, high] req/s: equal when it falls inside the grid, high infinite when never crossed. */
  readonly low: number;
  readonly high: number;
  readonly label: string;
}

const fmt = (rate: number) => Math.round(rate).toLocaleString('en-US');

/**
 * Knees of every sweep scenario but S0, from the p99 pooled over the rounds, or from one round's p99 alone (round r of
 * every cell: the rotation ran them in the same pass). No S0, no knees.
 */
export function knees(sweep: readonly ScenarioResult[], round?: number): Knee[] {
  const p99 = (c: ScenarioResult) => (round === undefined ? c.latency?.ms.p99 : c.perRound?.[round]?.p99);
  const base = new Map(sweep.filter((c) => c.id === 'S0' && p99(c) !== undefined).map((c) => [c.offeredRate ?? 0, p99(c) ?? Number.NaN]));
  const ids = [...new Set(sweep.map((c) => c.id))].filter((id) => id !== 'S0');
  return ids
    .map((id) => {
      const ratios = sweep
        .filter((c) => c.id === id && p99(c) !== undefined && base.has(c.offeredRate ?? 0))
        .map((c) => ({ rate: c.offeredRate ?? 0, ratio: (p99(c) ?? Number.NaN) / (base.get(c.offeredRate ?? 0) ?? Number.NaN) }))
        .sort((a, b) => a.rate - b.rate);
      return { id, ratios, ...kneeOf(ratios) };
    })
    .filter((k) => k.ratios.length > 0);
}

/** How many rounds every sweep cell has. */
export function sweepRounds(sweep: readonly ScenarioResult[]): number {
  return sweep.length ? Math.min(...sweep.map((c) => c.perRound?.length ?? 0)) : 0;
}

/**
 * Is knee(a) ≥ factor × knee(b), pooled and round by round? Decided only when the pooled comparison and every round's
 * agree: on a shared machine one round's stall can move a pooled p99 by an order of magnitude.
 */
export function judgeKnees(sweep: readonly ScenarioResult[], a: string, b: string, factor: number): KneeComparison | null {
  const pick = (ks: readonly Knee[], id: string) => ks.find((k) => k.id === id);
  const pooled = knees(sweep);
  const ka = pick(pooled, a);
  const kb = pick(pooled, b);
  if (!ka || !kb) return null;
  const all = compareKnees(ka, kb, factor);
  const perRound: KneeComparison[] = [];
  for (let r = 0; r < sweepRounds(sweep); r++) {
    const ks = knees(sweep, r);
    const ra = pick(ks, a);
    const rb = pick(ks, b);
    if (ra && rb) perRound.push(compareKnees(ra, rb, factor));
  }
  const agree = perRound.every((c) => c.verdict === all.verdict);
  const rounds = perRound.map((c, r) => `round ${r + 1}: ${c.text.replace(/ \(undecided within the sweep grid\)$/, '')} (${c.verdict})`).join('; ');
  return {
    ...all,
    verdict: agree ? all.verdict : 'undecided',
    text: `${all.text}${agree ? '' : ' — undecided: the rounds disagree'}${rounds ? `. ${rounds}` : ''}`,
  };
}

/** Where the ratios first exceed KNEE_FACTOR, interpolated linearly in log(rate) between the two grid rates around it. */
export function kneeOf(ratios: readonly { rate: number; ratio: number }[]): { low: number; high: number; label: string } {
  const first = ratios.findIndex((r) => !(r.ratio <= KNEE_FACTOR));
  if (first === -1) {
    const top = ratios.at(-1)?.rate ?? 0;
    return { low: top, high: Number.POSITIVE_INFINITY, label: `> ${fmt(top)} req/s` };
  }
  const hit = ratios[first];
  const before = ratios[first - 1];
  if (!hit) return { low: 0, high: 0, label: '–' };
  if (!before) return { low: 0, high: hit.rate, label: `≤ ${fmt(hit.rate)} req/s` };
  const t = Number.isFinite(hit.ratio) ? (KNEE_FACTOR - before.ratio) / (hit.ratio - before.ratio) : 1;
  const rate = Math.exp(Math.log(before.rate) + t * (Math.log(hit.rate) - Math.log(before.rate)));
  return { low: rate, high: rate, label: `${fmt(rate)} req/s` };
}

export interface KneeComparison {
  /** Bounds of knee(a) / knee(b). */
  readonly low: number;
  readonly high: number;
  readonly verdict: 'met' | 'not met' | 'undecided';
  readonly text: string;
}

/** Is knee(a) ≥ factor × knee(b)? Undecided when the intervals straddle the factor (the grid is too coarse or short). */
export function compareKnees(a: Knee, b: Knee, factor: number): KneeComparison {
  const low = b.high === Number.POSITIVE_INFINITY ? 0 : a.low / b.high;
  const high = b.low === 0 ? Number.POSITIVE_INFINITY : a.high / b.low;
  const verdict = low >= factor ? 'met' : high < factor ? 'not met' : 'undecided';
  const ratio = low === high ? `${low.toFixed(2)}×` : `between ${low.toFixed(2)}× and ${high === Number.POSITIVE_INFINITY ? '∞' : `${high.toFixed(2)}×`}`;
  return { low, high, verdict, text: `${a.id} ${a.label} vs ${b.id} ${b.label}: ${ratio}${verdict === 'undecided' ? ' (undecided within the sweep grid)' : ''}` };
}

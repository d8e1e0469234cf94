import { readRssKiB } from '../bench/proc-stats.ts';
import { readMetrics, sum } from './metrics.ts';

// Memory of the tap and the dispatcher over a fuzz run: RSS from /proc, and the V8 heap and external memory from
// their own /metrics (prom-client's default metrics), so that RSS growing with a flat heap (the allocator keeping
// pages) can be told apart from a heap that grows (something kept).

export interface MemorySeries {
  /** Index of the first sample taken after the warm-up; the judgement starts there. */
  warmFrom: number | null;
  readonly rssMiB: number[];
  readonly heapUsedMiB: number[];
  readonly externalMiB: number[];
}

export interface MemoryFigures {
  /** Of the samples after the warm-up. */
  readonly firstThirdMiB: number;
  readonly lastThirdMiB: number;
  readonly peakMiB: number;
  /** lastThird / firstThird − 1, of RSS after the warm-up. */
  readonly growth: number;
  /** The same for the V8 heap in use. */
  readonly heapGrowth: number;
  /** RSS and heap used at ten even points of the whole run (warm-up included), MiB. */
  readonly rssDecilesMiB: readonly number[];
  readonly heapDecilesMiB: readonly number[];
  readonly judged: boolean;
  readonly flat: boolean;
}

export interface Watched {
  readonly name: string;
  readonly pid: () => number;
  readonly adminUrl: string;
}

const MiB = 1024 * 1024;

/**
 * Samples every `intervalMs` until stopped. `warm` says when the warm-up is over: V8 and the allocator grow a fresh
 * process's memory for a while under a new load (seen: the tap's RSS rose for its first ~50,000 requests, then stayed
 * within 1 MiB for 200,000 more with its heap flat), and that growth is not what a leak looks like.
 */
export function watchMemory(watched: readonly Watched[], warm: () => boolean, intervalMs = 1000): { stop(): Record<string, MemorySeries> } {
  const series = new Map<string, MemorySeries>(watched.map((w) => [w.name, { warmFrom: null, rssMiB: [], heapUsedMiB: [], externalMiB: [] }]));
  let busy = false;
  const sample = async () => {
    if (busy) return;
    busy = true;
    try {
      await Promise.all(
        watched.map(async (w) => {
          const s = series.get(w.name);
          const metrics = await readMetrics(w.adminUrl).catch(() => null);
          if (!s || !metrics) return;
          if (s.warmFrom === null && warm()) s.warmFrom = s.rssMiB.length;
          s.rssMiB.push(readRssKiB(w.pid()) / 1024);
          s.heapUsedMiB.push(sum(metrics, 'nodejs_heap_size_used_bytes') / MiB);
          s.externalMiB.push(sum(metrics, 'nodejs_external_memory_bytes') / MiB);
        }),
      );
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void sample(), intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Object.fromEntries(series);
    },
  };
}

/**
 * Judges a series after its warm-up: flat when the median RSS of the last third is within `tolerance` of the first
 * third's. Not judged when asked not to, or when the warm-up never ended.
 */
export function memoryFigures(s: MemorySeries, tolerance: number, judge: boolean): MemoryFigures {
  const rss = s.rssMiB.slice(s.warmFrom ?? s.rssMiB.length);
  const growth = thirdsGrowth(rss);
  return {
    firstThirdMiB: median(firstThird(rss)),
    lastThirdMiB: median(lastThird(rss)),
    peakMiB: s.rssMiB.length ? Math.max(...s.rssMiB) : 0,
    growth,
    heapGrowth: thirdsGrowth(s.heapUsedMiB.slice(s.warmFrom ?? s.heapUsedMiB.length)),
    rssDecilesMiB: deciles(s.rssMiB),
    heapDecilesMiB: deciles(s.heapUsedMiB),
    judged: judge && rss.length >= 3,
    flat: growth <= tolerance,
  };
}

function thirdsGrowth(values: readonly number[]): number {
  const first = median(firstThird(values));
  return first > 0 ? median(lastThird(values)) / first - 1 : 0;
}

const third = (values: readonly number[]) => Math.max(1, Math.floor(values.length / 3));
const firstThird = (values: readonly number[]) => values.slice(0, third(values));
const lastThird = (values: readonly number[]) => values.slice(-third(values));

function deciles(values: readonly number[]): number[] {
  if (values.length === 0) return [];
  return Array.from({ length: 10 }, (_, i) => values[Math.min(values.length - 1, Math.round((i * (values.length - 1)) / 9))] ?? 0);
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

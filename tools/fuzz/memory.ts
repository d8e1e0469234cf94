import { readRssKiB } from '../bench/proc-stats.ts';
import { readMetrics, sum } from './metrics.ts';

// Memory of the tap and the dispatcher over a fuzz run: RSS from /proc, and the V8 heap and external memory from
// their own /metrics (prom-client's default metrics), so that RSS growing with a flat heap (the allocator keeping
// pages) can be told apart from a heap that grows (something kept).

export interface MemorySeries {
  readonly rssMiB: number[];
  readonly heapUsedMiB: number[];
  readonly externalMiB: number[];
}

export interface MemoryFigures {
  readonly firstThirdMiB: number;
  readonly lastThirdMiB: number;
  readonly peakMiB: number;
  /** lastThird / firstThird − 1, of RSS. */
  readonly growth: number;
  /** The same for the V8 heap in use. */
  readonly heapGrowth: number;
  /** RSS and heap used at ten even points of the run, MiB. */
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

export function watchMemory(watched: readonly Watched[], intervalMs = 1000): { stop(): Record<string, MemorySeries> } {
  const series = new Map<string, MemorySeries>(watched.map((w) => [w.name, { rssMiB: [], heapUsedMiB: [], externalMiB: [] }]));
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

/** Judges a series: flat when RSS of the last third is within `tolerance` of the first third's (medians). */
export function memoryFigures(s: MemorySeries, tolerance: number, judged: boolean): MemoryFigures {
  const growth = thirdsGrowth(s.rssMiB);
  return {
    firstThirdMiB: median(firstThird(s.rssMiB)),
    lastThirdMiB: median(lastThird(s.rssMiB)),
    peakMiB: s.rssMiB.length ? Math.max(...s.rssMiB) : 0,
    growth,
    heapGrowth: thirdsGrowth(s.heapUsedMiB),
    rssDecilesMiB: deciles(s.rssMiB),
    heapDecilesMiB: deciles(s.heapUsedMiB),
    judged,
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

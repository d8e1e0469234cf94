import { load1 } from '../bench/machine.ts';
import { startSampler, type ResourceFigures } from '../bench/proc-stats.ts';
import { readMetrics, sum } from '../fuzz/metrics.ts';
import { startNatsServer } from '../stack/nats-server.ts';
import { startDispatcherBlackholed } from './dispatcher-blackholed.ts';
import { startLargeBodies } from './large-bodies.ts';
import { MiB, type Accounting, type Load, type SoakContext, type SoakSetup, type WatchedProcess } from './soak.ts';
import { startTapNatsDown } from './tap-nats-down.ts';
import { trend, type Sample, type Trend } from './trend.ts';

// The three soaks side by side in one window: each starts its processes, then all three loads run at once for the
// same duration while every watched process's RSS is read from /proc each second (and the Node services' V8 heap
// from their /metrics every two seconds, to tell a heap that grows from an allocator that keeps pages).

export interface Rates {
  /** Events/s published to the blackholed dispatcher. */
  readonly dispatcherEvents: number;
  /** Requests/s to the tap whose NATS is down. */
  readonly tapRequests: number;
  /** 1 MiB uploads/s through Traefik. */
  readonly uploads: number;
}

export interface Limits {
  /** The plateau criterion: growth of the floor of the V8 heap in use (RSS for Traefik) over the last half, MiB per minute. */
  readonly slopeMiBPerMin: number;
  /** A shorter last half is not judged. */
  readonly minJudgedS: number;
}

export interface ProcessResult {
  readonly watched: WatchedProcess;
  /** RSS when the load started, MiB. */
  readonly idleMiB: number;
  readonly boundMiB: number;
  readonly rss: readonly Sample[];
  /** The V8 heap in use, the heap V8 has committed, and memory outside it (Buffers), MiB, every 2 s. */
  readonly heapUsed: readonly Sample[];
  readonly heapTotal: readonly Sample[];
  readonly external: readonly Sample[];
  readonly rssTrend: Trend;
  /** Absent for a process without /metrics (Traefik). */
  readonly heapTrend?: Trend;
  readonly heapTotalTrend: Trend;
  readonly externalTrend: Trend;
  readonly cpuMeanPct: number;
}

export interface SoakResult {
  readonly id: string;
  readonly title: string;
  readonly setup: string;
  readonly load: Load;
  readonly accounting: Accounting;
  readonly processes: readonly ProcessResult[];
}

export interface SoakRun {
  readonly durationS: number;
  readonly rates: Rates;
  readonly limits: Limits;
  readonly load1: { readonly start: number; readonly max: number; readonly mean: number; readonly end: number };
  readonly soaks: readonly SoakResult[];
}

const HEAP_EVERY_MS = 2000;

export async function runSoaks(dir: string, durationS: number, rates: Rates, limits: Limits, log: (line: string) => void): Promise<SoakRun> {
  const nats = await startNatsServer();
  const setups: SoakSetup[] = [];
  try {
    const ctx: SoakContext = { dir, natsUrl: nats.url, log };
    const started = await Promise.allSettled([
      startDispatcherBlackholed(ctx, rates.dispatcherEvents),
      startTapNatsDown(ctx, rates.tapRequests),
      startLargeBodies(ctx, rates.uploads),
    ]);
    for (const s of started) if (s.status === 'fulfilled') setups.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    const watched = setups.flatMap((s) => s.watched);
    const loads: number[] = [load1()];
    const sampler = startSampler(watched.map((w) => ({ name: w.name, pids: () => [w.pid] })), 1000);
    const t0 = performance.now();
    const heap = new Map(watched.map((w) => [w.name, { used: [] as Sample[], total: [] as Sample[], external: [] as Sample[] }]));
    const heapTimer = setInterval(() => {
      const t = (performance.now() - t0) / 1000;
      loads.push(load1());
      for (const w of watched) {
        if (!w.adminUrl) continue;
        readMetrics(w.adminUrl).then(
          (m) => {
            const h = heap.get(w.name);
            h?.used.push({ t, mib: sum(m, 'nodejs_heap_size_used_bytes') / MiB });
            h?.total.push({ t, mib: sum(m, 'nodejs_heap_size_total_bytes') / MiB });
            h?.external.push({ t, mib: sum(m, 'nodejs_external_memory_bytes') / MiB });
          },
          () => undefined,
        );
      }
    }, HEAP_EVERY_MS);
    log(`soaking for ${durationS} s: ${rates.dispatcherEvents} events/s, ${rates.tapRequests} requests/s, ${rates.uploads} uploads/s`);
    let driven: Load[];
    try {
      driven = await Promise.all(setups.map((s) => s.drive(durationS)));
    } finally {
      clearInterval(heapTimer);
    }
    const figures: Record<string, ResourceFigures> = sampler.stop();
    loads.push(load1());
    log('loads done; reading the counters');
    const accounts = await Promise.all(setups.map((s, i) => s.account(driven[i] as Load)));
    const judge = { slopeMiBPerMin: limits.slopeMiBPerMin, minJudgedS: limits.minJudgedS };
    const soaks = setups.map((s, i) => ({
      id: s.id,
      title: s.title,
      setup: s.setup,
      load: driven[i] as Load,
      accounting: accounts[i] as Accounting,
      processes: s.watched.map((w) => {
        const series = sampler.series(w.name);
        // Samples taken while the load ran; the sampler's last one (at stop) may fall just after it.
        const rss = series.t.map((t, k) => ({ t, mib: series.rssMiB[k] ?? 0 })).filter((p) => p.t <= durationS + 1);
        const idleMiB = rss[0]?.mib ?? 0;
        const boundMiB = idleMiB + w.bound.heldMiB + w.bound.allowanceMiB;
        const h = heap.get(w.name) ?? { used: [], total: [], external: [] };
        return {
          watched: w,
          idleMiB,
          boundMiB,
          rss,
          heapUsed: h.used,
          heapTotal: h.total,
          external: h.external,
          rssTrend: trend(rss, durationS, { ...judge, boundMiB }),
          ...(w.adminUrl ? { heapTrend: trend(h.used, durationS, { ...judge, boundMiB }) } : {}),
          heapTotalTrend: trend(h.total, durationS, { ...judge, boundMiB }),
          externalTrend: trend(h.external, durationS, { ...judge, boundMiB }),
          cpuMeanPct: figures[w.name]?.cpuMeanPct ?? 0,
        };
      }),
    }));
    return {
      durationS,
      rates,
      limits,
      load1: { start: loads[0] ?? 0, max: Math.max(...loads), mean: loads.reduce((a, b) => a + b, 0) / loads.length, end: loads.at(-1) ?? 0 },
      soaks,
    };
  } finally {
    await Promise.all(setups.map((s) => s.stop().catch(() => undefined)));
    await nats.stop();
  }
}

import { readdirSync, readFileSync } from 'node:fs';

// RSS and CPU of the processes under test, read from /proc/<pid>/status (VmRSS) and /proc/<pid>/stat (utime +
// stime). A "process" may be a group (nginx's master and workers); its figures are the sums over the group.

const TICKS_PER_SECOND = 100; // USER_HZ on Linux; /proc reports CPU time in these units.

export interface ResourceFigures {
  readonly rssPeakMiB: number;
  readonly rssMeanMiB: number;
  /** Percent of one core (200 = both cores of this machine). */
  readonly cpuPeakPct: number;
  readonly cpuMeanPct: number;
}

function readTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** CPU time (user + system, seconds) the processes have used since they started; 10 ms resolution. */
export function readCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((a, p) => a + readTicks(p), 0) / TICKS_PER_SECOND;
}

export function readRssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The pid and its descendants (nginx workers). */
export function withChildren(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // The process exited while we listed /proc.
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i] ?? -1) ?? []));
  return out;
}

export interface Watched {
  readonly name: string;
  readonly pids: () => readonly number[];
}

interface Track {
  rss: number[];
  cpu: number[];
  firstTicks: number;
  lastTicks: number;
}

export interface Sampler {
  /** RSS samples (MiB) of one watched name, in sampling order, with their times in seconds from start. */
  series(name: string): { t: number[]; rssMiB: number[] };
  stop(): Record<string, ResourceFigures>;
}

export function startSampler(watched: readonly Watched[], intervalMs = 500): Sampler {
  const started = performance.now();
  const times: number[] = [];
  const tracks = new Map<string, Track>();
  let last = started;
  const sample = () => {
    const now = performance.now();
    const dt = (now - last) / 1000;
    last = now;
    times.push((now - started) / 1000);
    for (const w of watched) {
      const pids = w.pids();
      const ticks = pids.reduce((a, p) => a + readTicks(p), 0);
      const rss = pids.reduce((a, p) => a + readRssKiB(p), 0) / 1024;
      let t = tracks.get(w.name);
      if (!t) {
        t = { rss: [], cpu: [], firstTicks: ticks, lastTicks: ticks };
        tracks.set(w.name, t);
      } else {
        t.cpu.push(dt > 0 ? ((ticks - t.lastTicks) / TICKS_PER_SECOND / dt) * 100 : 0);
        t.lastTicks = ticks;
      }
      t.rss.push(rss);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    series(name) {
      return { t: times.slice(), rssMiB: tracks.get(name)?.rss.slice() ?? [] };
    },
    stop() {
      clearInterval(timer);
      sample();
      const elapsed = (performance.now() - started) / 1000;
      const out: Record<string, ResourceFigures> = {};
      for (const [name, t] of tracks) {
        out[name] = {
          rssPeakMiB: Math.max(...t.rss),
          rssMeanMiB: t.rss.reduce((a, b) => a + b, 0) / t.rss.length,
          cpuPeakPct: t.cpu.length ? Math.max(...t.cpu) : 0,
          cpuMeanPct: elapsed > 0 ? ((t.lastTicks - t.firstTicks) / TICKS_PER_SECOND / elapsed) * 100 : 0,
        };
      }
      return out;
    },
  };
}

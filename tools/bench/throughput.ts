import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePayloads, startPublisher } from './events.ts';
import { startPipeline, type Pipeline } from './pipeline.ts';
import type { Plan } from './plan.ts';
import { nodeScript, sleep, startLogged, startPeer } from './processes.ts';
import { readCounts, waitForCounts } from './receiver-count.ts';
import { attack, targetsText } from './vegeta.ts';
import type { World } from './world.ts';

// Closed-loop ceilings, each measured against its reference in the same run, alternating rounds:
// the tap's forwardAuth listener against a bare fastify 200 responder (vegeta, fixed workers, no rate limit), and
// the dispatcher delivering N events from NATS against a raw undici loop POSTing the same payloads.
//
// Why the method is what it is (issue 9): a full run once read tap/fastify 0.58x where runs of the same code by
// themselves read 0.78-0.80x. Its tap rounds were 4780 and 10849 req/s: the first round measured a tap process
// started a moment before (no JIT warm-up: the first seconds of a fresh Node server run at a fraction of its
// speed) while the processes of the upload part before it were still working off their backlog. So each side now
// gets an untimed warm-up, every round waits until the machine's other work has settled, there are at least three
// rounds in ABBA order, and the figure is the median of the per-round ratios, printed with its spread. CPU time
// per request (from /proc) is reported next to it: it hardly moves with what else runs on the two cores.

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export interface TapThroughput {
  readonly workers: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly tapRps: readonly number[];
  readonly fastifyRps: readonly number[];
  readonly tapErrors: number;
  /** Tap / fastify req/s of each round (the two sides ran back to back). */
  readonly ratioPerRound: readonly number[];
  /** Median of `ratioPerRound`. */
  readonly ratio: number;
  readonly ratioSpread: Spread;
  readonly tapCpuUsPerRequest: readonly number[];
  readonly fastifyCpuUsPerRequest: readonly number[];
  /** Busy share of all cores (%) in the second before each round started, after waiting for the machine to settle. */
  readonly busyPctBeforeRound: readonly number[];
  readonly commands: readonly string[];
}

export interface DispatcherThroughput {
  readonly events: number;
  /** Untimed events through each side first. */
  readonly warmupEvents: number;
  readonly concurrency: number;
  readonly payloadBytes: number;
  /** Null for a round that timed out. */
  readonly dispatcherEps: readonly (number | null)[];
  readonly undiciEps: readonly number[];
  /** Dispatcher / loop events/s of each round (0 for a round that timed out). */
  readonly ratioPerRound: readonly number[];
  /** Median of `ratioPerRound`. */
  readonly ratio: number;
  readonly ratioSpread: Spread;
  /** CPU time of the dispatcher process (resp. the loop's own process) per event delivered, µs. */
  readonly dispatcherCpuUsPerEvent: readonly number[];
  readonly undiciCpuUsPerEvent: readonly number[];
}

export const FORWARD_AUTH_HEADERS = {
  'X-Forwarded-Method': 'GET',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-Host': 'shop.example.com',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Uri': '/api/items?id=42&page=1',
  'X-Forwarded-For': '203.0.113.7',
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  Accept: 'application/json',
  Cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark',
};

export function spreadOf(xs: readonly number[]): Spread {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? (sorted[Math.floor(mid)] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { min: sorted[0] ?? Number.NaN, median: sorted.length ? median : Number.NaN, max: sorted.at(-1) ?? Number.NaN };
}

/** User + system CPU time of a process so far, in µs (/proc/<pid>/stat; USER_HZ is 100 on Linux). */
export function cpuUsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function busyTicks(): { busy: number; total: number } {
  const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  // idle + iowait
  return { busy: total - (cpu[3] ?? 0) - (cpu[4] ?? 0), total };
}

/**
 * Waits until all cores together were at most `maxBusyPct` busy over one second, or `timeoutMs` passed; returns
 * the busy share of the last second (%). What the part before left running (a dispatcher working off a backlog, a
 * garbage collection) would otherwise be charged to whichever side runs first.
 */
export async function settle(maxBusyPct: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = busyTicks();
    await sleep(1000);
    const b = busyTicks();
    const pct = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100;
    if (pct <= maxBusyPct || Date.now() >= deadline) return pct;
  }
}

/** One server measured in the closed loop: vegeta's targets file and the process whose CPU time is read. */
export interface ClosedLoopSide {
  readonly name: string;
  readonly targetsFile: string;
  readonly pid: number;
}

export interface ClosedLoopOptions {
  readonly rounds: number;
  readonly durationS: number;
  /** Untimed load on each side before the first round. */
  readonly warmupS: number;
  readonly workers: number;
  readonly pauseMs: number;
  /** Longest wait for the machine to settle before a round; 0 to not wait (the smoke run). */
  readonly settleTimeoutMs: number;
  readonly outDir: string;
}

export interface SideFigures {
  readonly rps: number[];
  readonly cpuUsPerRequest: number[];
  readonly errors: number;
}

export interface Alternation {
  readonly a: SideFigures;
  readonly b: SideFigures;
  /** a / b req/s per round. */
  readonly ratios: number[];
  readonly busyPctBeforeRound: number[];
  readonly commands: string[];
}

/** Runs `a` and `b` in turn (ABBA order), each round after the machine settled; after an untimed warm-up of both. */
export async function alternateClosedLoop(
  a: ClosedLoopSide,
  b: ClosedLoopSide,
  options: ClosedLoopOptions,
  log: (l: string) => void,
): Promise<Alternation> {
  const run = (side: ClosedLoopSide, name: string, durationS: number) =>
    attack({
      name,
      targetsFile: side.targetsFile,
      rate: 0,
      workers: options.workers,
      maxWorkers: options.workers,
      durationS,
      outDir: options.outDir,
    });
  if (options.warmupS > 0) {
    for (const side of [a, b]) {
      log(`throughput ${side.name} warm-up ${options.warmupS} s`);
      await run(side, `tput-${side.name}-warmup`, options.warmupS);
    }
  }
  const figures = new Map<ClosedLoopSide, { rps: number[]; cpuUsPerRequest: number[]; errors: number }>([
    [a, { rps: [], cpuUsPerRequest: [], errors: 0 }],
    [b, { rps: [], cpuUsPerRequest: [], errors: 0 }],
  ]);
  const commands: string[] = [];
  const busyPctBeforeRound: number[] = [];
  for (let r = 0; r < options.rounds; r++) {
    if (options.settleTimeoutMs > 0) busyPctBeforeRound.push(await settle(SETTLED_BUSY_PCT, options.settleTimeoutMs));
    for (const side of r % 2 === 0 ? [a, b] : [b, a]) {
      const fig = figures.get(side) as SideFigures & { errors: number };
      const cpu = cpuUsOf(side.pid);
      const res = await run(side, `tput-${side.name}-r${r + 1}`, options.durationS);
      const used = cpuUsOf(side.pid) - cpu;
      commands.push(res.command);
      fig.rps.push(res.throughput);
      fig.cpuUsPerRequest.push(used / Math.max(1, res.requests));
      fig.errors += res.errors;
      log(`throughput ${side.name} round ${r + 1}: ${res.throughput.toFixed(0)} req/s, ${(used / Math.max(1, res.requests)).toFixed(1)} µs CPU per request`);
      await sleep(options.pauseMs);
    }
  }
  const fa = figures.get(a) as SideFigures;
  const fb = figures.get(b) as SideFigures;
  return { a: fa, b: fb, ratios: fa.rps.map((x, i) => x / (fb.rps[i] ?? Number.NaN)), busyPctBeforeRound, commands };
}

/** The tap's forwardAuth listener with its event building and publishing, as `alternateClosedLoop` measures it. */
export function tapThroughputOf(run: Alternation, options: ClosedLoopOptions): TapThroughput {
  const ratioSpread = spreadOf(run.ratios);
  return {
    workers: options.workers,
    durationS: options.durationS,
    warmupS: options.warmupS,
    tapRps: run.a.rps,
    fastifyRps: run.b.rps,
    tapErrors: run.a.errors,
    ratioPerRound: run.ratios,
    ratio: ratioSpread.median,
    ratioSpread,
    tapCpuUsPerRequest: run.a.cpuUsPerRequest,
    fastifyCpuUsPerRequest: run.b.cpuUsPerRequest,
    busyPctBeforeRound: run.busyPctBeforeRound,
    commands: run.commands,
  };
}

export async function tapThroughput(world: World, plan: Plan, log: (l: string) => void): Promise<TapThroughput> {
  // The tap alone: no dispatcher competing for the two cores; NATS drops events nobody subscribes to.
  const pipeline = await startPipeline({
    name: 'tput',
    natsUrl: world.nats.url,
    targets: [{ name: 'hook', watchURL: 'http://127.0.0.1:9/hook', methods: ['*'] }],
    dir: world.dir,
    dispatcher: false,
  });
  try {
    const tapPid = pipeline.tap?.pid;
    if (tapPid === undefined) throw new Error('the throughput tap did not start');
    const tap = { name: 'tap', targetsFile: join(world.dir, 'targets-tput-tap.txt'), pid: tapPid };
    const fastify = { name: 'fastify', targetsFile: join(world.dir, 'targets-tput-fastify.txt'), pid: world.fastifyH1.process.pid };
    writeFileSync(tap.targetsFile, targetsText([{ method: 'GET', url: `http://127.0.0.1:${pipeline.forwardAuthPort}/`, headers: FORWARD_AUTH_HEADERS }]));
    writeFileSync(fastify.targetsFile, targetsText([{ method: 'GET', url: `${world.fastifyH1.url}/`, headers: FORWARD_AUTH_HEADERS }]));
    const options: ClosedLoopOptions = {
      rounds: plan.throughputRounds,
      durationS: plan.throughputS,
      warmupS: plan.smoke ? 0 : THROUGHPUT_WARMUP_S,
      workers: plan.throughputWorkers,
      pauseMs: plan.pauseMs,
      settleTimeoutMs: plan.smoke ? 0 : SETTLE_TIMEOUT_MS,
      outDir: world.dir,
    };
    return tapThroughputOf(await alternateClosedLoop(tap, fastify, options, log), options);
  } finally {
    await pipeline.stop();
  }
}

// Both cores together at most this busy over a second counts as settled; on a machine shared with other work the
// wait ends at the timeout instead (the busy share is reported with the figures).
const SETTLED_BUSY_PCT = 25;
const SETTLE_TIMEOUT_MS = 8000;

// Long enough for V8 to optimise the request path of a fresh process (its req/s levels off within ~2 s).
const THROUGHPUT_WARMUP_S = 3;

export async function dispatcherThroughput(world: World, plan: Plan, log: (l: string) => void): Promise<DispatcherThroughput> {
  const recv = nodeScript('peers/receiver.ts');
  const receiver = await startPeer('dput-receiver', recv.command, recv.args, world.dir);
  let pipeline: Pipeline | undefined;
  try {
    const n = plan.dispatcherEvents;
    const warmup = plan.smoke ? 0 : Math.min(n, DISPATCHER_WARMUP_EVENTS);
    pipeline = await startPipeline({
      name: 'dput',
      natsUrl: world.nats.url,
      targets: [
        {
          name: 'hook',
          watchURL: `${receiver.url}/hook`,
          methods: ['*'],
          concurrency: plan.dispatcherConcurrency,
          // The whole burst must fit in the queue: this measures delivery speed, not the drop policy.
          queue: { maxEvents: n * 2, maxBytes: 512 * 1024 * 1024 },
        },
      ],
      dir: world.dir,
      tap: false,
    });
    const dispatcherPid = pipeline.dispatcher?.pid;
    if (dispatcherPid === undefined) throw new Error('the throughput dispatcher did not start');
    const payloads = makePayloads(n);
    const payloadFile = join(world.dir, 'dput-payloads.ndjson');
    writeFileSync(payloadFile, payloads.join('\n'));
    const publisher = await startPublisher(world.nats.url, pipeline.subjectPrefix);
    const dispatcherEps: (number | null)[] = [];
    const undiciEps: number[] = [];
    const dispatcherCpuUsPerEvent: number[] = [];
    const undiciCpuUsPerEvent: number[] = [];
    try {
      if (warmup > 0) {
        // A fresh process: its first thousands of deliveries run before V8 has optimised them. The loop warms
        // itself the same way (--warmup).
        log(`throughput dispatcher warm-up (${warmup} events)`);
        const base = (await readCounts(receiver.url)).count;
        await publisher.burst(payloads.slice(0, warmup));
        await waitForCounts(receiver.url, (c) => c.count >= base + warmup, performance.now(), 60_000);
      }
      for (let r = 0; r < plan.throughputRounds; r++) {
        if (!plan.smoke) await settle(SETTLED_BUSY_PCT, SETTLE_TIMEOUT_MS);
        const order: ('dispatcher' | 'undici')[] = r % 2 === 0 ? ['dispatcher', 'undici'] : ['undici', 'dispatcher'];
        for (const which of order) {
          const base = (await readCounts(receiver.url)).count;
          if (which === 'dispatcher') {
            const cpu = cpuUsOf(dispatcherPid);
            const started = performance.now();
            await publisher.burst(payloads);
            const ms = await waitForCounts(receiver.url, (c) => c.count >= base + n, started, 120_000);
            dispatcherEps.push(ms === null ? null : (n / ms) * 1000);
            dispatcherCpuUsPerEvent.push((cpuUsOf(dispatcherPid) - cpu) / n);
          } else {
            const loop = nodeScript('peers/undici-loop.ts');
            const child = startLogged(`undici-loop-r${r + 1}`, loop.command, [
              ...loop.args,
              '--url',
              `${receiver.url}/hook`,
              '--payloads',
              payloadFile,
              '--concurrency',
              String(plan.dispatcherConcurrency),
              '--warmup',
              String(warmup),
            ], world.dir);
            await child.exit;
            const out = JSON.parse(child.output().trim().split('\n').pop() ?? '{}') as { sent: number; ms: number; cpuUs: number };
            undiciEps.push((out.sent / out.ms) * 1000);
            undiciCpuUsPerEvent.push(out.cpuUs / out.sent);
          }
          const eps = which === 'dispatcher' ? dispatcherEps.at(-1) : undiciEps.at(-1);
          log(`throughput ${which} round ${r + 1} (${n} events): ${eps === null || eps === undefined ? 'timed out' : eps.toFixed(0)} events/s`);
          await sleep(plan.pauseMs);
        }
      }
    } finally {
      await publisher.close();
    }
    const ratioPerRound = dispatcherEps.map((d, i) => (d === null ? 0 : d / (undiciEps[i] ?? Number.NaN)));
    const ratioSpread = spreadOf(ratioPerRound);
    return {
      events: n,
      warmupEvents: warmup,
      concurrency: plan.dispatcherConcurrency,
      payloadBytes: Math.round(payloads.reduce((a, p) => a + p.length, 0) / payloads.length),
      dispatcherEps,
      undiciEps,
      ratioPerRound,
      ratio: ratioSpread.median,
      ratioSpread,
      dispatcherCpuUsPerEvent,
      undiciCpuUsPerEvent,
    };
  } finally {
    await pipeline?.stop();
    await receiver.process.stop();
  }
}

const DISPATCHER_WARMUP_EVENTS = 2000;

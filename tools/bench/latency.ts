import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countNewConnections } from './churn.ts';
import type { Plan } from './plan.ts';
import { readCpuSeconds, withChildren, startSampler, type ResourceFigures, type Watched } from './proc-stats.ts';
import { sleep } from './processes.ts';
import { percentileCurve, summarize, type LatencySummary } from './stats.ts';
import { attack, targetsText, type AttackResult, type Target } from './vegeta.ts';
import type { PipelineName, World } from './world.ts';

// The open-model latency scenarios. The sweep's scenarios run at every rate of the plan's sweep, the others at one
// rate; every (scenario, rate) cell runs in every round, the order rotating from round to round, so whatever else
// the machine does lands on all of them alike; the rounds' results are pooled per cell.

export interface ScenarioDef {
  readonly id: string;
  readonly title: string;
  /** Scenario whose latency is subtracted to get "added latency". */
  readonly baseline: string | null;
  readonly body: boolean;
  readonly via: 'traefik' | 'nginx';
  readonly pipeline?: PipelineName;
  /** The server Traefik calls per request for this scenario, whose new connections are counted. */
  readonly authServer?: 'go' | 'fastify-h1' | 'fastify-h2' | 'tap' | 'tap-mirror' | 'tap-plugin';
}

export const SCENARIOS: readonly ScenarioDef[] = [
  { id: 'S0', title: 'Traefik → upstream, no middleware (baseline)', baseline: null, body: false, via: 'traefik' },
  { id: 'S1', title: 'forwardAuth → minimal Go responder (floor)', baseline: 'S0', body: false, via: 'traefik', authServer: 'go' },
  { id: 'S2', title: 'forwardAuth → ingress-tap, webhook healthy', baseline: 'S0', body: false, via: 'traefik', pipeline: 'healthy', authServer: 'tap' },
  { id: 'S2h2', title: 'forwardAuth → ingress-tap over HTTP/2 with TLS, webhook healthy', baseline: 'S0', body: false, via: 'traefik', pipeline: 'healthy-h2', authServer: 'tap' },
  { id: 'S3', title: 'as S2, webhook answers after 2 s', baseline: 'S0', body: false, via: 'traefik', pipeline: 'slow', authServer: 'tap' },
  { id: 'S4', title: 'as S2, webhook refuses connections', baseline: 'S0', body: false, via: 'traefik', pipeline: 'refused', authServer: 'tap' },
  { id: 'S5', title: 'as S2, webhook blackholed (accepts, never answers)', baseline: 'S0', body: false, via: 'traefik', pipeline: 'blackhole', authServer: 'tap' },
  { id: 'S6', title: 'as S2, NATS stopped', baseline: 'S0', body: false, via: 'traefik', pipeline: 'natsdown', authServer: 'tap' },
  { id: 'S7', title: 'Traefik Mirroring → tap mirror listener', baseline: 'S0', body: false, via: 'traefik', pipeline: 'healthy', authServer: 'tap-mirror' },
  { id: 'S10', title: 'Request Mirror Traefik plugin → tap plugin listener', baseline: 'S0', body: false, via: 'traefik', pipeline: 'healthy', authServer: 'tap-plugin' },
  { id: 'S0b', title: 'Traefik → upstream, no middleware, S8 bodies (baseline of S8)', baseline: null, body: true, via: 'traefik' },
  { id: 'S8', title: 'forwardAuth forwardBody → ingress-tap, bodies up to 1 MiB', baseline: 'S0b', body: true, via: 'traefik', pipeline: 'healthy', authServer: 'tap' },
  { id: 'S9', title: "Debian nginx `mirror` → receiver answering after 2 s (peer)", baseline: 'S0', body: false, via: 'nginx' },
  { id: 'X1', title: 'forwardAuth → bare fastify, HTTP/1.1 (churn reference)', baseline: 'S0', body: false, via: 'traefik', authServer: 'fastify-h1' },
  { id: 'X2', title: 'forwardAuth → bare fastify, HTTP/2 over TLS (churn fix)', baseline: 'S0', body: false, via: 'traefik', authServer: 'fastify-h2' },
];

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly baseline: string | null;
  readonly via?: 'traefik' | 'nginx';
  readonly status: 'run' | 'not run';
  readonly reason?: string;
  readonly offeredRate?: number;
  readonly sentRate?: number;
  readonly throughput?: number;
  readonly requests?: number;
  readonly errors?: number;
  readonly errorSamples?: readonly string[];
  readonly statusCodes?: Readonly<Record<string, number>>;
  readonly latency?: LatencySummary;
  /** p50 and p99 (ms) of each round on its own, in round order: how much the machine's noise moved them. */
  readonly perRound?: readonly { readonly p50: number; readonly p99: number; readonly sentRate: number }[];
  readonly resources?: Readonly<Record<string, ResourceFigures>>;
  /**
   * Per round, in round order: CPU seconds of each watched process (proxy, tap, dispatcher, nats, receiver,
   * authServer; utime+stime over the round and its settling pause) and the round's requests.
   */
  readonly cpu?: {
    readonly seconds: Readonly<Record<string, readonly number[]>>;
    readonly requests: readonly number[];
  };
  readonly newConnectionsPerSecond?: number;
  readonly commands?: readonly string[];
  readonly curve?: readonly { p: number; ms: number }[];
}

const HEADERS = {
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  Accept: 'application/json',
  'Accept-Language': 'en-GB,en;q=0.9',
  Cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark',
  Authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl',
  'X-Request-Id': 'bench-0001',
};

/** Sizes of the S0b/S8 bodies, cycled in this order: mostly small, one in ten at 1 MiB. */
export const BODY_MIX = [1024, 1024, 16 * 1024, 1024, 64 * 1024, 1024, 256 * 1024, 1024, 16 * 1024, 1024 * 1024];

function writeBodies(dir: string): string[] {
  return [...new Set(BODY_MIX)].map((size) => {
    const file = join(dir, `body-${size}.txt`);
    const line = '{"event":"bench","payload":"abcdefghijklmnopqrstuvwxyz0123456789"}\n';
    writeFileSync(file, line.repeat(Math.ceil(size / line.length)).slice(0, size));
    return file;
  });
}

function targetsFor(def: ScenarioDef, base: string, dir: string): Target[] {
  const path = `/${def.id.toLowerCase()}`;
  if (!def.body) {
    return [
      { method: 'GET', url: `${base}${path}/api/items?id=42&page=1`, headers: HEADERS },
      { method: 'GET', url: `${base}${path}/static/app.js`, headers: HEADERS },
    ];
  }
  const files = writeBodies(dir);
  return BODY_MIX.map((size) => ({
    method: 'POST',
    url: `${base}${path}/api/upload`,
    headers: { ...HEADERS, 'Content-Type': 'application/json' },
    bodyFile: files.find((f) => f.endsWith(`-${size}.txt`)) ?? '',
  }));
}

function why(def: ScenarioDef, world: World): string | null {
  if (def.pipeline && !world.pipelines.get(def.pipeline)) return world.unavailable.get('pipelines') ?? 'pipeline did not start';
  if (def.via === 'nginx' && !world.nginx) return world.unavailable.get('nginx') ?? 'nginx did not start';
  return null;
}

/**
 * The processes whose CPU and memory a scenario's rounds are charged with: the proxy (Traefik, or nginx's master and
 * workers), the pipeline's tap and dispatcher, NATS and the healthy webhook receiver when the scenario's events
 * reach them, and the server forwardAuth calls when it is not the tap.
 */
function watchedFor(def: ScenarioDef, world: World): Watched[] {
  const out: Watched[] = [];
  if (def.via === 'nginx') {
    const n = world.nginx;
    if (n) out.push({ name: 'proxy', pids: () => withChildren(n.process.pid) });
  } else {
    out.push({ name: 'proxy', pids: () => [world.traefik.process.pid] });
  }
  const p = def.pipeline ? world.pipelines.get(def.pipeline) : undefined;
  const tapPid = p?.tap?.pid;
  const dispatcherPid = p?.dispatcher?.pid;
  if (tapPid) out.push({ name: 'tap', pids: () => [tapPid] });
  if (dispatcherPid) out.push({ name: 'dispatcher', pids: () => [dispatcherPid] });
  if (p && def.pipeline !== 'natsdown') out.push({ name: 'nats', pids: () => [world.nats.pid] });
  if (def.pipeline === 'healthy' || def.pipeline === 'healthy-h2') out.push({ name: 'receiver', pids: () => [world.receiver.process.pid] });
  const auth = { go: world.goAuth, 'fastify-h1': world.fastifyH1, 'fastify-h2': world.fastifyH2 } as const;
  if (def.authServer && def.authServer in auth) {
    const peer = auth[def.authServer as keyof typeof auth];
    out.push({ name: 'authServer', pids: () => [peer.process.pid] });
  }
  return out;
}

function churnPort(def: ScenarioDef, world: World): number | null {
  const p = def.pipeline ? world.pipelines.get(def.pipeline) : undefined;
  switch (def.authServer) {
    case 'go':
      return world.goAuth.port;
    case 'fastify-h1':
      return world.fastifyH1.port;
    case 'fastify-h2':
      return world.fastifyH2.port;
    case 'tap':
      return p?.forwardAuthPort ?? null;
    case 'tap-mirror':
      return p?.mirrorPort ?? null;
    case 'tap-plugin':
      return p?.pluginPort ?? null;
    default:
      return null;
  }
}

interface Round {
  readonly result: AttackResult;
  readonly resources: Record<string, ResourceFigures>;
  /** CPU seconds each watched process used from the round's start to the end of its settling pause. */
  readonly cpuSeconds: Record<string, number>;
  readonly churn: number | null;
}

/** One (scenario, offered rate) pair: the unit the rounds rotate over and the results are pooled by. */
interface Cell {
  readonly def: ScenarioDef;
  readonly rate: number;
  readonly key: string;
}

export interface LatencyFindings {
  /** One result per scenario, at its own rate (sweep scenarios at the plan's `rate`): what the per-scenario tables show. */
  readonly scenarios: readonly ScenarioResult[];
  /** Every (scenario, rate) cell of the sweep, in scenario then rate order. */
  readonly sweep: readonly ScenarioResult[];
}

export async function runLatency(world: World, plan: Plan, log: (line: string) => void): Promise<LatencyFindings> {
  const chosen = SCENARIOS.filter((s) => plan.scenarios === 'all' || plan.scenarios.includes(s.id));
  const runnable: ScenarioDef[] = [];
  const notRun = new Map<string, ScenarioResult>();
  const targetFiles = new Map<string, string>();
  for (const def of chosen) {
    const reason = why(def, world);
    if (reason) {
      notRun.set(def.id, { id: def.id, title: def.title, baseline: def.baseline, status: 'not run', reason });
      continue;
    }
    runnable.push(def);
    const base = def.via === 'nginx' ? (world.nginx?.url ?? '') : world.traefik.url;
    const file = join(world.dir, `targets-${def.id}.txt`);
    writeFileSync(file, targetsText(targetsFor(def, base, world.dir)));
    targetFiles.set(def.id, file);
  }
  const inSweep = (def: ScenarioDef) => plan.sweep.scenarios.includes(def.id);
  const rateOf = (def: ScenarioDef) => (def.body ? plan.bodyRate : plan.rate);
  const cells: Cell[] = runnable.flatMap((def) =>
    (inSweep(def) ? plan.sweep.rates : [rateOf(def)]).map((rate) => ({ def, rate, key: `${def.id}@${rate}` })),
  );
  // Uncapped, vegeta opens a connection per stalled request and closes them all at exit; under a stall that fills
  // the ephemeral port range with TIME_WAIT and its next dials fail with EADDRINUSE (seen on this machine). Capped,
  // requests wait for a connection inside vegeta and the wait counts in their latency, so the model stays open.
  // nginx's mirror holds a client connection for the mirror's 2 s, so S9 gets room for rate × 2 s of them.
  const connectionsOf = (def: ScenarioDef, rate: number) => (def.via === 'nginx' ? rate * 3 : 1000);
  // nginx's mirror subrequests outlive the attack by the mirror's 2 s.
  const settle = (def: ScenarioDef) => (def.via === 'nginx' && !plan.smoke ? 3000 : plan.pauseMs);
  if (plan.warmupS > 0) {
    for (const def of runnable) {
      log(`warm-up ${def.id}`);
      await attack({ name: `warmup-${def.id}`, targetsFile: targetFiles.get(def.id) ?? '', rate: rateOf(def), durationS: plan.warmupS, maxConnections: connectionsOf(def, rateOf(def)), outDir: world.dir });
      await sleep(settle(def));
    }
  }
  const rounds = new Map<string, Round[]>();
  for (let r = 0; r < plan.rounds; r++) {
    const shift = (r * Math.ceil(cells.length / Math.max(1, plan.rounds))) % Math.max(1, cells.length);
    const order = [...cells.slice(shift), ...cells.slice(0, shift)];
    for (const cell of order) {
      const { def, rate } = cell;
      if (!inSweep(def) && r >= plan.singleRateRounds) continue;
      log(`round ${r + 1}/${plan.rounds} ${def.id} at ${rate} req/s for ${plan.roundS} s`);
      const watched = watchedFor(def, world);
      const cpuBefore = Object.fromEntries(watched.map((w) => [w.name, readCpuSeconds(w.pids())]));
      const sampler = startSampler(watched);
      const port = churnPort(def, world);
      const churn = port ? countNewConnections(port) : null;
      const result = await attack({
        name: `${def.id}-${rate}-r${r + 1}`,
        outDir: world.dir,
        durationS: plan.roundS,
        maxConnections: connectionsOf(def, rate),
        targetsFile: targetFiles.get(def.id) ?? '',
        rate,
      });
      const resources = sampler.stop();
      const c = churn?.stop();
      // The pause is charged to the round: the tap, NATS and the dispatcher finish the round's events in it.
      await sleep(settle(def));
      const cpuSeconds = Object.fromEntries(watched.map((w) => [w.name, readCpuSeconds(w.pids()) - (cpuBefore[w.name] ?? 0)]));
      const list = rounds.get(cell.key) ?? [];
      list.push({ result, resources, cpuSeconds, churn: c ? c.perSecond : null });
      rounds.set(cell.key, list);
    }
  }
  const results = new Map<string, ScenarioResult>();
  for (const cell of cells) results.set(cell.key, pool(cell, rounds.get(cell.key) ?? []));
  const primary = (def: ScenarioDef) => {
    const rates = inSweep(def) ? plan.sweep.rates : [rateOf(def)];
    return results.get(`${def.id}@${rates.includes(plan.rate) ? plan.rate : (rates.at(-1) ?? plan.rate)}`);
  };
  return {
    scenarios: chosen.map((def) => notRun.get(def.id) ?? primary(def)).filter((r): r is ScenarioResult => r !== undefined),
    sweep: cells.filter((c) => inSweep(c.def)).map((c) => results.get(c.key)).filter((r): r is ScenarioResult => r !== undefined),
  };
}

/** A cell's rounds pooled: percentiles over every request of every round, and each round's own figures. */
function pool({ def, rate }: Cell, list: readonly Round[]): ScenarioResult {
  const all = new Float64Array(list.reduce((n, x) => n + x.result.latenciesMs.length, 0));
  let at = 0;
  for (const x of list) {
    all.set(x.result.latenciesMs, at);
    at += x.result.latenciesMs.length;
  }
  const resources: Record<string, ResourceFigures> = {};
  const cpuSeconds: Record<string, number[]> = {};
  for (const name of new Set(list.flatMap((x) => Object.keys(x.resources)))) {
    const figs = list.map((x) => x.resources[name]).filter((f): f is ResourceFigures => f !== undefined);
    resources[name] = {
      rssPeakMiB: Math.max(...figs.map((f) => f.rssPeakMiB)),
      rssMeanMiB: figs.reduce((a, f) => a + f.rssMeanMiB, 0) / figs.length,
      cpuPeakPct: Math.max(...figs.map((f) => f.cpuPeakPct)),
      cpuMeanPct: figs.reduce((a, f) => a + f.cpuMeanPct, 0) / figs.length,
    };
    cpuSeconds[name] = list.map((x) => x.cpuSeconds[name] ?? Number.NaN);
  }
  const codes: Record<string, number> = {};
  for (const x of list) for (const [k, v] of Object.entries(x.result.statusCodes)) codes[k] = (codes[k] ?? 0) + v;
  const churns = list.map((x) => x.churn).filter((c): c is number => c !== null);
  return {
    id: def.id,
    title: def.title,
    baseline: def.baseline,
    via: def.via,
    status: 'run',
    offeredRate: rate,
    sentRate: list.reduce((a, x) => a + x.result.sentRate, 0) / list.length,
    throughput: list.reduce((a, x) => a + x.result.throughput, 0) / list.length,
    requests: all.length,
    errors: list.reduce((a, x) => a + x.result.errors, 0),
    errorSamples: [...new Set(list.flatMap((x) => x.result.errorSamples))].slice(0, 5),
    statusCodes: codes,
    latency: summarize(all),
    perRound: list.map((x) => {
      const s = summarize(x.result.latenciesMs);
      return { p50: s.ms.p50, p99: s.ms.p99, sentRate: x.result.sentRate };
    }),
    resources,
    cpu: { seconds: cpuSeconds, requests: list.map((x) => x.result.requests) },
    ...(churns.length ? { newConnectionsPerSecond: churns.reduce((a, b) => a + b, 0) / churns.length } : {}),
    commands: list.map((x) => x.result.command),
    curve: percentileCurve(all),
  };
}

import { mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCommandLine, usageError } from '../../contract/command-line.ts';
import { routerTimings } from './access-log.ts';
import type { Findings, Section } from './goals.ts';
import { isolation } from './isolation.ts';
import { runLatency, SCENARIOS } from './latency.ts';
import { load1, machine, versions } from './machine.ts';
import { uploads } from './memory.ts';
import { setServiceNodeArgs } from './pipeline.ts';
import { BUDGET_S, FULL, SMOKE } from './plan.ts';
import { pluginAccounting, settlePluginCounters } from './plugin-accounting.ts';
import { REPO_ROOT } from './processes.ts';
import { writeReport } from './report.ts';
import { dispatcherThroughput, tapThroughput } from './throughput.ts';
import { tapView, type TapView } from './tap-metrics.ts';
import { startWorld } from './world.ts';

// `make bench` / `make bench-smoke`. Runs every part in one invocation against one set of processes, then writes
// the report from what it measured. Logs, configs and vegeta results of the run stay in the run directory.

const { values } = parseCommandLine({
  name: 'node tools/bench/main.ts',
  usage: `
usage: node tools/bench/main.ts [--smoke] [--out DIR] [--only S1,S2,...] [--profile-dir DIR]
  (or: make bench, make bench-smoke)

Measures what Request Mirror adds to Traefik's latency, its throughput and memory, and writes benchmarks.md,
benchmarks.json and the plots.
  --smoke             about a minute at tiny rates (checks the harness; its figures mean nothing)
  --out DIR           where the report goes (default: the run directory under .bench/, or for --smoke a
                      temporary one, /tmp/rm-bench-XXXXXX, kept for reading);
                      a smoke run also keeps its run directory (logs, vegeta results) under DIR/run
  --only IDS          diagnosis: only these latency scenarios, comma-separated
  --profile-dir DIR   diagnosis: CPU profiles of every tap and dispatcher, written when they stop
  -h, --help          this text`,
  options: {
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    // Diagnosis only (a profiled run's figures are not comparable).
    only: { type: 'string' },
    'profile-dir': { type: 'string' },
  },
});
const base = values.smoke ? SMOKE : FULL;
const only = values.only?.split(',');
const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
if (unknown.length > 0) usageError('node tools/bench/main.ts', `--only: no scenario ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
const plan = only ? { ...base, scenarios: only } : base;
if (values['profile-dir']) setServiceNodeArgs(['--cpu-prof', `--cpu-prof-dir=${resolve(values['profile-dir'])}`]);
// A smoke run given --out keeps its logs under that directory, so whoever chose it (the harness test) removes them
// with the report and nothing is left in the temporary directory.
const runDir = values.smoke
  ? values.out
    ? join(resolve(values.out), 'run')
    : mkdtempSync(join(tmpdir(), 'rm-bench-'))
  : join(REPO_ROOT, '.bench', `run-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(runDir, { recursive: true });
const outDir = resolve(values.out ?? join(runDir, 'report'));
const command = values.smoke ? 'make bench-smoke' : 'make bench';

let loadMax = load1();
const started = Date.now();
const log = (line: string) => {
  loadMax = Math.max(loadMax, load1());
  process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
};

async function section<T>(name: string, ready: string | null, run: () => Promise<T>): Promise<Section<T>> {
  if (ready) return { status: 'not run', reason: ready };
  try {
    return { status: 'run', value: await run() };
  } catch (error) {
    log(`${name} failed: ${(error as Error).message}`);
    return { status: 'failed', reason: `failed: ${(error as Error).message.split('\n')[0] ?? ''}` };
  }
}

// A smoke run without --out keeps its temporary directory: the report and the logs are what one reads to check the
// harness. Said first and last, so nobody finds megabytes in /tmp without having been told.
const keptInTmp = values.smoke && !values.out;
log(`run directory ${runDir}${keptInTmp ? ' (kept after the run, with the report, the logs and the vegeta results)' : ''}`);
const startedAt = new Date().toISOString();
const load1AtStart = load1();
// Read before the run: the services' working tree may change while it goes on.
const versionsAtStart = versions();
const world = await startWorld(runDir);
let findings: Omit<Findings, 'pluginAccounting'>;
let tapViews: TapView[];
let s10Ran: boolean;
try {
  const noPipelines = values.only ? '--only: latency scenarios only' : (world.unavailable.get('pipelines') ?? null);
  const { scenarios, sweep } = await runLatency(world, plan, log);
  s10Ran = scenarios.some((s) => s.id === 'S10' && s.status === 'run');
  if (s10Ran) {
    await settlePluginCounters(world, log).catch((error: unknown) => {
      s10Ran = false;
      log(`S10 counters: ${(error as Error).message}`);
    });
  }
  tapViews = (
    await Promise.all(
      [...world.pipelines.values()].map((p) =>
        tapView(p).catch((error: unknown) => {
          log(`tap ${p.name} /metrics: ${(error as Error).message}`);
          return null;
        }),
      ),
    )
  ).filter((v): v is TapView => v !== null);
  const uploadSection = await section('uploads', noPipelines, () => uploads(world, plan, log));
  const tapSection = await section('tap throughput', noPipelines, () => tapThroughput(world, plan, log));
  const dispatcherSection = await section('dispatcher throughput', noPipelines, () => dispatcherThroughput(world, plan, log));
  const isolationSection = await section('isolation', noPipelines, () => isolation(world, plan, log));
  findings = {
    scenarios,
    sweep,
    tapThroughput: tapSection,
    dispatcherThroughput: dispatcherSection,
    isolation: isolationSection,
    uploads: uploadSection,
  };
} finally {
  await world.stop();
}
const timings = await routerTimings(world.traefik.accessLogPath);
const accounting = s10Ran ? pluginAccounting(timings, tapViews) : null;
const report = writeReport(
  {
    startedAt,
    finishedAt: new Date().toISOString(),
    plan,
    machine: machine(),
    versions: versionsAtStart,
    load1AtStart,
    load1AtEnd: load1(),
    load1Max: loadMax,
    command,
    wallS: (Date.now() - started) / 1000,
    budgetS: BUDGET_S,
    findings: {
      ...findings,
      pluginAccounting: accounting
        ? { status: 'run', value: accounting }
        : { status: 'not run', reason: s10Ran ? 'S10 or its tap view missing' : 'S10 not run, or its counters did not settle' },
    },
    routerTimings: timings,
    tapViews,
    unavailable: Object.fromEntries(world.unavailable),
  },
  outDir,
);
log(`report written to ${outDir}/benchmarks.md`);
for (const g of report.goals) log(`${g.status.padEnd(7)} ${g.goal}: ${g.measured}`);
log(`wall time ${((Date.now() - started) / 1000).toFixed(0)} s (budget of a full run: ${BUDGET_S} s)`);
if (keptInTmp) log(`kept for reading: ${runDir} (${(bytesUnder(runDir) / 2 ** 20).toFixed(1)} MiB: report/benchmarks.md, the logs, the vegeta results); rm -r ${runDir} when done`);

/** Bytes of the regular files under `dir`, at any depth. */
function bytesUnder(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0);
}

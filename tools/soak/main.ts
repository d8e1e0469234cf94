import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EXIT_FAILURE, parseCommandLine, usageError } from '../../contract/command-line.ts';
import { machine, versions } from '../bench/machine.ts';
import { REPO_ROOT } from '../bench/processes.ts';
import { writeSoakReport } from './report.ts';
import { runSoaks, type Limits, type Rates } from './run.ts';
import { verdict } from './trend.ts';

// `make soak`: the memory soaks of the dispatcher with every target blackholed, the tap with NATS down, and 1 MiB
// bodies through the whole pipeline, side by side; writes docs/soak.md. Exits 1 when a judged process did not
// plateau or exceeded its bound, or when an accounting identity does not hold.

const NAME = 'node tools/soak/main.ts';
const { values } = parseCommandLine({
  name: NAME,
  usage: `
usage: node tools/soak/main.ts [--minutes N] [--out DIR] [--smoke]
  (or: make soak, make soak SOAK_ARGS='--minutes 20')

Runs three memory soaks at once against real processes (nats-server, Traefik, the tap, the dispatcher): a
dispatcher whose every target is blackholed, a tap whose NATS is down, and 1 MiB bodies through Traefik, the tap,
NATS and the dispatcher. Samples RSS every second and the services' V8 heap every 2 s; judges whether the floor of
the heap in use (Traefik: of its RSS) still rises over the last half, and the RSS peak against a bound derived from
the configured limits; writes soak.md, soak.json and the plots.
  --minutes N   length of the soak (default 10, with --smoke 0.1; a fraction is fine, but under 4 minutes nothing
                is judged)
  --out DIR     where the report goes (default: docs; with --smoke a temporary directory, /tmp/rm-soak-XXXXXX,
                kept for reading with the logs)
  --smoke       tiny rates for 6 s, to check the harness (its figures mean nothing)
  -h, --help    this text`,
  options: {
    minutes: { type: 'string' },
    out: { type: 'string' },
    smoke: { type: 'boolean', default: false },
  },
});

// A smoke run checks the harness; ten minutes at tiny rates would tell no more than six seconds.
const minutesText = values.minutes ?? (values.smoke ? '0.1' : '10');
const minutes = Number(minutesText);
if (!/^\d+(\.\d+)?$/.test(minutesText) || !(minutes > 0) || minutes > 24 * 60) {
  usageError(NAME, `--minutes must be a number of minutes above 0, got ${JSON.stringify(minutesText)}`);
}
const FULL_RATES: Rates = { dispatcherEvents: 2000, tapRequests: 1000, uploads: 10 };
const SMOKE_RATES: Rates = { dispatcherEvents: 100, tapRequests: 50, uploads: 2 };
const LIMITS: Limits = { slopeMiBPerMin: 1, minJudgedS: 120 };

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const runDir = values.smoke ? mkdtempSync(join(tmpdir(), 'rm-soak-')) : join(REPO_ROOT, '.bench', `soak-${stamp}`);
mkdirSync(runDir, { recursive: true });
const outDir = resolve(values.out ?? (values.smoke ? join(runDir, 'report') : join(REPO_ROOT, 'docs')));
const started = Date.now();
const log = (line: string) => process.stderr.write(`[soak +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
// A smoke run keeps its temporary directory for reading (the report, every process's log): said first and last.
log(`run directory ${runDir}${values.smoke ? ' (kept after the run, with the report and the logs)' : ''}`);

const startedAt = new Date().toISOString();
const versionsAtStart = versions();
const run = await runSoaks(runDir, minutes * 60, values.smoke ? SMOKE_RATES : FULL_RATES, LIMITS, log);
writeSoakReport(
  {
    startedAt,
    finishedAt: new Date().toISOString(),
    command: values.smoke ? `${NAME} --smoke` : `make soak${minutes === 10 ? '' : ` SOAK_ARGS='--minutes ${minutesText}'`}`,
    machine: machine(),
    versions: versionsAtStart,
    run,
  },
  outDir,
);
log(`report written to ${join(outDir, 'soak.md')}`);
let failed = false;
for (const s of run.soaks) {
  for (const p of s.processes) {
    const v = verdict(p);
    if (v === 'GROWING' || v === 'OVER BOUND') failed = true;
    const judged = p.heapTrend ? `heap-in-use floor growth ${p.heapTrend.floorGrowthMiBPerMin.toFixed(2)}` : `RSS floor growth ${p.rssTrend.floorGrowthMiBPerMin.toFixed(2)}`;
    log(`${p.watched.name}: RSS peak ${p.rssTrend.peakMiB.toFixed(0)} MiB (bound ${p.boundMiB.toFixed(0)}), RSS last-half slope ${p.rssTrend.lastHalfSlopeMiBPerMin.toFixed(2)} MiB/min, ${judged} MiB/min: ${v}`);
  }
  for (const c of s.accounting.checks) {
    if (!c.holds) {
      failed = true;
      log(`${s.id}: does not hold: ${c.identity}`);
    }
  }
}
if (values.smoke) log(`kept for reading: ${runDir} (the report unless --out moved it, the logs); rm -r ${runDir} when done`);
if (failed) process.exitCode = EXIT_FAILURE;

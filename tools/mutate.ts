import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Stryker } from '@stryker-mutator/core';
import { parseCommandLine, usageError } from '../contract/command-line.ts';

// `make mutate`: mutation testing with StrykerJS, one run per source folder against that folder's own tests
// (test/<folder>), so each folder gets its own score and its own incremental file. Incremental: a re-run tests only
// the mutants whose code or tests changed since the last run (.stryker/<folder>/incremental.json). Reports land in
// .stryker/<folder>/ (git-ignored). The Go plugin (traefik-plugin/) goes through Gremlins, against its `go test`
// suite (no incremental mode there; the plugin is small). Too slow for `make test`; see the README for when to run it.

type PartialStrykerOptions = NonNullable<ConstructorParameters<typeof Stryker>[0]>;
type MutantResult = Awaited<ReturnType<Stryker['runMutationTest']>>[number];

const TS_FOLDERS = ['contract', 'ingress-tap', 'dispatcher'] as const;
const FOLDERS = [...TS_FOLDERS, 'traefik-plugin'] as const;
type TsFolder = (typeof TS_FOLDERS)[number];
type Folder = (typeof FOLDERS)[number];
const ROOT = join(import.meta.dirname, '..');

// Left out of the mutation: wiring the tests run only as child processes (Stryker's per-test coverage cannot see
// into those, so each mutant there would count as uncovered), and the generator script, whose output the drift test
// (test/contract/generated-files.test.ts) checks through contract/generated-files.ts.
const NOT_MUTATED = ['!**/main.ts', '!contract/generate.ts'];

const NAME = 'make mutate';
const { values } = parseCommandLine({
  name: NAME,
  usage: `
usage: make mutate [FOLDERS="contract dispatcher"] [FILES=dispatcher/circuit-breaker.ts,...]
       node tools/mutate.ts [--folders "contract dispatcher"] [--files LIST] [--full] [--static]
Mutation testing of contract/, ingress-tap/ and dispatcher/ against their tests in test/<folder> (StrykerJS), and of
traefik-plugin/ against its go test suite (Gremlins, from $GREMLINS_BIN, which make mutate builds).
  --folders LIST   which of ${FOLDERS.join(', ')} to run (default: all four)
  --files LIST     mutate only these files of the folder (comma-separated globs, e.g. dispatcher/circuit-breaker.ts),
                   for a quick look at one module (the folder's incremental file then keeps only their results)
  --full           ignore the incremental file and test every mutant again
  --static         also test static mutants (module-level code such as the zod schemas): each one re-runs every
                   test of the folder, 98% of contract/'s time; left out (reported as ignored) by default
  -h, --help       this text
Writes .stryker/<folder>/mutation.html and incremental.json (traefik-plugin: gremlins.json).
Exit status: 0 done, 1 a run failed, 2 bad usage.`,
  options: { folders: { type: 'string' }, files: { type: 'string' }, full: { type: 'boolean' }, static: { type: 'boolean' } },
});
const wanted = (values.folders ?? FOLDERS.join(' ')).split(/[\s,]+/).filter(Boolean);
for (const f of wanted) {
  if (!(FOLDERS as readonly string[]).includes(f)) usageError(NAME, `unknown folder ${JSON.stringify(f)}: choose from ${FOLDERS.join(', ')}`);
}

function options(folder: TsFolder): PartialStrykerOptions {
  const out = `.stryker/${folder}`;
  return {
    mutate: [...(values.files ? values.files.split(',').filter((f) => f.startsWith(`${folder}/`)) : [`${folder}/**/*.ts`]), ...NOT_MUTATED],
    testRunner: 'vitest',
    vitest: { configFile: 'tools/mutate-vitest.config.ts', related: false },
    checkers: ['typescript'],
    tsconfigFile: 'tsconfig.json',
    coverageAnalysis: 'perTest',
    ignoreStatic: values.static !== true,
    incremental: true,
    incrementalFile: `${out}/incremental.json`,
    force: values.full === true,
    reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
    htmlReporter: { fileName: `${out}/mutation.html` },
    jsonReporter: { fileName: `${out}/mutation.json` },
    tempDirName: '.stryker/tmp',
    cleanTempDir: 'always',
    // The tests start nats-server and HTTP servers; two test processes at once is what a 2-core machine takes.
    concurrency: 2,
    timeoutMS: 20_000,
    plugins: ['@stryker-mutator/vitest-runner', '@stryker-mutator/typescript-checker'],
  };
}

interface Score {
  readonly folder: Folder;
  readonly killed: number;
  readonly survived: number;
  readonly noCoverage: number;
  readonly timeout: number;
  readonly invalid: number;
}

/** Stryker's definition: detected (killed or timed out) over valid mutants (detected, survived, no coverage). */
function score(folder: TsFolder, results: readonly MutantResult[]): Score {
  const count = (...statuses: MutantResult['status'][]) => results.filter((r) => statuses.includes(r.status)).length;
  return {
    folder,
    killed: count('Killed'),
    survived: count('Survived'),
    noCoverage: count('NoCoverage'),
    timeout: count('Timeout'),
    invalid: count('CompileError', 'RuntimeError'),
  };
}

const percent = (s: Score) => {
  const valid = s.killed + s.timeout + s.survived + s.noCoverage;
  return valid === 0 ? 'n/a' : `${((100 * (s.killed + s.timeout)) / valid).toFixed(1)}%`;
};

interface GremlinsReport {
  readonly files: readonly { readonly mutations: readonly { readonly status: string }[] }[];
}

/** Gremlins on the plugin's go test suite; its statuses mapped to Stryker's. */
function goPlugin(): Score {
  const bin = process.env.GREMLINS_BIN;
  if (!bin) usageError(NAME, 'GREMLINS_BIN is not set: run the traefik-plugin folder through make mutate');
  const out = join(ROOT, '.stryker/traefik-plugin');
  mkdirSync(out, { recursive: true });
  const report = join(out, 'gremlins.json');
  rmSync(report, { force: true });
  const run = spawnSync(bin, ['unleash', '--workers', '2', '--output', report, '.'], { cwd: join(ROOT, 'traefik-plugin'), stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`gremlins exited with ${run.status ?? run.signal ?? 'unknown'}`);
  const statuses = (JSON.parse(readFileSync(report, 'utf8')) as GremlinsReport).files.flatMap((f) => f.mutations.map((m) => m.status));
  const count = (status: string) => statuses.filter((s) => s === status).length;
  return { folder: 'traefik-plugin', killed: count('KILLED'), survived: count('LIVED'), noCoverage: count('NOT COVERED'), timeout: count('TIMED OUT'), invalid: count('NOT VIABLE') };
}

const scores: Score[] = [];
for (const folder of wanted as Folder[]) {
  if (folder === 'traefik-plugin') {
    console.log('\n== mutation testing traefik-plugin/ against its go test suite (Gremlins)');
    scores.push(goPlugin());
    continue;
  }
  console.log(`\n== mutation testing ${folder}/ against test/${folder}/`);
  // Read by tools/mutate-vitest.config.ts in Stryker's test runner processes, which inherit this environment.
  process.env.RM_MUTATE_FOLDER = folder;
  // A run stopped by a signal leaves an empty incremental file, which Stryker then fails to parse.
  const incremental = `.stryker/${folder}/incremental.json`;
  if (statSync(incremental, { throwIfNoEntry: false })?.size === 0) rmSync(incremental);
  scores.push(score(folder, await new Stryker(options(folder)).runMutationTest()));
}
console.log('\nmutation score by folder (killed + timeout) / (killed + timeout + survived + no coverage):');
console.log(`  ${'folder'.padEnd(14)} ${'score'.padStart(7)} ${'killed'.padStart(7)} ${'timeout'.padStart(7)} ${'survived'.padStart(8)} ${'no cov.'.padStart(7)} ${'invalid'.padStart(7)}`);
for (const s of scores) {
  console.log(`  ${s.folder.padEnd(14)} ${percent(s).padStart(7)} ${String(s.killed).padStart(7)} ${String(s.timeout).padStart(7)} ${String(s.survived).padStart(8)} ${String(s.noCoverage).padStart(7)} ${String(s.invalid).padStart(7)}`);
}
console.log('reports: .stryker/<folder>/mutation.html (traefik-plugin: .stryker/traefik-plugin/gremlins.json)');

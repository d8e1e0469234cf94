import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// Runs `make bench-smoke`'s harness end to end so it cannot rot between full runs. It checks that every part of the
// report is produced and well formed; it never judges a timing (the smoke run's figures mean nothing).

interface Report {
  readonly plan: { readonly smoke: boolean };
  readonly goals: readonly { readonly goal: string; readonly status: string; readonly measured: string }[];
  readonly findings: {
    readonly scenarios: readonly { readonly id: string; readonly status: string; readonly requests?: number; readonly reason?: string }[];
    readonly tapThroughput: { readonly status: string };
    readonly dispatcherThroughput: { readonly status: string };
    readonly isolation: { readonly status: string };
    readonly uploads: { readonly status: string };
    readonly sweep: readonly {
      readonly id: string;
      readonly offeredRate: number;
      readonly cpu?: { readonly seconds: Readonly<Record<string, readonly number[]>>; readonly requests: readonly number[] };
    }[];
    readonly pluginAccounting: { readonly status: string; readonly value?: { readonly unaccounted: number } };
  };
  readonly versions: Readonly<Record<string, string>>;
}

const out = mkdtempSync(join(tmpdir(), 'rm-bench-test-'));
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
});

function runSmoke(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      ['-c', `. tools/env.sh && _rm_bench_tools && node tools/bench/main.ts --smoke --out "$1"`, 'bench-smoke', out],
      { cwd: join(import.meta.dirname, '../..'), maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error) reject(new Error(`bench smoke run failed: ${error.message}\n${stderr}`));
        else resolve(stderr);
      },
    );
  });
}

describe('benchmark harness', () => {
  it('writes the markdown report, the JSON figures and the plots from a smoke run, keeping its run directory under --out', { timeout: 240_000 }, async () => {
    const stderr = await runSmoke();
    // Its logs and vegeta results go under --out, which this test removes: a smoke run leaves nothing in /tmp.
    const runDir = /\] run directory (.+)$/m.exec(stderr)?.[1];
    expect(runDir, stderr.slice(0, 2000)).toBeDefined();
    const inOut = relative(out, runDir ?? '/');
    expect(inOut.startsWith('..') || isAbsolute(inOut), `run directory ${runDir ?? ''} is not under ${out}`).toBe(false);
    expect(existsSync(join(runDir ?? '/', 'traefik-access.log')), 'the run wrote its logs there').toBe(true);
    const report = JSON.parse(readFileSync(join(out, 'benchmarks.json'), 'utf8')) as Report;
    expect(report.plan.smoke).toBe(true);
    for (const g of report.goals) expect(['met', 'not met', 'undecided', 'not run']).toContain(g.status);
    // The goals judged from side-by-side figures are there and were judged (a smoke run's verdicts mean nothing).
    const judged = (prefix: string) => report.goals.find((g) => g.goal.startsWith(prefix))?.status;
    for (const prefix of ['S2h2 knee ≥', 'S10 knee ≥', 'S2h2 whole-system CPU added', 'S10: requests =']) {
      expect(judged(prefix), prefix).toMatch(/^(met|not met|undecided)$/);
    }

    const byId = new Map(report.findings.scenarios.map((s) => [s.id, s]));
    for (const id of ['S0', 'S1', 'S2', 'S2h2', 'S7', 'S8', 'X2']) {
      expect(byId.get(id), `${id}: ${byId.get(id)?.reason ?? ''}`).toMatchObject({ status: 'run' });
      expect(byId.get(id)?.requests).toBeGreaterThan(0);
    }
    for (const part of ['tapThroughput', 'dispatcherThroughput', 'isolation', 'uploads'] as const) {
      expect(report.findings[part].status, part).toBe('run');
    }
    expect(report.versions.traefik).toMatch(/^v3\./);

    // Every sweep scenario at every sweep rate, with CPU time per request of Traefik and, for the tap's, of the
    // tap, NATS and the dispatcher; for bare fastify's (the floor of a Node server), of fastify.
    const cells = report.findings.sweep;
    for (const id of ['S0', 'S1', 'S2', 'S2h2', 'S7', 'S10', 'X1', 'X2']) {
      const rates = cells.filter((c) => c.id === id).map((c) => c.offeredRate);
      expect(rates.length, id).toBeGreaterThanOrEqual(2);
      for (const c of cells.filter((x) => x.id === id)) expect(c.cpu?.seconds.proxy?.length, `${id}@${c.offeredRate}`).toBeGreaterThan(0);
    }
    const s2h2 = cells.find((c) => c.id === 'S2h2');
    for (const name of ['tap', 'nats', 'dispatcher']) expect(s2h2?.cpu?.seconds[name], name).toBeDefined();
    expect(cells.find((c) => c.id === 'X2')?.cpu?.seconds.authServer).toBeDefined();
    // The plugin's accounting closes at tiny rates: nothing is dropped and nothing goes missing.
    expect(report.findings.pluginAccounting).toMatchObject({ status: 'run', value: { unaccounted: 0 } });

    const markdown = readFileSync(join(out, 'benchmarks.md'), 'utf8');
    for (const heading of ['## Goals', '## Machine and versions', '## Method', '## Latency', '## Throughput', '## Isolation', '## Memory']) {
      expect(markdown).toContain(heading);
    }
    expect(markdown).toContain('## Latency versus offered rate');
    for (const plot of ['latency.svg', 'latency-bodies.svg', 'latency-sweep.svg']) {
      const file = join(out, 'benchmarks', plot);
      expect(existsSync(file), plot).toBe(true);
      expect(readFileSync(file, 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<polyline [\s\S]*<\/svg>\n$/);
      expect(markdown).toContain(`(benchmarks/${plot})`);
    }
  });
});

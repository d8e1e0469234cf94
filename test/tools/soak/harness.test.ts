import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { machine, versions } from '../../../tools/bench/machine.ts';
import { writeSoakReport } from '../../../tools/soak/report.ts';
import { runSoaks } from '../../../tools/soak/run.ts';

// `make soak` in small: the same three soaks against the same real processes (nats-server, Traefik, the tap, the
// dispatcher, vegeta) for a few seconds at tiny rates, so that `make test` keeps the harness working. It checks the
// report's structure and the accounting; it never judges memory (too short: every process is "not judged").

const dir = mkdtempSync(join(tmpdir(), 'rm-soak-test-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('make soak', () => {
  it('runs the three soaks side by side and writes the report, the figures and one plot per soak', { timeout: 120_000 }, async () => {
    const startedAt = new Date().toISOString();
    const run = await runSoaks(dir, 6, { dispatcherEvents: 100, tapRequests: 50, uploads: 2 }, { slopeMiBPerMin: 1, minJudgedS: 120 }, () => undefined);
    const markdown = writeSoakReport(
      { startedAt, finishedAt: new Date().toISOString(), command: 'test', machine: machine(), versions: versions(), run },
      join(dir, 'out'),
    );

    expect(run.soaks.map((s) => s.id)).toEqual(['dispatcher-blackholed', 'tap-nats-down', 'large-bodies']);
    expect(run.soaks.flatMap((s) => s.processes.map((p) => p.watched.name))).toEqual([
      'dispatcher (blackholed)',
      'tap (NATS down)',
      'Traefik',
      'tap (1 MiB bodies)',
      'dispatcher (1 MiB bodies)',
    ]);
    for (const s of run.soaks) {
      expect(s.load.sent, s.id).toBeGreaterThan(0);
      for (const c of s.accounting.checks) expect(c.holds, `${s.id}: ${c.identity}`).toBe(true);
      for (const p of s.processes) {
        expect(p.rss.length, p.watched.name).toBeGreaterThanOrEqual(5);
        expect(p.idleMiB, p.watched.name).toBeGreaterThan(5);
        expect(p.boundMiB).toBeGreaterThan(p.idleMiB + p.watched.bound.heldMiB);
        expect(p.rssTrend.judged).toBe(false);
      }
      expect(readFileSync(join(dir, 'out', 'soak', `${s.id}.svg`), 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<polyline [\s\S]*<\/svg>\n$/);
      expect(markdown).toContain(`(soak/${s.id}.svg)`);
    }
    // The dispatcher's targets never answer and the tap's NATS is gone: those events can only have been dropped.
    const lines = (id: string) => new Map(run.soaks.find((s) => s.id === id)?.accounting.lines.map((l) => [l.label, l.value]));
    expect(lines('dispatcher-blackholed').get('defaults: delivered')).toBe(0);
    expect(lines('tap-nats-down').get('tap: events dropped, nats_disconnected')).toBe(lines('tap-nats-down').get('requests sent by vegeta'));
    expect(lines('large-bodies').get('webhook: requests received')).toBe(lines('large-bodies').get('uploads sent by vegeta'));
    for (const heading of ['## How memory is judged', '## Summary', '## (a) ', '## (b) ', '## (c) ']) expect(markdown).toContain(heading);
    expect(existsSync(join(dir, 'out', 'soak.json'))).toBe(true);
  });
});

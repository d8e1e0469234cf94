import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { startProcess } from '../../tools/stack/process.ts';
import { eventually } from '../support/eventually.ts';

// The bench probes work in a temporary directory. `make test` runs them with a refused option, and each run used to
// leave an empty /tmp/rm-tvf-* behind; a Ctrl-C left the whole directory. Each child gets its own TMPDIR (Node's
// os.tmpdir() follows it), so what it leaves is seen apart from every other test running at the same time.

const ROOT = join(import.meta.dirname, '../..');
const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function freshTmpDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'rm-scratch-test-'));
  tmpDirs.push(d);
  return d;
}

describe('bench probes', () => {
  it.each([
    ['tools/bench/tap-vs-fastify.ts', '--rounds=two'],
    ['tools/bench/dispatcher-vs-undici.ts', '--events=many'],
  ])('%s %s leaves no temporary directory when it refuses the option', async (script, option) => {
    const tmp = freshTmpDir();
    const code = await new Promise<number | null>((resolve) => {
      execFile(process.execPath, [script, option], { cwd: ROOT, env: { ...process.env, TMPDIR: tmp } }, (error) => {
        resolve(error ? (typeof error.code === 'number' ? error.code : null) : 0);
      });
    });
    expect(code).toBe(2);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('tools/bench/tap-vs-fastify.ts removes its temporary directories when interrupted with SIGINT', { timeout: 60_000 }, async () => {
    const tmp = freshTmpDir();
    const probe = startProcess({
      name: 'tap-vs-fastify',
      command: process.execPath,
      args: ['tools/bench/tap-vs-fastify.ts', '--rounds', '1', '--seconds', '1', '--warmup', '0'],
      cwd: ROOT,
      env: { ...process.env, TMPDIR: tmp },
    });
    onTestFinished(() => probe.kill());
    // Interrupted once its tap is starting: by then it holds its own directory and nats-server's.
    const tapLog = () => readdirSync(tmp).some((d) => d.startsWith('rm-tvf-') && existsSync(join(tmp, d, 'tap.log')));
    await eventually('the probe to start its tap', () => tapLog() || probe.exited(), { timeoutMs: 30_000 });
    expect(probe.exited(), probe.output()).toBe(false);
    expect(readdirSync(tmp).sort().map((d) => d.replace(/-[^-]+$/, '-'))).toEqual(['rm-nats-', 'rm-tvf-']);
    process.kill(probe.pid, 'SIGINT');
    expect(await probe.exit).toBe('SIGINT');
    expect(readdirSync(tmp)).toEqual([]);
  });
});

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Every command we ship answers --help and refuses a mistyped option with one line and exit status 2 (before:
// `node tools/bench/main.ts --help` died with a stack trace, and every other script ignored or crashed on it).

const ROOT = join(import.meta.dirname, '../..');

const ENTRYPOINTS = [
  'ingress-tap/main.ts',
  'dispatcher/main.ts',
  'tools/validate.ts',
  'tools/mutate.ts',
  'contract/generate.ts',
  'tools/demo/run.ts',
  'tools/demo/tail.ts',
  'tools/demo/receiver.ts',
  'tools/demo/upstream.ts',
  'tools/bench/main.ts',
  'tools/bench/dispatcher-vs-undici.ts',
  'tools/bench/peers/bare-fastify.ts',
  'tools/bench/peers/receiver.ts',
  'tools/bench/peers/undici-loop.ts',
  'tools/fuzz/main.ts',
];

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: string[], cwd = ROOT): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 20_000, env: { ...process.env, REQUEST_MIRROR_CONFIG: '' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

describe('command line of every entrypoint', () => {
  it('covers every `node ….ts` command that the README, the docs and the Makefile name', () => {
    const texts = ['README.md', 'Makefile', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)].map((f) =>
      readFileSync(join(ROOT, f), 'utf8'),
    );
    const named = new Set(texts.flatMap((t) => [...t.matchAll(/node ((?:[\w-]+\/)+[\w-]+\.ts)/g)].map((m) => m[1] ?? '')));
    expect(named.size).toBeGreaterThan(3);
    for (const command of named) expect(ENTRYPOINTS, command).toContain(command);
  });

  it.each(ENTRYPOINTS)('%s --help prints its usage and exits 0', async (entry) => {
    const r = await run([entry, '--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: /);
  });

  it.each(ENTRYPOINTS)('%s refuses an unknown option with one line and exit status 2', async (entry) => {
    const r = await run([entry, '--no-such-option']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([expect.stringContaining('unknown option --no-such-option')]);
  });

  it.each([
    ['tools/demo/tail.ts', ['--server'], 'option --server needs a value'],
    ['tools/demo/tail.ts', ['--prefix', 'bad prefix'], '--prefix "bad prefix" is not a subject prefix'],
    ['tools/demo/tail.ts', ['--prefix', ''], '--prefix "" is not a subject prefix'],
    ['tools/demo/run.ts', ['--once=yes'], 'option --once takes no value'],
    ['tools/demo/receiver.ts', ['--port', 'eighty'], '--port must be a whole number'],
    ['tools/bench/dispatcher-vs-undici.ts', ['--events=many'], '--events must be a whole number'],
    ['tools/fuzz/main.ts', ['--requests', '1e5'], '--requests must be a whole number'],
    ['dispatcher/main.ts', ['start'], 'unknown command "start"'],
    ['ingress-tap/main.ts', ['validate', 'extra'], 'unexpected argument "extra"'],
    ['ingress-tap/main.ts', [], 'no config: pass --config FILE or set REQUEST_MIRROR_CONFIG'],
    ['dispatcher/main.ts', [], 'no config: pass --config FILE or set REQUEST_MIRROR_CONFIG'],
    ['tools/validate.ts', [], 'no config'],
  ])('%s %j is a usage error: one line, exit status 2', async (entry, args, message) => {
    const r = await run([entry, ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([expect.stringContaining(message)]);
  });
});

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { integerOption, parseCommandLine } from '../../contract/command-line.ts';
import { runCommand } from '../support/process-exit.ts';

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
  'tools/bench/tap-vs-fastify.ts',
  'tools/bench/cpu-profile.ts',
  'tools/bench/peers/bare-fastify.ts',
  'tools/bench/peers/receiver.ts',
  'tools/bench/peers/undici-loop.ts',
  'tools/fuzz/main.ts',
  'tools/soak/main.ts',
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
    ['tools/bench/tap-vs-fastify.ts', ['--rounds=two'], '--rounds must be a whole number'],
    ['tools/fuzz/main.ts', ['--requests', '1e5'], '--requests must be a whole number'],
    ['tools/bench/cpu-profile.ts', [], 'no profiles: name a directory'],
    ['tools/bench/cpu-profile.ts', ['/nonexistent-profiles'], 'cannot read /nonexistent-profiles'],
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

// The same rules in this process, where `make mutate` sees them (its coverage cannot follow the child processes above).
describe('parseCommandLine', () => {
  const spec = {
    name: 'node tools/x.ts',
    usage: '\n  usage: node tools/x.ts [--server URL] [--once]\n',
    options: { server: { type: 'string' }, once: { type: 'boolean' } },
  } as const;
  const refused = (message: string) => `node tools/x.ts: ${message} (--help lists the options)\n`;

  it.each([['--help'], ['-h'], ['--once', '--help'], ['--help', '--once']])('answers %s with the trimmed usage on stdout and exit status 0', async (...args) => {
    const r = await runCommand(() => parseCommandLine(spec, args));
    expect(r).toMatchObject({ exited: true, exitCode: 0, stderr: '' });
    expect(r.stdout).toBe('usage: node tools/x.ts [--server URL] [--once]\n');
  });

  it('takes --help after -- as an argument, not as a request for help', async () => {
    const r = await runCommand(() => parseCommandLine({ ...spec, maxPositionals: 1 }, ['--once', '--', '--help']));
    expect(r.exited).toBe(false);
    expect(r.value?.positionals).toEqual(['--help']);
    expect(r.value?.values).toEqual({ once: true });
  });

  it('returns the options and arguments it was given', async () => {
    const r = await runCommand(() => parseCommandLine({ ...spec, maxPositionals: 2 }, ['--server', 'nats://a', 'x', 'y']));
    expect(r).toMatchObject({ exited: false, stdout: '', stderr: '' });
    expect(r.value?.values).toEqual({ server: 'nats://a' });
    expect(r.value?.positionals).toEqual(['x', 'y']);
  });

  it("reads this process's arguments after the script by default", async () => {
    const saved = process.argv;
    process.argv = [process.execPath, 'tools/x.ts', '--server', 'nats://b'];
    try {
      const r = await runCommand(() => parseCommandLine(spec));
      expect(r.exited).toBe(false);
      expect(r.value?.values).toEqual({ server: 'nats://b' });
    } finally {
      process.argv = saved;
    }
  });

  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['-q'], 'unknown option -q'],
    [['--server'], 'option --server needs a value'],
    [['--once=yes'], 'option --once takes no value'],
    [['stray'], 'unexpected argument "stray"'],
  ])('refuses %j with one line on stderr and exit status 2', async (args, message) => {
    const r = await runCommand(() => parseCommandLine(spec, args));
    expect(r).toMatchObject({ exited: true, exitCode: 2, stdout: '' });
    expect(r.stderr).toBe(refused(message));
  });

  it('says an option needs a value when the next argument starts with a dash, and how to pass such a value', async () => {
    const r = await runCommand(() => parseCommandLine(spec, ['--server', '--once']));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(refused('option --server needs a value (write --server=VALUE for one that starts with "-")'));
  });

  it('names the first argument past the number it accepts', async () => {
    const r = await runCommand(() => parseCommandLine({ ...spec, maxPositionals: 1 }, ['a', 'b', 'c']));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(refused('unexpected argument "b"'));
  });

  it('accepts exactly the number of arguments it allows', async () => {
    const r = await runCommand(() => parseCommandLine({ ...spec, maxPositionals: 1 }, ['a']));
    expect(r.exited).toBe(false);
    expect(r.value?.positionals).toEqual(['a']);
  });

  it('passes any other parser error on as its first line', async () => {
    const bad = { ...spec, options: { server: { type: 'string', short: 'xx' } } } as const;
    const r = await runCommand(() => parseCommandLine(bad, []));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(refused("The property 'options.server.short' must be a single character. Received 'xx'"));
  });
});

describe('integerOption', () => {
  const refused = (value: string, min: number, max: number) =>
    `node tools/x.ts: --port must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)} (--help lists the options)\n`;

  it.each([
    ['0', 0, 10, 0],
    ['10', 0, 10, 10],
    ['7', 7, 7, 7],
    ['0042', 0, 100, 42],
  ])('takes %j within [%i, %i] as %i', async (value, min, max, n) => {
    const r = await runCommand(() => integerOption('node tools/x.ts', 'port', value, min, max));
    expect(r).toMatchObject({ exited: false, value: n, stderr: '' });
  });

  it('takes any whole number from 0 by default', async () => {
    const r = await runCommand(() => integerOption('node tools/x.ts', 'port', String(Number.MAX_SAFE_INTEGER)));
    expect(r.value).toBe(Number.MAX_SAFE_INTEGER);
    expect((await runCommand(() => integerOption('node tools/x.ts', 'port', '0'))).value).toBe(0);
    const over = await runCommand(() => integerOption('node tools/x.ts', 'port', '9007199254740992'));
    expect(over.stderr).toBe(refused('9007199254740992', 0, Number.MAX_SAFE_INTEGER));
  });

  it.each([
    ['eighty', 0, 10],
    ['x5', 0, 10],
    ['5x', 0, 10],
    ['-1', 0, 10],
    ['1e1', 0, 100],
    ['1.5', 0, 10],
    ['', 0, 10],
    ['6', 7, 10],
    ['11', 0, 10],
  ])('refuses %j outside a whole number in [%i, %i], naming the option, with exit status 2', async (value, min, max) => {
    const r = await runCommand(() => integerOption('node tools/x.ts', 'port', value, min, max));
    expect(r).toMatchObject({ exited: true, exitCode: 2, stdout: '' });
    expect(r.stderr).toBe(refused(value, min, max));
  });
});

import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PLUGIN_BATCH_CONTENT_TYPE, PLUGIN_BATCH_PATH, PLUGIN_DROP_REASONS } from '../../contract/plugin-batch.ts';
import { ROOT } from '../../tools/stack/stack.ts';

// The plugin's Go tests, run the two ways that matter: compiled (with the race detector) and interpreted by the
// Yaegi that Traefik embeds, which silently miscompiles some valid Go (TRAEFIK-PLUGIN notes, docs/traefik-plugin.md).
// A test that passes compiled only proves nothing about the plugin Traefik runs.

const run = promisify(execFile);
const PLUGIN = join(ROOT, 'traefik-plugin');
const TIMEOUT_MS = 240_000;

async function inPlugin(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd: PLUGIN, maxBuffer: 16 * 1024 * 1024, timeout: TIMEOUT_MS, env: { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off' } });
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: error });
  }
}

function yaegiBin(): string {
  const bin = process.env.YAEGI_BIN;
  if (!bin || !existsSync(bin)) throw new Error('YAEGI_BIN is not set to a yaegi binary: run the tests with `make test` (it builds one)');
  return bin;
}

/** The version of `module` a wrapper module under tools/go pins. */
function pinned(tool: string, module: string): string | undefined {
  const goMod = readFileSync(join(ROOT, 'tools', 'go', tool, 'go.mod'), 'utf8');
  return new RegExp(`^(?:require)?\\s*${module.replaceAll('.', '\\.')} (v\\S+)`, 'm').exec(goMod)?.[1];
}

describe('traefik plugin (Go)', () => {
  it('is tested with the Yaegi version that the pinned Traefik embeds', () => {
    const traefiks = pinned('traefik', 'github.com/traefik/yaegi');
    expect(traefiks).toMatch(/^v\d/);
    expect(pinned('yaegi', 'github.com/traefik/yaegi')).toBe(traefiks);
  });

  it('speaks the batch format of contract/plugin-batch.ts: path, content type and drop reasons', () => {
    const source = (file: string) => readFileSync(join(PLUGIN, file), 'utf8');
    expect(source('pool.go')).toContain(`ingestPath    = "${PLUGIN_BATCH_PATH}"`);
    expect(source('frame.go')).toContain(`const batchContentType = "${PLUGIN_BATCH_CONTENT_TYPE}"`);
    const names = /var reasonNames = \[reasonCount\]string\{([^}]*)\}/.exec(source('counters.go'))?.[1];
    expect(names?.split(',').map((n) => n.trim().replaceAll('"', ''))).toEqual([...PLUGIN_DROP_REASONS]);
  });

  it('is gofmt-formatted and passes go vet', async () => {
    expect(await inPlugin('gofmt', ['-l', '.'])).toBe('');
    await inPlugin('go', ['vet', './...']);
  }, TIMEOUT_MS);

  it('passes its tests compiled, with the race detector', async () => {
    const out = await inPlugin('go', ['test', '-race', '-count=1', './...']);
    expect(out).toMatch(/^ok\s/m);
  }, TIMEOUT_MS);

  it('passes the same tests interpreted by Yaegi, as Traefik runs the plugin', async () => {
    const out = await inPlugin(yaegiBin(), ['test', '-v', '.']);
    expect(out).not.toMatch(/^--- FAIL/m);
    expect(out).toMatch(/^PASS$/m);
    // Every test ran interpreted: as many passes as there are Test functions.
    const declared = readdirSync(PLUGIN)
      .filter((f) => f.endsWith('_test.go'))
      .reduce((n, f) => n + [...readFileSync(join(PLUGIN, f), 'utf8').matchAll(/^func Test/gm)].length, 0);
    expect(declared).toBeGreaterThan(5);
    expect(out.match(/^--- PASS/gm)?.length ?? 0).toBeGreaterThanOrEqual(declared);
  }, TIMEOUT_MS);
});

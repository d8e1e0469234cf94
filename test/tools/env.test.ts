import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shellQuote } from '../../tools/demo/shell-quote.ts';

// What the commands install outside the cache. Before, `make test` ran `apt-get install nginx-light` system-wide
// without a word, for the benchmark's S9 peer. Each case runs the real recipe of the make target (as `make -n`
// prints it) with the benchmark itself replaced by `true`. The `apt-get` found first on PATH only records how it was
// called: a test must not install system packages, which is the very thing checked here.

const ROOT = join(import.meta.dirname, '../..');
const bin = mkdtempSync(join(tmpdir(), 'rm-env-'));
const calls = join(bin, 'apt-get.calls');
writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "$*" >> '${calls}'\n`);
chmodSync(join(bin, 'apt-get'), 0o755);
afterAll(() => {
  rmSync(bin, { recursive: true, force: true });
});

const PATH = [bin, dirname(process.execPath), '/usr/local/go/bin', '/usr/local/bin', '/usr/bin', '/bin'].join(':');
// Where tools/env.sh looks for an installed nginx. One installed on this machine would settle the question before
// it is asked, so for the consent cases the recipe runs in a private mount namespace where /dev/null covers it (the
// file itself is untouched); where that is not allowed, those cases cannot run here.
const installedNginx = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin'].map((d) => join(d, 'nginx')).filter((p) => existsSync(p));
const canHideNginx =
  installedNginx.length === 0 ||
  (() => {
    try {
      execFileSync('unshare', ['-m', 'true'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

function withoutNginx(script: string): string {
  if (installedNginx.length === 0) return script;
  const cover = installedNginx.map((p) => `mount --bind /dev/null ${p}`).join(' && ');
  return `unshare -m bash -c ${shellQuote(`${cover} && exec bash -c ${shellQuote(script)}`)}`;
}

function recipe(target: string, benchmark: RegExp, instead = 'true'): string {
  const text = execFileSync('make', ['--no-print-directory', '-n', target], { cwd: ROOT, encoding: 'utf8' }).trim();
  expect(text).toMatch(benchmark);
  return text.replace(benchmark, instead);
}

function runRecipe(script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string; aptGet: string[] }> {
  rmSync(calls, { force: true });
  // SHELL: what `script` runs the recipe with, as make does (SHELL := bash).
  const base: Record<string, string> = { HOME: process.env.HOME ?? '/root', PATH, SHELL: '/bin/bash' };
  for (const key of ['REQUEST_MIRROR_CACHE', 'GOPATH', 'GOCACHE', 'GOMODCACHE', 'NATS_SERVER_BIN', 'TRAEFIK_BIN', 'VEGETA_BIN', 'RESPONDER_BIN']) {
    const value = process.env[key];
    if (value) base[key] = value;
  }
  return new Promise((resolve) => {
    const child = execFile('bash', ['-c', script], { cwd: ROOT, env: { ...base, ...env }, timeout: 170_000 }, (error, stdout, stderr) => {
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
        stdout,
        stderr,
        aptGet: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [],
      });
    });
    child.stdin?.end();
  });
}

describe('system packages', () => {
  it.runIf(canHideNginx)('make test installs none, even in CI', { timeout: 180_000 }, async () => {
    const r = await runRecipe(withoutNginx(recipe('test', /npm test$/)), { CI: 'true' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.aptGet).toEqual([]);
  });

  it.runIf(canHideNginx)('make bench-smoke installs none', { timeout: 180_000 }, async () => {
    const r = await runRecipe(withoutNginx(recipe('bench-smoke', /node tools\/bench\/main\.ts --smoke$/)), { CI: 'true' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.aptGet).toEqual([]);
  });

  it.runIf(installedNginx.length > 0)('make bench uses the nginx already installed, asking nothing and installing nothing', { timeout: 180_000 }, async () => {
    const r = await runRecipe(recipe('bench', /node tools\/bench\/main\.ts --out docs$/, 'echo "NGINX_BIN=$NGINX_BIN"'), {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.aptGet).toEqual([]);
    expect(r.stdout).toMatch(/^NGINX_BIN=\/\S+\/nginx$/m);
    expect(r.stderr).not.toContain('nginx');
  });

  it.runIf(canHideNginx)('make bench without a terminal and without consent installs nothing and says how in one line', { timeout: 180_000 }, async () => {
    const r = await runRecipe(withoutNginx(recipe('bench', /node tools\/bench\/main\.ts --out docs$/)), {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.aptGet).toEqual([]);
    expect(r.stderr.split('\n').filter((l) => l.includes('nginx'))).toEqual([
      expect.stringContaining('nginx not installed: S9 will be reported as not run (REQUEST_MIRROR_INSTALL_NGINX=yes make bench installs'),
    ]);
  });

  it.runIf(canHideNginx).each([
    ['CI=true', { CI: 'true' }],
    ['REQUEST_MIRROR_INSTALL_NGINX=yes', { REQUEST_MIRROR_INSTALL_NGINX: 'yes' }],
  ])('make bench installs nginx-light with apt-get when %s', { timeout: 180_000 }, async (_what, env) => {
    const r = await runRecipe(withoutNginx(recipe('bench', /node tools\/bench\/main\.ts --out docs$/)), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.aptGet).toEqual(['update -qq', 'install -y -qq nginx-light']);
    expect(r.stderr).toContain("installing Debian's nginx-light with apt-get (system-wide)");
  });

  it.runIf(canHideNginx).each([
    ['y', ['update -qq', 'install -y -qq nginx-light']],
    ['n', []],
  ])('make bench on a terminal asks first, and the answer %s decides', { timeout: 180_000 }, async (answer, expected) => {
    // `script` gives the recipe a terminal; the answer is typed into it.
    const script = recipe('bench', /node tools\/bench\/main\.ts --out docs$/);
    const r = await runRecipe(withoutNginx(`printf '${answer}\\n' | script -qec ${shellQuote(script)} /dev/null`), {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.aptGet).toEqual(expected);
  });

  it('the README names every system package a command installs', () => {
    const env = readFileSync(join(ROOT, 'tools/env.sh'), 'utf8');
    const packages = [...env.matchAll(/apt-get install [^;}]*?([\w.+-]+);/g)].map((m) => m[1]);
    expect(packages).toEqual(['nginx-light']);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const p of packages) expect(readme).toMatch(new RegExp(`\`${p ?? ''}\`[^\\n]*system package\\** via \`apt-get\``));
  });
});

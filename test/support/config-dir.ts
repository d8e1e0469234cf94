import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/**
 * A directory laid out as Kubernetes mounts a ConfigMap: `<name> -> ..data/<name>`, `..data -> ..<stamp>`. `swap`
 * updates it the way the kubelet does (a new timestamped directory, a `..data_tmp` symlink to it renamed over
 * `..data`, the old directory removed), so the file at `path` is never written in place.
 */
export function configMapDir(dir: string, name: string, text: string): { readonly path: string; swap(text: string): void } {
  let n = 0;
  let current = '';
  const populate = (content: string) => {
    const stamp = `..2026_11_30_12_00_00.${String(n++).padStart(9, '0')}`;
    mkdirSync(join(dir, stamp));
    writeFileSync(join(dir, stamp, name), content);
    return stamp;
  };
  current = populate(text);
  symlinkSync(current, join(dir, '..data'));
  symlinkSync(join('..data', name), join(dir, name));
  return {
    path: join(dir, name),
    swap(content) {
      const next = populate(content);
      symlinkSync(next, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      rmSync(join(dir, current), { recursive: true, force: true });
      current = next;
    },
  };
}

/**
 * Appends a line to `file` every `everyMs` from a child process until stopped: a busy log next to the config file.
 * A process of its own keeps the pace while the test's event loop is busy.
 */
export function busyNeighbour(file: string, everyMs: number): { readonly appends: () => number; stop(): void } {
  writeFileSync(file, '');
  // The child exits when its stdin closes, so it cannot outlive a test process that dies without calling stop().
  const script = `setInterval(() => require('node:fs').appendFileSync(${JSON.stringify(file)}, 'line\\n'), ${everyMs}); process.stdin.on('end', () => process.exit()).resume();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'ignore', 'ignore'] });
  return {
    appends: () => {
      try {
        return statSync(file).size / 'line\n'.length;
      } catch {
        return 0;
      }
    },
    stop: () => {
      child.kill('SIGKILL');
    },
  };
}

/**
 * A temporary directory, removed after the calling test file's tests, and a writer of numbered config files in it:
 * `file(text)` writes `config-<n>.yaml` and returns its path. Call at a test file's top level (it registers the
 * afterAll hook).
 */
export function tempConfigFiles(prefix: string): { readonly dir: string; readonly file: (text: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  let n = 0;
  return {
    dir,
    file: (text) => {
      const path = join(dir, `config-${String(n++)}.yaml`);
      writeFileSync(path, text);
      return path;
    },
  };
}

import { appendFileSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** Appends a line to `file` every `everyMs` until stopped: a busy log next to the config file. */
export function busyNeighbour(file: string, everyMs: number): { readonly appends: () => number; stop(): void } {
  let appends = 0;
  const timer = setInterval(() => {
    appendFileSync(file, `line ${appends++}\n`);
  }, everyMs);
  return {
    appends: () => appends,
    stop: () => {
      clearInterval(timer);
    },
  };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atExit } from './at-exit.ts';

/** A temporary directory that goes away with this process unless the caller keeps it. */
export interface ScratchDir {
  readonly path: string;
  /** Removes it now (and forgets the removal at exit). */
  remove(): void;
  /** Leaves it in place at exit: for a caller that has printed where it is and why it stays. */
  keep(): void;
}

/**
 * Makes `<os.tmpdir()>/<prefix>XXXXXX` and removes it, with its contents, when this process ends however it ends
 * (tools/stack/at-exit.ts). Make it only once the command line has been accepted: a refused option must leave
 * nothing behind.
 */
export function scratchDir(prefix: string): ScratchDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const removeNow = () => {
    rmSync(path, { recursive: true, force: true });
  };
  const forget = atExit(removeNow);
  return {
    path,
    remove: () => {
      forget();
      removeNow();
    },
    keep: forget,
  };
}

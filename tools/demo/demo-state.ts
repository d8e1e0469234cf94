import { mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

// Where a running `make demo` says which NATS it started, so that `make tail` follows it even when port 4222 was
// taken and the demo moved NATS elsewhere. REQUEST_MIRROR_DEMO_STATE moves the file (one demo per checkout by default).

export interface DemoState {
  readonly pid: number;
  readonly natsUrl: string;
}

export function demoStatePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.REQUEST_MIRROR_DEMO_STATE ?? join(import.meta.dirname, '../../.demo/state.json');
}

// The outermost directory writeDemoState had to make for the file, if any: clearDemoState removes what this process
// made (a Ctrl-C left an empty .demo/ in the checkout), never a directory that was there before.
let madeDir: string | undefined;

export function writeDemoState(state: DemoState, path = demoStatePath()): void {
  madeDir = mkdirSync(dirname(path), { recursive: true }) ?? madeDir;
  writeFileSync(path, `${JSON.stringify(state)}\n`);
}

/**
 * Removes the file if it still describes this process (a newer demo may have replaced it), then the directories
 * writeDemoState made for it, innermost first, as long as they are empty.
 */
export function clearDemoState(path = demoStatePath()): void {
  if (readDemoState(path)?.pid !== process.pid) return;
  rmSync(path, { force: true });
  if (madeDir === undefined) return;
  const outermost = madeDir;
  madeDir = undefined;
  for (let dir = dirname(path); !relative(outermost, dir).startsWith('..'); dir = dirname(dir)) {
    try {
      rmdirSync(dir);
    } catch {
      // Not empty (another demo's file, a user's) or already gone: it stays, and so do the ones around it.
      return;
    }
    if (dir === outermost) return;
  }
}

/** The state of a demo that is still running, or undefined (no file, unreadable, or its process is gone). */
export function readDemoState(path = demoStatePath()): DemoState | undefined {
  let state: Partial<DemoState>;
  try {
    state = JSON.parse(readFileSync(path, 'utf8')) as Partial<DemoState>;
  } catch {
    return undefined;
  }
  if (typeof state.pid !== 'number' || typeof state.natsUrl !== 'string' || !alive(state.pid)) return undefined;
  return { pid: state.pid, natsUrl: state.natsUrl };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

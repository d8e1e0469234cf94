import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

// Where a running `make demo` says which NATS it started, so that `make tail` follows it even when port 4222 was
// taken and the demo moved NATS elsewhere. REQUEST_MIRROR_DEMO_STATE moves the file (one demo per checkout by default).

export interface DemoState {
  readonly pid: number;
  readonly natsUrl: string;
}

export function demoStatePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.REQUEST_MIRROR_DEMO_STATE ?? join(import.meta.dirname, '../../.demo/state.json');
}

export function writeDemoState(state: DemoState, path = demoStatePath()): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(state)}\n`);
}

/** Removes the file if it still describes this process (a newer demo may have replaced it). */
export function clearDemoState(path = demoStatePath()): void {
  if (readDemoState(path)?.pid === process.pid) rmSync(path, { force: true });
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

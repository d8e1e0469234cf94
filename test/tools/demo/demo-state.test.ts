import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clearDemoState, readDemoState, writeDemoState } from '../../../tools/demo/demo-state.ts';

// The file through which `make tail` finds the NATS of a running `make demo` (tools/demo/demo-state.ts). A Ctrl-C of
// the demo removed the file but left the .demo/ directory it had made in the checkout.

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});
function root(): string {
  const r = mkdtempSync(join(tmpdir(), 'rm-demo-state-'));
  roots.push(r);
  return r;
}
const state = { pid: process.pid, natsUrl: 'nats://127.0.0.1:4222' };

describe('demo state', () => {
  it('removes the directories it made for the file when the demo clears its state', () => {
    const r = root();
    const path = join(r, '.demo', 'nested', 'state.json');
    writeDemoState(state, path);
    expect(readDemoState(path)).toEqual(state);
    clearDemoState(path);
    expect(readdirSync(r)).toEqual([]);
  });

  it('keeps a directory that was there before', () => {
    const r = root();
    mkdirSync(join(r, '.demo'));
    const path = join(r, '.demo', 'state.json');
    writeDemoState(state, path);
    clearDemoState(path);
    expect(readdirSync(join(r, '.demo'))).toEqual([]);
  });

  it('keeps a directory it made that holds other files by then, and the directories around it', () => {
    const r = root();
    const path = join(r, '.demo', 'inner', 'state.json');
    writeDemoState(state, path);
    writeFileSync(join(r, '.demo', 'notes.txt'), 'mine\n');
    clearDemoState(path);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(join(r, '.demo'))).toEqual(['notes.txt']);
  });

  it('leaves the file and its directory to a newer demo that replaced the file', () => {
    const r = root();
    const path = join(r, '.demo', 'state.json');
    writeDemoState(state, path);
    // Another live process (this test's parent, vitest's main process) stands for the newer demo.
    writeFileSync(path, `${JSON.stringify({ pid: process.ppid, natsUrl: 'nats://127.0.0.1:4223' })}\n`);
    clearDemoState(path);
    expect(readDemoState(path)?.pid).toBe(process.ppid);
  });
});

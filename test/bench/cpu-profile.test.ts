import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { layerOf, summarise } from '../../tools/bench/cpu-profile.ts';

const dir = mkdtempSync(join(tmpdir(), 'rm-cpu-profile-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('cpu-profile', () => {
  it("sums a real V8 profile's self time by function and by layer, idle left out", () => {
    // A script that spins in one named function for about 300 ms, then idles in a timer for 200 ms.
    const script = join(dir, 'spin.js');
    writeFileSync(script, 'function spin() { const end = Date.now() + 300; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1); return x; }\nspin();\nsetTimeout(() => {}, 200);\n');
    execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, script]);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    const s = summarise([JSON.parse(readFileSync(join(dir, file ?? ''), 'utf8'))]);
    const [top, us] = s.functions[0] ?? ['', 0];
    expect(top).toMatch(/^spin .*spin\.js:1$/);
    // Busy time holds the spin and not the idle wait: the spin is most of it, and it is well under the whole run.
    expect(us / s.busyUs).toBeGreaterThan(0.5);
    expect(s.busyUs).toBeLessThan(450_000);
    expect(s.layers.map(([layer]) => layer)).toContain(`file://${script}`);
  });

  it('stops quietly when its reader closes the pipe early, as `| head` does', () => {
    const cli = join(import.meta.dirname, '../../tools/bench/cpu-profile.ts');
    const profiles = join(dir, 'pipe');
    execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profiles}`, '-e', 'setTimeout(() => {}, 50)']);
    // `true` exits without reading, long before node has started and writes: every write meets a closed pipe.
    const run = spawnSync('bash', ['-o', 'pipefail', '-c', `"${process.execPath}" "${cli}" "${profiles}" | true`], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('names the layer of a frame by package, Node module, project folder or V8 pseudo-frame', () => {
    expect(layerOf('file:///w/node_modules/@nats-io/nats-core/lib/protocol.js', 'publish')).toBe('@nats-io/nats-core');
    expect(layerOf('file:///w/node_modules/undici/lib/dispatcher/client.js', '_resume')).toBe('undici');
    expect(layerOf('node:internal/http2/core', 'respond')).toBe('node:http2');
    expect(layerOf('node:events', 'emit')).toBe('node:events');
    expect(layerOf('file:///w/dispatcher/incoming-event.ts', 'parseEvent')).toBe('dispatcher/');
    expect(layerOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(layerOf('', 'writev')).toBe('(native)');
  });
});

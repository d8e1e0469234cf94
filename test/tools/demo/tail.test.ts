import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { requestSubject } from '../../../contract/subjects.ts';
import { freePort } from '../../../tools/stack/free-port.ts';
import { startNatsServer } from '../../../tools/stack/nats-server.ts';
import { waitUntil } from '../../../tools/stack/process.ts';
import { makeEvent } from '../../dispatcher/harness.ts';

// `make tail` (tools/demo/tail.ts) as a user runs it. Before: a stack trace when NATS was not there, an unhandled
// error on Ctrl-C after NATS went away, and the wrong server whenever the demo had moved NATS off 4222. Every
// failure is now one line on stderr. Following the running demo end to end is in test/e2e/demo.test.ts.

const ROOT = join(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rm-tail-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Tail {
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<number | string>;
  signal(name: NodeJS.Signals): void;
}

const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups) c();
});

function tail(args: string[], env: NodeJS.ProcessEnv = {}): Tail {
  const base = { ...process.env };
  delete base.NATS_URL;
  const child = spawn(process.execPath, ['tools/demo/tail.ts', ...args], {
    cwd: ROOT,
    env: { ...base, REQUEST_MIRROR_DEMO_STATE: join(dir, 'no-demo.json'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return { stdout: () => out, stderr: () => err, exit, signal: (s) => child.kill(s) };
}

const lines = (text: string) => text.trimEnd().split('\n').filter(Boolean);

describe('make tail', () => {
  it.each([
    ['--server', (url: string) => ({ args: ['--server', url], env: {} }), '--server'],
    ['NATS_URL', (url: string) => ({ args: [], env: { NATS_URL: url } }), 'NATS_URL'],
  ])('says in one line that NATS is not there (%s) and exits 1', async (_how, how, from) => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const { args, env } = how(url);
    const t = tail(args, env);
    expect(await t.exit).toBe(1);
    expect(lines(t.stderr())).toEqual([`tail: cannot reach NATS at ${url} (${from}): connection refused`]);
    expect(t.stdout()).toBe('');
  });

  it('prints each event published, then one line when NATS goes away, and stops cleanly on Ctrl-C', { timeout: 60_000 }, async () => {
    const nats = await startNatsServer();
    const t = tail(['--server', nats.url]);
    await waitUntil('tail subscribed', () => Promise.resolve(t.stderr().includes('subscribed')));
    expect(lines(t.stderr())).toEqual([`tail: subscribed to request-mirror.requests.> on ${nats.url} (--server); Ctrl-C to stop`]);

    const nc = await connect({ servers: nats.url });
    const event = makeEvent();
    nc.publish(requestSubject('request-mirror', 'POST'), JSON.stringify(event));
    nc.publish(requestSubject('request-mirror', 'GET'), 'not an event');
    await nc.flush();
    await nc.close();
    await waitUntil('the events printed', () => Promise.resolve(t.stdout().includes('not an event')));
    expect(t.stdout()).toContain(event.id);
    expect(t.stdout()).toContain('request-mirror.requests.GET: not an event');

    await nats.stop();
    await waitUntil('the lost-NATS line', () => Promise.resolve(t.stderr().includes('lost NATS')));
    t.signal('SIGINT');
    expect(await t.exit).toBe(0);
    expect(lines(t.stderr()).slice(1)).toEqual([`tail: lost NATS at ${nats.url}; reconnecting until it is back (Ctrl-C to stop)`]);
  });

  it('follows the NATS a running demo wrote down, and ignores the note of a demo that is gone', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => void nats.stop());
    const state = join(dir, 'state.json');
    // This test's own process stands for the running demo.
    writeFileSync(state, JSON.stringify({ pid: process.pid, natsUrl: nats.url }));
    const t = tail([], { REQUEST_MIRROR_DEMO_STATE: state });
    await waitUntil('tail subscribed', () => Promise.resolve(t.stderr().includes('subscribed')));
    expect(t.stderr()).toContain(`on ${nats.url} (the running make demo, pid ${process.pid})`);
    t.signal('SIGINT');
    expect(await t.exit).toBe(0);

    const gone = spawn(process.execPath, ['-e', '']);
    const deadPid = gone.pid ?? 0;
    await new Promise((resolve) => gone.once('exit', resolve));
    writeFileSync(state, JSON.stringify({ pid: deadPid, natsUrl: nats.url }));
    const stale = tail(['--prefix', 'x'], { REQUEST_MIRROR_DEMO_STATE: state, NATS_URL: '' });
    const result = await Promise.race([stale.exit, waitUntil('subscribed', () => Promise.resolve(stale.stderr().includes('subscribed'))).then(() => 'subscribed')]);
    // Either nothing listens on 4222 (one line, exit 1) or something does; never the dead demo's server.
    expect(stale.stderr()).toContain('nats://127.0.0.1:4222 (the default; no make demo is running)');
    if (result === 'subscribed') stale.signal('SIGINT');
    await stale.exit;
  });
});

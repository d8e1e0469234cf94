import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { waitUntil } from '../../tools/stack/process.ts';
import { ROOT } from '../../tools/stack/stack.ts';

// `make demo` must not rot: its non-interactive mode starts the whole stack, sends the example requests, checks they
// reached the webhook and stops everything.

describe('make demo', () => {
  it('runs the example requests through Traefik to the printing webhook and exits 0 with --once, leaving no state directory', { timeout: 120_000 }, async () => {
    // Not the checkout's own state file, which a `make demo` running beside the tests may be using; its directory does
    // not exist yet, as .demo/ in a fresh clone.
    const root = mkdtempSync(join(tmpdir(), 'rm-demo-once-'));
    onTestFinished(() => {
      rmSync(root, { recursive: true, force: true });
    });
    const { stdout } = await promisify(execFile)(process.execPath, ['tools/demo/run.ts', '--once'], {
      cwd: ROOT,
      env: { ...process.env, REQUEST_MIRROR_DEMO_STATE: join(root, '.demo', 'state.json') },
      timeout: 110_000,
      killSignal: 'SIGTERM',
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('all 4 example requests reached the webhook');
    expect(stdout).toMatch(/── webhook received: GET http:\/\/app\.localhost\/products\?category=books&page=2/);
    expect(stdout).toMatch(/cookies: \{"session":"abc123"\}/);
    expect(stdout).toMatch(/── webhook received: POST http:\/\/api\.localhost\/orders[\s\S]*?body \(31\/31 bytes\): \{"item":"book-42","quantity":2\}/);
    expect(stdout).toMatch(/── webhook received: GET http:\/\/app\.localhost\/account[\s\S]*?redacted: authorization/);
    expect(stdout).not.toContain('demo-secret-token"');
    expect(stdout).toMatch(/── webhook received: PUT http:\/\/shop\.localhost\/cart\/7\n {3}id \S+ {2}attachment mirror/);
    expect(readdirSync(root)).toEqual([]);
  });
});

// `make demo` left running, as a user meets it: the curl lines it prints are pasted into a real shell (before, an
// unquoted `&` sent half the URL and put curl in the background), and `make tail` finds the demo's NATS by itself
// when port 4222 is taken (before, it watched 4222 whatever the demo had done).
describe('make demo, left running', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rm-demo-'));
  // In a directory the demo makes, as .demo/ in a fresh clone.
  const state = join(dir, '.demo', 'state.json');
  const children: ChildProcess[] = [];
  const blocker = createServer();
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await new Promise((resolve) => blocker.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  function start(args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | string> } {
    const env: NodeJS.ProcessEnv = { ...process.env, REQUEST_MIRROR_DEMO_STATE: state };
    delete env.NATS_URL;
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exit = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => {
        resolve(code ?? signal ?? 'unknown');
      });
    });
    return { child, stdout: () => out, stderr: () => err, exit };
  }

  it('prints curl lines that work pasted into a shell, and make tail follows its NATS off port 4222, and again after a restart', { timeout: 240_000 }, async () => {
    // Taken by us, or already by someone else: either way the demo must move NATS elsewhere.
    await new Promise<void>((resolve) => {
      blocker.once('error', () => {
        resolve();
      });
      blocker.listen(4222, '127.0.0.1', () => {
        resolve();
      });
    });
    const demo = start(['tools/demo/run.ts']);
    await waitUntil('the demo to stay up', () => Promise.resolve(demo.stdout().includes('the stack stays up')), { timeoutMs: 120_000 });
    const natsUrl = /nats sub --server (nats:\/\/\S+)/.exec(demo.stdout())?.[1] ?? '';
    expect(natsUrl).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(natsUrl).not.toBe('nats://127.0.0.1:4222');

    const tail = start(['tools/demo/tail.ts']);
    await waitUntil('tail to subscribe', () => Promise.resolve(tail.stderr().includes('subscribed')), { timeoutMs: 20_000 });
    expect(tail.stderr()).toContain(`on ${natsUrl} (the running make demo, pid ${demo.child.pid ?? ''})`);

    const curls = [...demo.stdout().matchAll(/\$ (curl .*)$/gm)].map((m) => m[1] ?? '');
    expect(curls).toHaveLength(7);
    const seen: string[] = [];
    for (const line of curls) {
      const { stdout } = await promisify(execFile)('bash', ['-c', line], { timeout: 20_000 });
      seen.push((JSON.parse(stdout) as { url: string }).url);
    }
    expect(seen).toEqual(['/products?category=books&page=2', '/orders', '/account', '/cart/7', '/anything?x=1&y=2', '/orders', '/cart']);
    await waitUntil('the pasted request at the webhook and in make tail', () =>
      Promise.resolve(
        /webhook received: GET http:\/\/app\.localhost\/anything\?x=1&y=2\n/.test(demo.stdout()) &&
          /request-mirror\.requests\.GET: GET http:\/\/app\.localhost\/anything\?x=1&y=2\n/.test(tail.stdout()),
      ),
    );

    demo.child.kill('SIGINT');
    expect(await demo.exit).toBe(0);
    expect(existsSync(join(dir, '.demo')), 'the state file and the directory the demo made for it').toBe(false);
    // Its children went with it: nothing answers on its Traefik port any more.
    const traefikUrl = /up: Traefik on (http:\/\/\S+)/.exec(demo.stdout())?.[1] ?? '';
    await expect(fetch(`${traefikUrl}/ping`)).rejects.toThrow();
    await waitUntil('tail to say NATS is gone', () => Promise.resolve(tail.stderr().includes('lost NATS')));

    // A demo started again (NATS on yet another port): tail follows it without being restarted.
    const again = start(['tools/demo/run.ts']);
    await waitUntil('the second demo to stay up', () => Promise.resolve(again.stdout().includes('the stack stays up')), { timeoutMs: 120_000 });
    const movedTo = /nats sub --server (nats:\/\/\S+)/.exec(again.stdout())?.[1] ?? '';
    await waitUntil('tail to follow the new NATS', () => Promise.resolve(tail.stderr().includes(`subscribed to request-mirror.requests.> on ${movedTo}`)), { timeoutMs: 20_000 });
    const line = [...again.stdout().matchAll(/\$ (curl .*anything.*)$/gm)].map((m) => m[1] ?? '')[0] ?? '';
    await promisify(execFile)('bash', ['-c', line], { timeout: 20_000 });
    await waitUntil('the event of the second demo in make tail', () => Promise.resolve(tail.stdout().split('/anything?x=1&y=2\n').length === 3));
    again.child.kill('SIGINT');
    expect(await again.exit).toBe(0);

    await waitUntil('tail to say NATS is gone again', () => Promise.resolve(tail.stderr().split('lost NATS').length === 3));
    tail.child.kill('SIGINT');
    expect(await tail.exit).toBe(0);
    expect(tail.stderr().trimEnd().split('\n')).toEqual([
      `tail: subscribed to request-mirror.requests.> on ${natsUrl} (the running make demo, pid ${demo.child.pid ?? ''}); Ctrl-C to stop`,
      `tail: lost NATS at ${natsUrl}; reconnecting until it is back (Ctrl-C to stop)`,
      `tail: make demo now runs NATS at ${movedTo}; following it`,
      `tail: subscribed to request-mirror.requests.> on ${movedTo} (the restarted make demo, pid ${again.child.pid ?? ''}); Ctrl-C to stop`,
      `tail: lost NATS at ${movedTo}; reconnecting until it is back (Ctrl-C to stop)`,
    ]);
  });
});

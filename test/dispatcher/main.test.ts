import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHttpReceiver, type HttpReceiver, type Responder } from '../support/http-receiver.ts';
import { startNatsServer, stopChild, type NatsServer } from '../support/nats-server.ts';
import { eventually, makeEvent, publish, startBlackhole, PREFIX } from './harness.ts';

// The real process: `node dispatcher/main.ts --config FILE`, as the container runs it.

const MAIN = join(import.meta.dirname, '../../dispatcher/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'rm-dispatcher-'));
let nats: NatsServer;
let nc: NatsConnection;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc.close();
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let n = 0;
function configFile(text: string): string {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function yamlFor(targets: string, extra = ''): string {
  return `
nats:
  url: ${nats.url}
  subjectPrefix: ${PREFIX}
dispatcher:
  admin: { host: 127.0.0.1, port: 0 }
  network: { allowLoopback: true }
${extra}
targets:
${targets}
`;
}

interface Running {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', resolve);
  });
  cleanups.push(() => stopChild(child));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function startReady(config: string): Promise<Running & { admin: string }> {
  const p = run(['--config', config]);
  let port = 0;
  await eventually(() => {
    const m = /"port":(\d+)[^\n]*"msg":"admin listening"/.exec(p.stdout());
    port = Number(m?.[1] ?? 0);
    return port > 0 || p.child.exitCode !== null;
  }, 20_000, 'admin listening');
  const admin = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${admin}/readyz`).catch(() => undefined))?.status === 200, 20_000, 'ready');
  return { ...p, admin };
}

async function receiver(respond?: Responder): Promise<HttpReceiver> {
  const r = await startHttpReceiver(respond);
  cleanups.push(() => r.close());
  return r;
}

describe('dispatcher process', () => {
  it('finishes queued deliveries at SIGTERM, then exits 0', async () => {
    const r = await receiver((_req, res) => {
      setTimeout(() => res.writeHead(204).end(), 100);
    });
    const p = await startReady(configFile(yamlFor(`  - { name: a, watchURL: "${r.url}", methods: ["*"], concurrency: 1 }`)));
    expect((await fetch(`${p.admin}/healthz`)).status).toBe(200);
    await publish(nc, ...Array.from({ length: 5 }, () => makeEvent()));
    await r.waitFor(1);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(r.requests).toHaveLength(5);
    expect(p.stdout()).toContain('all deliveries finished');
  });

  it('drops what is left at the shutdown timeout and still exits 0', async () => {
    const hole = await startBlackhole();
    cleanups.push(() => hole.close());
    const p = await startReady(
      configFile(
        yamlFor(
          `  - { name: hole, watchURL: "${hole.url}", methods: ["*"], concurrency: 1, timeoutMs: 60000, headersTimeoutMs: 60000 }`,
          '  shutdownTimeoutMs: 300',
        ),
      ),
    );
    const metricsBefore = await (await fetch(`${p.admin}/metrics`)).text();
    expect(metricsBefore).toContain('request_mirror_dispatcher_events_received_total');
    await publish(nc, makeEvent(), makeEvent(), makeEvent());
    await eventually(async () => /events_pending\{target="hole"\} 3/.test(await (await fetch(`${p.admin}/metrics`)).text()));
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain('shutdown timeout');
  });

  it('applies a changed config file without a restart', async () => {
    const first = await receiver();
    const second = await receiver();
    const path = configFile(yamlFor(`  - { name: a, watchURL: "${first.url}", methods: ["*"] }`));
    const p = await startReady(path);
    await publish(nc, makeEvent());
    await first.waitFor(1);
    writeFileSync(path, yamlFor(`  - { name: b, watchURL: "${second.url}", methods: ["*"] }`));
    await eventually(() => p.stdout().includes('config reloaded'), 10_000, 'reload');
    await publish(nc, makeEvent());
    await second.waitFor(1);
    expect(first.requests).toHaveLength(1);
  });

  it('exits 1 naming the file and the field when the config is invalid', async () => {
    const path = configFile(yamlFor(`  - { name: a, watchURL: "http://x.example/", methods: ["*"], concurrency: 0 }`));
    const p = run(['--config', path]);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('RM_CONFIG_INVALID');
    expect(p.stderr()).toContain(path);
    expect(p.stderr()).toContain('targets[0].concurrency');
  });

  it('exits 1 naming the target and the variable when a secret is missing', async () => {
    const path = configFile(yamlFor(`  - { name: signed, watchURL: "http://x.example/", methods: ["*"], secrets: [{ env: RM_TEST_NO_SUCH_SECRET }] }`));
    const p = run([], { REQUEST_MIRROR_CONFIG: path });
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('RM_SECRET_UNAVAILABLE');
    expect(p.stderr()).toContain('"signed"');
    expect(p.stderr()).toContain('RM_TEST_NO_SUCH_SECRET');
  });

  it('exits 1 saying how to pass a config when none is given', async () => {
    const p = run([], { REQUEST_MIRROR_CONFIG: '' });
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('--config');
  });
});

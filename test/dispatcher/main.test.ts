import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../tools/stack/free-port.ts';
import { startNatsServer, stopChild } from '../../tools/stack/nats-server.ts';
import { RELOAD_BOUND_MS } from '../../contract/config-file.ts';
import { busyNeighbour, configMapDir } from '../support/config-dir.ts';
import { requestSubject } from '../../contract/subjects.ts';
import { eventually, makeEvent, publish, startBlackhole, useDispatcherFixture, PREFIX } from './harness.ts';

// The real process: `node dispatcher/main.ts --config FILE`, as the container runs it.

const MAIN = join(import.meta.dirname, '../../dispatcher/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'rm-dispatcher-'));
const { nats, receiver, defer } = useDispatcherFixture();
let nc: NatsConnection;
beforeAll(async () => {
  nc = await connect({ servers: nats.url });
});
// Registered after the fixture's, so it runs before the nats-server stops (vitest runs after-hooks in reverse).
afterAll(async () => {
  await nc.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function configFile(text: string): string {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function yamlFor(targets: string, extra = '', natsConfig = `url: ${nats.url}, subjectPrefix: ${PREFIX}`): string {
  return `
nats: { ${natsConfig} }
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
  defer(() => stopChild(child));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function startReady(config: string, env: Record<string, string> = {}): Promise<Running & { admin: string }> {
  const p = run(['--config', config], env);
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
    defer(() => hole.close());
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

  it('applies a ConfigMap swap and reports an invalid one within the bound while a log beside it is appended every 20 ms', async () => {
    const first = await receiver();
    const second = await receiver();
    const mount = join(dir, 'configmap');
    mkdirSync(mount);
    const cm = configMapDir(mount, 'config.yaml', yamlFor(`  - { name: a, watchURL: "${first.url}", methods: ["*"] }`));
    const log = busyNeighbour(join(mount, 'dispatcher.log'), 20);
    defer(() => {
      log.stop();
    });
    const p = await startReady(cm.path);
    const count = (text: string) => p.stdout().split(text).length - 1;
    cm.swap(yamlFor(`  - { name: b, watchURL: "${second.url}", methods: ["*"] }`));
    await eventually(() => count('"msg":"config reloaded"') === 1, RELOAD_BOUND_MS, 'reload');
    await publish(nc, makeEvent());
    await second.waitFor(1);
    cm.swap('targets: 5\n');
    await eventually(() => count('config reload rejected') === 1, RELOAD_BOUND_MS, 'rejection');
    expect(count('"msg":"config reloaded"')).toBe(1);
    expect(first.requests).toHaveLength(0);
    expect(log.appends()).toBeGreaterThan(5);
  });

  it('answers 503 on /readyz while NATS is down and 200 again once it is back, then delivers again', async () => {
    let own = await startNatsServer();
    defer(() => own.stop());
    const r = await receiver();
    const p = await startReady(configFile(yamlFor(`  - { name: a, watchURL: "${r.url}", methods: ["*"] }`, '', `url: ${own.url}, subjectPrefix: ${PREFIX}`)));
    const readyz = async () => (await fetch(`${p.admin}/readyz`)).status;
    await own.stop();
    await eventually(async () => (await readyz()) === 503, 20_000, '/readyz 503 while NATS is down');
    expect((await fetch(`${p.admin}/healthz`)).status).toBe(200);

    own = await startNatsServer({ port: own.port });
    await eventually(async () => (await readyz()) === 200, 30_000, '/readyz 200 after NATS is back');
    const client = await connect({ servers: own.url });
    defer(() => client.close());
    // The subscription is restored with the connection: an event published now arrives.
    await publish(client, makeEvent());
    await r.waitFor(1);
  });

  it('answers 503 naming the refusal while a restarted NATS refuses its login, 200 once it takes it again, and receives on a subscription a reload made meanwhile', async () => {
    const port = await freePort();
    const requiring = (password: string) => ['authorization {', '  users: [', `    { user: dispatcher, password: "${password}" }`, '    { user: client, password: "pw" }', '  ]', '}'];
    let own = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    defer(() => own.stop());
    const r = await receiver();
    const target = `  - { name: a, watchURL: "${r.url}", methods: ["*"] }`;
    const natsAt = (prefix: string) => `url: ${own.url}, subjectPrefix: ${prefix}, reconnectTimeWaitMs: 50, auth: { user: dispatcher, password: { env: RM_TEST_NATS_PASSWORD } }`;
    const path = configFile(yamlFor(target, '', natsAt(PREFIX)));
    const p = await startReady(path, { RM_TEST_NATS_PASSWORD: 'pw-1' });
    const readyz = async () => {
      const res = await fetch(`${p.admin}/readyz`);
      return { status: res.status, body: await res.text() };
    };

    // Restarted with the dispatcher's password rotated: every reconnect is refused.
    process.kill(own.pid, 'SIGKILL');
    await own.stop();
    await eventually(async () => (await readyz()).status === 503, 20_000, '/readyz 503 while NATS is down');
    own = await startNatsServer({ port, extraConfig: requiring('pw-2') });
    await eventually(() => own.output().split('authentication error').length > 3, 20_000, 'three refused reconnects');
    expect(await readyz()).toEqual({ status: 503, body: expect.stringContaining('nats: the NATS server refused the credentials: Authorization Violation') as unknown });
    // A reload now subscribes while nats.js is between refused attempts.
    writeFileSync(path, yamlFor(target, '', natsAt('moved')));
    await eventually(() => p.stdout().includes('config reloaded'), 10_000, 'the reload');

    // Rotated back: the same connection comes back, with the subscription made meanwhile.
    process.kill(own.pid, 'SIGKILL');
    await own.stop();
    own = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    await eventually(async () => (await readyz()).status === 200, 30_000, '/readyz 200 once NATS takes the password');
    expect((await readyz()).body).not.toContain('refused');
    expect(p.stdout().split('\n').filter((l) => l.includes('"msg":"cannot connect to NATS; retrying"'))).toHaveLength(1);
    const client = await connect({ servers: own.url, user: 'client', pass: 'pw' });
    defer(() => client.close());
    const onOld = makeEvent();
    const onNew = makeEvent();
    client.publish(requestSubject(PREFIX, 'POST'), JSON.stringify(onOld));
    client.publish(requestSubject('moved', 'POST'), JSON.stringify(onNew));
    await client.flush();
    const [got] = await r.waitFor(1);
    expect((JSON.parse(got?.body.toString() ?? '{}') as { id: string }).id).toBe(onNew.id);
  });

  it('resubscribes when a reload changes the subject prefix', async () => {
    const r = await receiver();
    const target = `  - { name: a, watchURL: "${r.url}", methods: ["*"], concurrency: 1 }`;
    const path = configFile(yamlFor(target));
    const p = await startReady(path);
    writeFileSync(path, yamlFor(target, '', `url: ${nats.url}, subjectPrefix: moved`));
    await eventually(() => p.stdout().includes('previous subscription drained'), 10_000, 'the old subscription drained');
    const onOld = makeEvent();
    const onNew = makeEvent();
    // Published in this order on one connection and delivered one at a time: were the old subject still heard,
    // its event would arrive first.
    nc.publish(requestSubject(PREFIX, 'POST'), JSON.stringify(onOld));
    nc.publish(requestSubject('moved', 'POST'), JSON.stringify(onNew));
    await nc.flush();
    const [got] = await r.waitFor(1);
    expect((JSON.parse(got?.body.toString() ?? '{}') as { id: string }).id).toBe(onNew.id);
    expect(p.stdout()).toContain('"subject":"moved.requests.>"');
  });

  it('resubscribes when a reload changes the queue group', async () => {
    const r = await receiver();
    const first = 'rm-test-group-1';
    const path = configFile(yamlFor(`  - { name: a, watchURL: "${r.url}", methods: ["*"] }`, '', `url: ${nats.url}, subjectPrefix: ${PREFIX}, queueGroup: ${first}`));
    const p = await startReady(path);
    // Another member of the first group: while the dispatcher is in it too, the two share the events.
    let peerCount = 0;
    const peer = nc.subscribe(`${PREFIX}.requests.>`, {
      queue: first,
      callback: () => {
        peerCount++;
      },
    });
    defer(() => {
      peer.unsubscribe();
      return Promise.resolve();
    });
    await nc.flush();
    await publish(nc, ...Array.from({ length: 40 }, () => makeEvent()));
    await eventually(() => peerCount + r.requests.length === 40, 10_000, 'the first group shares 40 events');
    expect(peerCount).toBeGreaterThan(0);

    writeFileSync(path, yamlFor(`  - { name: a, watchURL: "${r.url}", methods: ["*"] }`, '', `url: ${nats.url}, subjectPrefix: ${PREFIX}, queueGroup: rm-test-group-2`));
    await eventually(() => p.stdout().includes('previous subscription drained'), 10_000, 'the old subscription drained');
    const before = { peer: peerCount, dispatcher: r.requests.length };
    await publish(nc, ...Array.from({ length: 20 }, () => makeEvent()));
    // In a group of its own now, the dispatcher gets every event, and so does the peer left in the first group.
    await r.waitFor(before.dispatcher + 20);
    await eventually(() => peerCount === before.peer + 20, 10_000, 'the peer gets all 20');
    expect(r.requests).toHaveLength(before.dispatcher + 20);
  });

  it('exits 2 naming the file and the field when the config is invalid', async () => {
    const path = configFile(yamlFor(`  - { name: a, watchURL: "http://x.example/", methods: ["*"], concurrency: 0 }`));
    const p = run(['--config', path]);
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('RM_CONFIG_INVALID');
    expect(p.stderr()).toContain(path);
    expect(p.stderr()).toContain('targets[0].concurrency');
  });

  it('exits 2 naming the target and the variable when a secret is missing', async () => {
    const path = configFile(yamlFor(`  - { name: signed, watchURL: "http://x.example/", methods: ["*"], secrets: [{ env: RM_TEST_NO_SUCH_SECRET }] }`));
    const p = run([], { REQUEST_MIRROR_CONFIG: path });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('RM_SECRET_UNAVAILABLE');
    expect(p.stderr()).toContain('"signed"');
    expect(p.stderr()).toContain('RM_TEST_NO_SUCH_SECRET');
  });

  it('logs a warning naming the setting for a target the network policy refuses, and for an empty target list after a reload', async () => {
    const path = configFile(
      yamlFor(`  - { name: local, watchURL: "http://127.0.0.1:9/hook", methods: ["*"] }`).replace('network: { allowLoopback: true }', 'network: {}'),
    );
    const p = await startReady(path);
    await eventually(() => p.stdout().includes('RM_ADDRESS_REFUSED'), 10_000, 'the address warning');
    const warning = p.stdout().split('\n').find((l) => l.includes('RM_ADDRESS_REFUSED')) ?? '';
    expect(JSON.parse(warning)).toMatchObject({ level: 40, code: 'RM_ADDRESS_REFUSED', msg: expect.stringContaining('targets[0] "local"') as unknown });
    expect(warning).toContain('To allow it: dispatcher.network.allowLoopback: true');

    writeFileSync(path, yamlFor('  []').replace('targets:\n  []', 'targets: []'));
    await eventually(() => p.stdout().includes('RM_CONFIG_NO_TARGETS'), 10_000, 'the empty-targets warning');
  });

  it('exits 2 saying how to pass a config when none is given', async () => {
    const p = run([], { REQUEST_MIRROR_CONFIG: '' });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('--config');
  });
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELOAD_BOUND_MS } from '../../contract/config-file.ts';
import type { ConfigInput } from '../../contract/config.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { answers2xx, startProcess, waitUntil, type ManagedProcess } from '../../tools/stack/process.ts';
import { busyNeighbour, configMapDir } from '../support/config-dir.ts';
import { collectEvents, send, target, type EventCollector } from './tap-harness.ts';

// The tap as production runs it: `node ingress-tap/main.ts --config FILE`, reloading the file while running and
// stopping cleanly on SIGTERM.

const ROOT = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'rm-tap-main-'));
const configPath = join(dir, 'request-mirror.yaml');

let nats: NatsServer;
let events: EventCollector;
let tap: ManagedProcess;
let ports: { fa: number; mirror: number; admin: number };

function writeConfig(targets: ConfigInput['targets']): void {
  const config: ConfigInput = {
    tap: {
      forwardAuth: { host: '127.0.0.1', port: ports.fa },
      mirror: { host: '127.0.0.1', port: ports.mirror },
      plugin: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: ports.admin },
    },
    targets,
  };
  // JSON is YAML.
  writeFileSync(configPath, JSON.stringify(config));
}

beforeAll(async () => {
  nats = await startNatsServer();
  events = await collectEvents(nats.url, 'request-mirror');
  ports = { fa: await freePort(), mirror: await freePort(), admin: await freePort() };
  writeConfig([target('posts', { methods: ['POST'] })]);
  tap = startProcess({
    name: 'ingress-tap',
    command: process.execPath,
    args: [join(ROOT, 'ingress-tap/main.ts'), '--config', configPath],
    env: { ...process.env, NATS_URL: nats.url, LOG_LEVEL: 'info' },
    cwd: ROOT,
  });
  await waitUntil('ingress-tap /readyz', () => answers2xx(`http://127.0.0.1:${ports.admin}/readyz`), { process: tap });
});
afterAll(async () => {
  await (tap as ManagedProcess | undefined)?.stop();
  await (events as EventCollector | undefined)?.close();
  await (nats as NatsServer | undefined)?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const forwardAuth = (method: string, uri: string) =>
  send(`http://127.0.0.1:${ports.fa}/`, { headers: { 'x-forwarded-method': method, 'x-forwarded-uri': uri, 'x-forwarded-host': 'app.example' } });

describe('ingress-tap process', () => {
  it('serves /healthz and Prometheus metrics on the admin listener', async () => {
    expect((await send(`http://127.0.0.1:${ports.admin}/healthz`)).status).toBe(200);
    const metrics = await send(`http://127.0.0.1:${ports.admin}/metrics`);
    expect(metrics.status).toBe(200);
    for (const name of [
      'request_mirror_tap_requests_received_total',
      'request_mirror_tap_events_published_total',
      'request_mirror_tap_requests_skipped_total',
      'request_mirror_tap_events_dropped_total',
      'request_mirror_tap_bodies_truncated_total',
      'request_mirror_tap_publish_errors_total',
      'request_mirror_tap_rejected_input_total',
      'request_mirror_tap_handling_seconds',
      'request_mirror_tap_connections_total',
      'process_cpu_seconds_total',
    ]) {
      expect(metrics.body).toContain(`# TYPE ${name}`);
    }
  });

  it('applies a changed config file to the next requests, and keeps the old one when the new one is invalid', async () => {
    await forwardAuth('GET', '/before-reload');
    await forwardAuth('POST', '/post-1');
    const [first] = await events.waitForEvents(1);
    expect(first?.event.data.path).toBe('/post-1');

    writeConfig([target('gets', { methods: ['GET'] })]);
    await waitUntil('reloaded config', () => Promise.resolve(tap.output().includes('config reloaded')), { process: tap });
    await forwardAuth('POST', '/post-2');
    await forwardAuth('GET', '/get-1');
    const second = await events.waitForEvents(2);
    expect(second[1]?.event.data.path).toBe('/get-1');

    writeFileSync(configPath, JSON.stringify({ targets: [{ name: 'Bad Name', methods: [] }] }));
    await waitUntil('rejected config', () => Promise.resolve(tap.output().includes('RM_CONFIG_INVALID')), { process: tap });
    await forwardAuth('GET', '/get-2');
    const third = await events.waitForEvents(3);
    expect(third[2]?.event.data.path).toBe('/get-2');
    expect(events.invalid).toEqual([]);
  });

  // SIGTERM lands while requests are still arriving: the last events are then still waiting for their build pass
  // or in the publisher's batch, and go out only through the shutdown's flush and the publisher's close.
  it('publishes an event for every request it answered before SIGTERM, then exits 0', async () => {
    const reloads = tap.output().split('config reloaded').length;
    writeConfig([target('everything')]);
    await waitUntil('reloaded config', () => Promise.resolve(tap.output().split('config reloaded').length > reloads), { process: tap });
    const before = events.received.length;
    const TOTAL = 300;
    let answered = 0;
    let stopping: Promise<void> | undefined;
    const outcomes = await Promise.allSettled(
      Array.from({ length: TOTAL }, async (_, i) => {
        const res = await forwardAuth('GET', `/shutdown/${i}`);
        answered++;
        if (answered === 50) stopping = tap.stop(10_000);
        return res;
      }),
    );
    await stopping;
    expect(await tap.exit).toBe(0);
    expect(tap.output()).toContain('"msg":"stopped"');
    const ids = outcomes.flatMap((o) => (o.status === 'fulfilled' && o.value.status === 200 ? [String(o.value.headers['x-request-mirror-id'])] : []));
    expect(ids.length).toBeGreaterThanOrEqual(50);
    await events.waitForEvents(before + ids.length, 10_000);
    const published = new Set(events.received.slice(before).map((r) => r.event.id));
    expect(ids.filter((id) => !published.has(id))).toEqual([]);
    expect(events.invalid).toEqual([]);
  });
});

describe('ingress-tap shutdown against a NATS server that stopped answering', () => {
  it('exits 1 at tap.shutdownTimeoutMs and counts what NATS never confirmed as in doubt in its last log lines', async () => {
    const frozen = await startNatsServer();
    const config: ConfigInput = {
      tap: {
        forwardAuth: { host: '127.0.0.1', port: await freePort() },
        mirror: { host: '127.0.0.1', port: 0 },
        plugin: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: await freePort() },
        shutdownTimeoutMs: 1000,
      },
      targets: [target('everything')],
    };
    const file = join(dir, 'frozen-nats.yaml');
    writeFileSync(file, JSON.stringify(config));
    const p = startProcess({
      name: 'frozen-nats-tap',
      command: process.execPath,
      args: [join(ROOT, 'ingress-tap/main.ts'), '--config', file],
      env: { ...process.env, NATS_URL: frozen.url, LOG_LEVEL: 'info' },
      cwd: ROOT,
    });
    try {
      await waitUntil('ingress-tap /readyz', () => answers2xx(`http://127.0.0.1:${config.tap?.admin?.port}/readyz`), { process: p });
      // Frozen, the server takes the tap's bytes into its socket buffer and never answers the PING that would confirm them.
      process.kill(frozen.pid, 'SIGSTOP');
      for (let i = 0; i < 5; i++) {
        const res = await send(`http://127.0.0.1:${config.tap?.forwardAuth?.port}/`, { headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': `/frozen/${i}` } });
        expect(res.status).toBe(200);
      }
      // Past the publisher's 10 ms batch: the events are handed to NATS.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = Date.now();
      process.kill(p.pid, 'SIGTERM');
      expect(await p.exit).toBe(1);
      expect(Date.now() - started).toBeLessThan(5000);
      const lines = p.output().split('\n').flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as { msg: string; inDoubt?: number }] : []));
      expect(lines.filter((l) => l.msg === 'shutdown timed out; exiting')).toHaveLength(1);
      expect(lines.filter((l) => l.msg === 'events handed to NATS but not confirmed when the publisher stopped')).toEqual([
        expect.objectContaining({ level: 40, inDoubt: 5 }),
      ]);
    } finally {
      process.kill(frozen.pid, 'SIGCONT');
      await p.stop();
      await frozen.stop();
    }
  });
});

describe('ingress-tap start-up', () => {
  it('exits 2 naming the problem when the config file is invalid', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'tap: { maxBodyBytes: -1 }\n');
    const p = startProcess({ name: 'bad-tap', command: process.execPath, args: [join(ROOT, 'ingress-tap/main.ts')], env: { ...process.env, REQUEST_MIRROR_CONFIG: bad }, cwd: ROOT });
    expect(await p.exit).toBe(2);
    expect(p.output()).toContain('RM_CONFIG_INVALID');
    expect(p.output()).toContain('maxBodyBytes');
  });

  it('starts with an empty target list and logs a warning that no webhook will get the events', async () => {
    const empty = join(dir, 'no-targets.yaml');
    const config: ConfigInput = {
      tap: { forwardAuth: { host: '127.0.0.1', port: 0 }, mirror: { host: '127.0.0.1', port: 0 }, plugin: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
      targets: [],
    };
    writeFileSync(empty, JSON.stringify(config));
    const p = startProcess({ name: 'no-targets-tap', command: process.execPath, args: [join(ROOT, 'ingress-tap/main.ts'), '--config', empty], env: { ...process.env, NATS_URL: nats.url }, cwd: ROOT });
    try {
      await waitUntil('listening', () => Promise.resolve(p.output().includes('ingress-tap listening')), { process: p });
      const warning = p.output().split('\n').find((l) => l.includes('RM_CONFIG_NO_TARGETS')) ?? '';
      expect(JSON.parse(warning)).toMatchObject({ level: 40, code: 'RM_CONFIG_NO_TARGETS' });
    } finally {
      await p.stop();
    }
  });

  it('exits 2 with RM_TAP_TLS_UNUSABLE naming the file when a listener certificate is missing', async () => {
    const bad = join(dir, 'bad-tls.yaml');
    const missing = join(dir, 'missing-cert.pem');
    const config: ConfigInput = { tap: { forwardAuth: { host: '127.0.0.1', port: 0, tls: { certFile: missing, keyFile: missing } }, admin: { host: '127.0.0.1', port: 0 } } };
    writeFileSync(bad, JSON.stringify(config));
    const p = startProcess({ name: 'bad-tls-tap', command: process.execPath, args: [join(ROOT, 'ingress-tap/main.ts'), '--config', bad], env: { ...process.env, NATS_URL: nats.url }, cwd: ROOT });
    expect(await p.exit).toBe(2);
    expect(p.output()).toContain('RM_TAP_TLS_UNUSABLE');
    expect(p.output()).toContain(missing);
  });
});

describe('ingress-tap reload from a mounted ConfigMap', () => {
  it('applies a ConfigMap swap and reports an invalid one within the bound while a log beside it is appended every 20 ms', async () => {
    const mount = join(dir, 'configmap');
    mkdirSync(mount);
    const p = { fa: await freePort(), admin: await freePort() };
    const text = (targets: ConfigInput['targets']) =>
      JSON.stringify({ tap: { forwardAuth: { host: '127.0.0.1', port: p.fa }, mirror: { host: '127.0.0.1', port: 0 }, plugin: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: p.admin } }, targets });
    const cm = configMapDir(mount, 'request-mirror.yaml', text([target('posts', { methods: ['POST'] })]));
    const mounted = startProcess({
      name: 'ingress-tap-configmap',
      command: process.execPath,
      args: [join(ROOT, 'ingress-tap/main.ts'), '--config', cm.path],
      env: { ...process.env, NATS_URL: nats.url, LOG_LEVEL: 'info' },
      cwd: ROOT,
    });
    const log = busyNeighbour(join(mount, 'access.log'), 20);
    try {
      await waitUntil('ingress-tap /readyz', () => answers2xx(`http://127.0.0.1:${p.admin}/readyz`), { process: mounted });
      const count = (text: string) => mounted.output().split(text).length - 1;
      cm.swap(text([target('gets', { methods: ['GET'] })]));
      await waitUntil('reload', () => Promise.resolve(count('"msg":"config reloaded"') === 1), { process: mounted, timeoutMs: RELOAD_BOUND_MS, intervalMs: 10 });
      await send(`http://127.0.0.1:${p.fa}/`, { headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/after-swap', 'x-forwarded-host': 'app.example' } });
      await waitUntil('event for the swapped-in target', () => Promise.resolve(events.received.some((r) => r.event.data.path === '/after-swap')));
      cm.swap(JSON.stringify({ targets: [{ name: 'Bad Name', methods: [] }] }));
      await waitUntil('rejection', () => Promise.resolve(count('"msg":"config reload rejected') === 1), { process: mounted, timeoutMs: RELOAD_BOUND_MS, intervalMs: 10 });
      expect(count('"msg":"config reloaded"')).toBe(1);
      expect(log.appends()).toBeGreaterThan(5);
    } finally {
      log.stop();
      await mounted.stop();
    }
  });
});

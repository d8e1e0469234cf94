import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { natsConnectionOptions } from '../../contract/nats-connection.ts';
import { resolveNatsCredentials } from '../../contract/nats-credentials.ts';
import { createMetrics } from '../../dispatcher/metrics.ts';
import { watchConnection, type DisconnectCause } from '../../dispatcher/nats-status.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startHttpReceiver } from '../../tools/stack/http-receiver.ts';
import { startNatsCluster } from '../../tools/stack/nats-cluster.ts';
import { startNatsServer } from '../../tools/stack/nats-server.ts';
import { answers2xx, startProcess, waitUntil } from '../../tools/stack/process.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { capturedLogger } from '../support/captured-logger.ts';
import { natsJwtSetup } from '../support/nats-jwt.ts';
import { makeEvent, publish, PREFIX } from './harness.ts';

// A dispatcher that cannot keep up is cut off by nats-server as a slow consumer, which tells the client nothing.
// The real dispatcher process is frozen (SIGSTOP: the extreme of falling behind) while events keep coming; the
// server, with a small max_pending, flags and closes it; on SIGCONT the dispatcher must say so in its log and its
// metrics, keep its memory within its bounds, and deliver again.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface LogLine {
  level: number;
  msg: string;
  cause?: string;
  server?: string;
  err?: { code?: string; message?: string };
}

/** Watches `nc` as the dispatcher does, keeping the log lines, the problems and the up/down changes it reports. */
function watchCaptured(nc: NatsConnection, stallMs?: number) {
  const { logger, lines } = capturedLogger<LogLine>();
  const problems: (string | undefined)[] = [];
  const changes: boolean[] = [];
  const metrics = createMetrics();
  const watch = watchConnection(nc, {
    logger,
    metrics,
    onChange: (up) => changes.push(up),
    onProblem: (p) => problems.push(p),
    ...(stallMs === undefined ? {} : { stallMs }),
  });
  cleanup.add(() => {
    watch.stop();
  });
  return { lines, problems, changes, metrics };
}

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
}

/** The value of the series `name` (with its labels) in a scrape; fails when there is none, so a renamed metric fails. */
function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no series ${name} in the scrape`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** `sample`, or 0 while a counter with these labels has not been incremented yet (prom-client shows it only then). */
function counted(metrics: string, name: string): number {
  return metrics.includes(`\n${name} `) ? sample(metrics, name) : 0;
}

describe('nats connection status', () => {
  it('notices, counts and logs being cut off by nats-server as a slow consumer, then delivers again', async () => {
    const maxPending = 1024 * 1024;
    const cluster = await startNatsCluster({ size: 1, extraConfig: [`max_payload: ${maxPending / 2}`, `max_pending: ${maxPending}`, 'write_deadline: "1s"'] });
    cleanup.add(() => cluster.stop());
    const [nats] = cluster.nodes;
    if (!nats) throw new Error('one node');
    const receiver = await startHttpReceiver();
    cleanup.add(() => receiver.close());
    const dir = mkdtempSync(join(tmpdir(), 'rm-slow-'));
    cleanup.add(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const adminPort = await freePort();
    const maxQueuedBytes = 8 * 1024 * 1024;
    const configPath = join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      JSON.stringify({
        nats: { url: nats.url, subjectPrefix: PREFIX, pingIntervalMs: 250 },
        dispatcher: { admin: { host: '127.0.0.1', port: adminPort }, maxQueuedBytes, network: { allowLoopback: true } },
        targets: [{ name: 'all', watchURL: receiver.url, methods: ['*'] }],
      }),
    );
    const dispatcher = startProcess({
      name: 'dispatcher',
      command: process.execPath,
      args: [join(ROOT, 'dispatcher', 'main.ts'), '--config', configPath],
      cwd: ROOT,
    });
    cleanup.add(() => dispatcher.stop());
    const admin = `http://127.0.0.1:${adminPort}`;
    await waitUntil('dispatcher /readyz', () => answers2xx(`${admin}/readyz`), { process: dispatcher });
    const nc = await connect({ servers: nats.url });
    cleanup.add(() => nc.close());
    await publish(nc, makeEvent({ path: '/before' }));
    await receiver.waitFor(1);

    process.kill(dispatcher.pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    cleanup.add(() => {
      process.kill(dispatcher.pid, 'SIGCONT');
    });
    const body = 'x'.repeat(64 * 1024);
    let sent = 0;
    await waitUntil(
      'nats-server to flag the frozen dispatcher as a slow consumer',
      async () => {
        if ((await nats.monitor<{ slow_consumers: number }>('/varz')).slow_consumers === 0) {
          for (let i = 0; i < 16; i++) await publish(nc, makeEvent({ path: `/flood/${sent++}`, body }));
        }
        // Frozen for a second at least, a stall no garbage collection or busy moment comes near.
        return (await nats.monitor<{ slow_consumers: number }>('/varz')).slow_consumers > 0 && Date.now() - stoppedAt >= 1000;
      },
      { timeoutMs: 20_000, intervalMs: 10 },
    );
    expect(nats.output()).toMatch(/Slow Consumer Detected/);
    process.kill(dispatcher.pid, 'SIGCONT');

    await waitUntil(
      'the dispatcher to count the slow-consumer disconnect',
      async () => counted(await scrape(admin), 'request_mirror_dispatcher_nats_disconnects_total{cause="slow_consumer"}') === 1,
      { process: dispatcher, timeoutMs: 15_000 },
    );
    // The log line may reach the process's output after the metric has moved: wait for it too.
    await waitUntil(
      'the slow-consumer log line',
      () => Promise.resolve(/flagged it as a slow consumer/.test(dispatcher.output()) && /RM_NATS_CONNECTION_LOST/.test(dispatcher.output())),
      { process: dispatcher, timeoutMs: 5000 },
    );
    await waitUntil('dispatcher /readyz again', () => answers2xx(`${admin}/readyz`), { process: dispatcher });
    const metrics = await scrape(admin);
    expect(sample(metrics, 'request_mirror_dispatcher_queued_bytes')).toBeLessThanOrEqual(maxQueuedBytes);
    process.stdout.write(
      `[slow-consumer] flood events sent: ${sent} (64 KiB each), delivered: ${receiver.requests.length - 1}, ` +
        `rss after: ${Math.round(sample(metrics, 'process_resident_memory_bytes') / 1024 / 1024)} MiB\n`,
    );

    const before = receiver.requests.length;
    await publish(nc, makeEvent({ path: '/after' }));
    await waitUntil('the event published after the recovery', () =>
      Promise.resolve(receiver.requests.slice(before).some((r) => r.body.toString().includes('"/after"'))),
    );
  });
});

// The same rules in this process (where make mutate sees them), on a real connection to a real nats-server that the
// test kills, freezes or outlives by stalling this process's event loop.
describe('connection watch', () => {
  async function watched(stallMs?: number, reconnectTimeWaitMs = 50) {
    const cluster = await startNatsCluster({ size: 1 });
    cleanup.add(() => cluster.stop());
    const [node] = cluster.nodes;
    if (!node) throw new Error('one node');
    const config = Config.parse({ nats: { url: node.url, pingIntervalMs: 100, maxPingsOutstanding: 2, reconnectTimeWaitMs } });
    const nc = await connect(natsConnectionOptions(config.nats, 'status-test'));
    cleanup.add(() => nc.close());
    const { lines, changes, metrics } = watchCaptured(nc, stallMs);
    const disconnects = async () =>
      Object.fromEntries((await metrics.natsDisconnects.get()).values.map((v) => [String(v.labels.cause), v.value])) as Partial<Record<DisconnectCause, number>>;
    return { node, nc, changes, lines, disconnects };
  }

  it('names refused credentials on reconnect as the problem, counts and logs the loss and the refusal once while retrying, and clears it once reconnected', async () => {
    const port = await freePort();
    const requiring = (password: string) => ['authorization {', '  user: dispatcher', `  password: "${password}"`, '}'];
    let server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    cleanup.add(() => server.stop());
    const { nats } = Config.parse({ nats: { url: server.url, auth: { user: 'dispatcher', password: { env: 'P' } }, reconnectTimeWaitMs: 50 } });
    const nc = await connect(natsConnectionOptions(nats, 'status-test', resolveNatsCredentials(nats, { env: { P: 'pw-1' }, readFile: () => '' }).credentials));
    cleanup.add(() => nc.close());
    const { lines, problems, changes, metrics } = watchCaptured(nc);
    await server.stop();
    server = await startNatsServer({ port, extraConfig: requiring('pw-2') });
    await waitUntil('three refused reconnects', () => Promise.resolve(server.output().split('authentication error').length > 3), { timeoutMs: 20_000 });
    // nats.js reports a disconnect at each refused attempt; one connection was lost.
    expect(changes).toEqual([false]);
    expect((await metrics.natsDisconnects.get()).values.map((v) => v.value)).toEqual([1]);
    expect(lines.filter((l) => l.level === 40 && l.msg === 'NATS connection closed; reconnecting')).toHaveLength(1);
    expect(problems).toEqual(['the NATS server refused the credentials: Authorization Violation']);
    expect(lines.filter((l) => l.msg === 'cannot connect to NATS; retrying')).toEqual([expect.objectContaining({ level: 50, err: expect.objectContaining({ code: 'RM_NATS_AUTH_FAILED' }) as unknown })]);
    await server.stop();
    server = await startNatsServer({ port, extraConfig: requiring('pw-1') });
    await waitUntil('the reconnect', () => Promise.resolve(changes.length === 2), { timeoutMs: 20_000 });
    // nats.js reports a reconnect for each of the disconnects above; one connection came back.
    expect(lines.filter((l) => l.msg === 'NATS reconnected')).toHaveLength(1);
    expect(changes).toEqual([false, true]);
    expect(problems).toEqual(['the NATS server refused the credentials: Authorization Violation', undefined]);
  });

  it('counts a connection the server closes at a reload that no longer accepts its password as closed, naming the refusal once', async () => {
    // nats-server re-checks its clients at a config reload (server/reload.go, reloadAuthorization()) and closes this
    // one; nats.js reports no error for it, only the disconnect, then a refusal at every reconnect attempt.
    const dir = mkdtempSync(join(tmpdir(), 'rm-nats-auth-'));
    cleanup.add(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const users = join(dir, 'users.conf');
    const allow = (password: string) => {
      writeFileSync(users, ['authorization {', '  user: dispatcher', `  password: "${password}"`, '}'].join('\n'));
    };
    allow('pw-1');
    // startNatsServer writes its config in a directory of its own beside this one; includes are relative to it.
    const server = await startNatsServer({ extraConfig: [`include "../${basename(dir)}/users.conf"`] });
    cleanup.add(() => server.stop());
    const { nats } = Config.parse({ nats: { url: server.url, auth: { user: 'dispatcher', password: { env: 'P' } }, reconnectTimeWaitMs: 50 } });
    const nc = await connect(natsConnectionOptions(nats, 'status-test', resolveNatsCredentials(nats, { env: { P: 'pw-1' }, readFile: () => '' }).credentials));
    cleanup.add(() => nc.close());
    const { lines, problems, changes, metrics } = watchCaptured(nc);
    allow('pw-2');
    process.kill(server.pid, 'SIGHUP');
    await waitUntil('three refused reconnects', () => Promise.resolve(server.output().split('authentication error').length > 3), { timeoutMs: 20_000 });
    expect(changes).toEqual([false]);
    expect(Object.fromEntries((await metrics.natsDisconnects.get()).values.map((v) => [String(v.labels.cause), v.value]))).toEqual({ closed: 1 });
    expect(lines.filter((l) => l.level === 40).map((l) => [l.msg, l.cause])).toEqual([['NATS connection closed; reconnecting', 'closed']]);
    expect(problems).toEqual(['the NATS server refused the credentials: Authorization Violation']);
    allow('pw-1');
    process.kill(server.pid, 'SIGHUP');
    await waitUntil('the reconnect', () => Promise.resolve(changes.length === 2), { timeoutMs: 20_000 });
    expect(changes).toEqual([false, true]);
    expect(problems).toEqual(['the NATS server refused the credentials: Authorization Violation', undefined]);
  });

  it('counts a connection the server closes when its user JWT expires as closed, not stale, and names the refusal', async () => {
    // The JWT expires in 2 s (JWT times are whole seconds): the server then says 'User Authentication Expired' and
    // closes the connection. Within that second it still takes a reconnect and expires it at once, so the watch may
    // see the connection come and go a few times; from the next second on it refuses every attempt.
    const setup = natsJwtSetup('dispatcher', {}, Math.floor(Date.now() / 1000) + 2);
    const server = await startNatsServer({ extraConfig: setup.serverConfig });
    cleanup.add(() => server.stop());
    const { nats } = Config.parse({ nats: { url: server.url, auth: { credsFile: 'user.creds' }, reconnectTimeWaitMs: 50 } });
    const nc = await connect(natsConnectionOptions(nats, 'status-test', resolveNatsCredentials(nats, { env: {}, readFile: () => setup.creds }).credentials));
    cleanup.add(() => nc.close());
    const { lines, problems, changes, metrics } = watchCaptured(nc);
    await waitUntil('three refused reconnects', () => Promise.resolve(server.output().split('authentication error').length > 3), { timeoutMs: 20_000 });
    expect(changes.at(-1)).toBe(false);
    const causes = (await metrics.natsDisconnects.get()).values.filter((v) => v.value > 0).map((v) => v.labels.cause);
    expect(causes).toEqual(['closed']);
    const losses = lines.filter((l) => l.level === 40);
    expect(losses.length).toBeGreaterThan(0);
    for (const l of losses) expect([l.msg, l.cause]).toEqual(['NATS connection closed; reconnecting', 'closed']);
    expect(problems.at(-1)).toMatch(/^the NATS server refused the credentials: (User Authentication Expired|Authorization Violation)$/);
  });

  it('counts a server that went away as closed, says it is not connected, and connected again once it is back', async () => {
    const { node, changes, lines, disconnects } = await watched();
    // Up for a while first, as a connection is: time without the watch's own ticks would read as a stall here.
    await new Promise((resolve) => setTimeout(resolve, 800));
    await node.kill();
    await waitUntil('the disconnect', () => Promise.resolve(changes.length === 1));
    expect(changes).toEqual([false]);
    expect(await disconnects()).toEqual({ closed: 1 });
    expect(lines.find((l) => l.level === 40)).toMatchObject({ msg: 'NATS connection closed; reconnecting', cause: 'closed', err: { code: 'RM_NATS_CONNECTION_LOST' } });
    await node.restart();
    await waitUntil('the reconnect', () => Promise.resolve(changes.length === 2));
    expect(changes).toEqual([false, true]);
    expect(lines.find((l) => l.level === 30 && l.msg === 'NATS reconnected')?.server).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('judges the next loss afresh after nats.js reported a stale connection during an outage', async () => {
    // nats.js's ping timer runs on after a disconnect until a redial rejects its pending ping (lib/heartbeats.js):
    // with pings every 100 ms and redials 1 s apart, it reports a staleConnection while there is no connection.
    const { node, nc, changes, disconnects } = await watched(60_000, 1000);
    let staleWhileDown = false;
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'staleConnection' && changes.at(-1) === false) staleWhileDown = true;
    })();
    await node.kill();
    await waitUntil('a stale connection reported while down', () => Promise.resolve(staleWhileDown), { timeoutMs: 10_000 });
    await node.restart();
    await waitUntil('the reconnect', () => Promise.resolve(changes.at(-1) === true), { timeoutMs: 10_000 });
    await node.kill();
    await waitUntil('the second disconnect', () => Promise.resolve(changes.length === 3));
    expect(await disconnects()).toEqual({ closed: 2 });
  });

  it('counts a server that stopped answering pings as stale', async () => {
    const { node, changes, lines, disconnects } = await watched();
    node.pause();
    cleanup.add(() => {
      if (node.running()) node.resume();
    });
    await waitUntil('the stale disconnect', () => Promise.resolve(changes.includes(false)), { timeoutMs: 10_000 });
    expect(await disconnects()).toEqual({ stale: 1 });
    expect(lines.find((l) => l.level === 40)).toMatchObject({ msg: 'NATS server stopped answering pings; reconnecting to another one', cause: 'stale' });
    node.resume();
    await waitUntil('the reconnect', () => Promise.resolve(changes.at(-1) === true), { timeoutMs: 10_000 });
    // The next loss is judged afresh: the server dying now is `closed`, not stale again.
    await node.kill();
    await waitUntil('the second disconnect', () => Promise.resolve(changes.at(-1) === false));
    expect(await disconnects()).toEqual({ stale: 1, closed: 1 });
  });

  it('counts a disconnect right after this process stalled for stallMs or more as slow_consumer, naming the stall', async () => {
    const { node, changes, lines, disconnects } = await watched(200);
    const killing = node.kill();
    // The event loop does not run for 600 ms while the server goes away, as when a consumer falls behind.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
    await killing;
    await waitUntil('the disconnect', () => Promise.resolve(changes.includes(false)));
    expect(await disconnects()).toEqual({ slow_consumer: 1 });
    const line = lines.find((l) => l.level === 40);
    expect(line?.cause).toBe('slow_consumer');
    const stalled = /stalled for (\d+) ms/.exec(line?.msg ?? '');
    expect(Number(stalled?.[1])).toBeGreaterThanOrEqual(200);
    expect(line?.msg).toMatch(/most likely nats-server flagged it as a slow consumer; what the server held for it is lost$/);
  });

  it('remembers a stall past the watch ticks that follow it: a long-lived connection cut after one is slow_consumer', async () => {
    const { node, changes, disconnects } = await watched(200);
    // Up for a while first: the watch's ticks have each recorded a stall of about 0 ms by now.
    await new Promise((resolve) => setTimeout(resolve, 800));
    const killing = node.kill();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
    await killing;
    await waitUntil('the disconnect', () => Promise.resolve(changes.includes(false)));
    expect(await disconnects()).toEqual({ slow_consumer: 1 });
  });

  it('counts a disconnect after a stall shorter than stallMs as closed', async () => {
    const { node, changes, disconnects } = await watched(5000);
    const killing = node.kill();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
    await killing;
    await waitUntil('the disconnect', () => Promise.resolve(changes.includes(false)));
    expect(await disconnects()).toEqual({ closed: 1 });
  });
});

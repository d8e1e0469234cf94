import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startHttpReceiver } from '../../tools/stack/http-receiver.ts';
import { startNatsCluster } from '../../tools/stack/nats-cluster.ts';
import { answers2xx, startProcess, waitUntil } from '../../tools/stack/process.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { makeEvent, publish, PREFIX } from './harness.ts';

// A dispatcher that cannot keep up is cut off by nats-server as a slow consumer, which tells the client nothing.
// The real dispatcher process is frozen (SIGSTOP: the extreme of falling behind) while events keep coming; the
// server, with a small max_pending, flags and closes it; on SIGCONT the dispatcher must say so in its log and its
// metrics, keep its memory within its bounds, and deliver again.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
}

function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
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
      async () => sample(await scrape(admin), 'request_mirror_dispatcher_nats_disconnects_total{cause="slow_consumer"}') === 1,
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

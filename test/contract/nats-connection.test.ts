import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { Config, natsUrlProblems } from '../../contract/config.ts';
import { natsConnectionOptions } from '../../contract/nats-connection.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startNatsServer } from '../../tools/stack/nats-server.ts';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('nats connection options', () => {
  it('takes every comma-separated seed of nats.url, ignoring blanks and spaces', () => {
    const config = Config.parse({ nats: { url: ' nats://127.0.0.1:1, ,127.0.0.1:2 ,' } });
    expect(natsConnectionOptions(config.nats, 'x').servers).toEqual(['nats://127.0.0.1:1', '127.0.0.1:2']);
  });

  it('refuses a nats.url that names no server', () => {
    const parsed = Config.safeParse({ nats: { url: ' , ' } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['nats', 'url']);
  });

  it('refuses a nats.url entry the client cannot dial as host[:port], naming the entry', () => {
    for (const url of ['http//nats:4222', 'nats://nats:99999', 'a b', 'nats://127.0.0.1:1,nats://x:4222/path', 'nats://x?y=1']) {
      const parsed = Config.safeParse({ nats: { url } });
      expect(parsed.success, url).toBe(false);
      expect(parsed.error?.issues[0]?.path).toEqual(['nats', 'url']);
      expect(parsed.error?.issues[0]?.message).toMatch(/is not a server address: write \[nats:\/\/\]host\[:port\]/);
    }
    expect(natsUrlProblems('http//nats:4222')[0]).toContain('"http//nats:4222"');
    for (const url of ['nats://nats:4222', '127.0.0.1:2', 'nats', 'tls://nats:4222/', 'nats://u:p@nats:4222', 'nats://[::1]:4222']) {
      expect(Config.safeParse({ nats: { url } }).success, url).toBe(true);
    }
  });

  it('keeps the servers a cluster announces (cluster updates on) and carries the ping and reconnect settings', () => {
    const config = Config.parse({ nats: { pingIntervalMs: 300, maxPingsOutstanding: 3, reconnectTimeWaitMs: 50 } });
    const options = natsConnectionOptions(config.nats, 'x');
    expect(options.ignoreClusterUpdates).toBeUndefined();
    expect(options).toMatchObject({ pingInterval: 300, maxPingOut: 3, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  });

  it('connects through the next seed when the first one is down', async () => {
    const dead = await freePort();
    const nats = await startNatsServer();
    cleanup.add(() => nats.stop());
    const config = Config.parse({ nats: { url: `nats://127.0.0.1:${dead},${nats.url}` } });
    const nc = await connect(natsConnectionOptions(config.nats, 'seed-test'));
    cleanup.add(() => nc.close());
    expect(nc.getServer()).toBe(`127.0.0.1:${nats.port}`);
  });

  it('waits for a server that is not up yet at start-up instead of failing the first connect', async () => {
    const port = await freePort();
    const config = Config.parse({ nats: { url: `nats://127.0.0.1:${port}`, reconnectTimeWaitMs: 50 } });
    // Settled into a value at once, so a rejection before the server starts is reported by the assertion below.
    const connecting = connect(natsConnectionOptions(config.nats, 'late-server')).then(
      (nc) => ({ nc, error: undefined }),
      (error: unknown) => ({ nc: undefined, error }),
    );
    const nats = await startNatsServer({ port });
    cleanup.add(() => nats.stop());
    const { nc, error } = await connecting;
    if (nc) cleanup.add(() => nc.close());
    expect(error).toBeUndefined();
    expect(nc?.getServer()).toBe(`127.0.0.1:${port}`);
  });
});

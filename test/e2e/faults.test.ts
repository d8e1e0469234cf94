import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../tools/stack/free-port.ts';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { waitUntil } from '../../tools/stack/process.ts';
import { eventsOf } from '../../tools/stack/stack.ts';
import { receiverOf, useStack } from './fixture.ts';
import { attachmentRoutes, KiB } from './routes.ts';

// Whatever breaks behind the tap, the user's request is served. Only the tap itself being down shows: forwardAuth
// has no fail-open, so Traefik answers 500 (pkg/middlewares/auth/forward.go: a failed auth call is a 500), while
// Mirroring calls the tap after the upstream answered and drops the mirror's outcome.

const SLOW_MS = 3000;
const held = new Set<Socket>();
// Accepts connections and never answers: a webhook behind a dead load balancer.
const blackhole: Server = createServer((socket) => {
  held.add(socket);
  socket.on('close', () => held.delete(socket));
});

const s = useStack(async () => {
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  const holePort = (blackhole.address() as { port: number }).port;
  const refusedPort = await freePort();
  return {
    receivers: ['ok', 'slow'],
    targets: (r) => {
      const fast = { timeoutMs: 500, headersTimeoutMs: 500, connectTimeoutMs: 500, retry: { maxAttempts: 1 }, methods: ['*'] };
      return [
        { name: 'ok', watchURL: `${r.ok?.url ?? ''}/events`, methods: ['*'] },
        { ...fast, name: 'slow', watchURL: `${r.slow?.url ?? ''}/events` },
        { ...fast, name: 'refusing', watchURL: `http://127.0.0.1:${refusedPort}/events` },
        { ...fast, name: 'blackholed', watchURL: `http://127.0.0.1:${holePort}/events` },
      ];
    },
    traefik: (b) => attachmentRoutes(b, { maxBodySize: 64 * KiB }),
  };
});
beforeAll(() => {
  receiverOf(s(), 'slow').respond = (_req, res) => {
    setTimeout(() => res.writeHead(204).end(), SLOW_MS).unref();
  };
});
// Registered after useStack's, so it runs before the stack closes (vitest runs after-hooks in reverse order).
afterAll(async () => {
  for (const socket of held) socket.destroy();
  await new Promise((resolve) => blackhole.close(resolve));
});

const ok = (): HttpReceiver => receiverOf(s(), 'ok');

let n = 0;
/** One request through each attachment; both must be served by the upstream. */
async function sendBoth(tag: string): Promise<string[]> {
  const paths = [`/meta/${tag}-${n}`, `/mirror/${tag}-${n}`];
  n++;
  for (const path of paths) {
    const res = await s().send(path, { method: 'POST', body: `{"tag":"${tag}"}`, headers: { 'content-type': 'application/json' } });
    expect(res.status, path).toBe(201);
  }
  return paths;
}

/** Sends fresh requests until one of them reaches the healthy webhook: the pipeline is whole again. */
async function untilDeliveredAgain(tag: string): Promise<void> {
  await waitUntil(
    `an event for a new "${tag}" request at the healthy webhook`,
    async () => {
      const paths = await sendBoth(tag);
      await new Promise((r) => setTimeout(r, 200));
      return eventsOf(ok().requests).some((e) => paths.includes(e.data.path));
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

describe('faults', () => {
  it('serves every request while webhooks are slow, refusing and blackholed, and still feeds the healthy one', async () => {
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) sent.push(...(await sendBoth('sick-webhooks')));
    await waitUntil('every event at the healthy webhook', () =>
      Promise.resolve(sent.every((p) => eventsOf(ok().requests).some((e) => e.data.path === p))),
    );
  });

  it('serves every request while NATS is down, and mirrors again once it is back', async () => {
    await s().nats.stop();
    for (let i = 0; i < 10; i++) await sendBoth('nats-down');
    await s().restartNats();
    await untilDeliveredAgain('nats-back');
  });

  it('serves every request while the dispatcher is dead, and mirrors again once one is back', async () => {
    await s().dispatcher.kill();
    for (let i = 0; i < 10; i++) await sendBoth('dispatcher-dead');
    await s().startDispatcher();
    await untilDeliveredAgain('dispatcher-back');
  });

  it('with the tap down, forwardAuth answers 500 while Mirroring still serves; both recover when it is back', async () => {
    await s().tap.stop();
    const fa = await s().send('/meta/tap-down', { headers: { 'x-probe': '1' } });
    expect(fa.status).toBe(500);
    expect(s().upstream.requests.some((r) => r.url === '/meta/tap-down')).toBe(false);
    const mirrored = await s().send('/mirror/tap-down', { method: 'POST', body: 'still served' });
    expect(mirrored.status).toBe(201);
    expect(s().upstream.requests.find((r) => r.url === '/mirror/tap-down')?.body.toString()).toBe('still served');

    await s().startTap();
    expect((await s().send('/meta/tap-back')).status).toBe(201);
    await untilDeliveredAgain('tap-back');
  });
});

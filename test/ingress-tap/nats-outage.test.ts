import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../tools/stack/free-port.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { collectEvents, eventually, send, startTap, target, type EventCollector, type TapHarness } from './tap-harness.ts';

// NATS going away must never reach Traefik: the tap keeps answering 200, drops and counts, says so on /readyz, and
// publishes again once NATS is back.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function readyz(tap: TapHarness): Promise<number> {
  return (await send(`${tap.adminUrl}/readyz`)).status;
}

async function collect(url: string): Promise<EventCollector> {
  const c = await collectEvents(url, 'request-mirror');
  cleanups.push(() => c.close());
  return c;
}

const dropped = (tap: TapHarness) => tap.metric('request_mirror_tap_events_dropped_total', { reason: 'nats_disconnected' });

describe('NATS outage', () => {
  it('serves while NATS is down at start, drops and counts, then publishes once NATS comes up', async () => {
    const port = await freePort();
    const tap = await startTap({ natsUrl: `nats://127.0.0.1:${port}`, subscribe: false, config: { targets: [target('all')] } });
    cleanups.push(() => tap.close());
    expect(await readyz(tap)).toBe(503);
    const answers = await Promise.all([1, 2].map((i) => send(`${tap.forwardAuthUrl}/`, { headers: { 'x-forwarded-uri': `/down-${i}` } })));
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    await eventually('two drops', async () => (await dropped(tap)) === 2);

    const nats = await startNatsServer({ port });
    cleanups.push(() => nats.stop());
    await eventually('/readyz 200', async () => (await readyz(tap)) === 200);
    const events = await collect(nats.url);
    await send(`${tap.forwardAuthUrl}/`, { headers: { 'x-forwarded-uri': '/up' } });
    const [received] = await events.waitForEvents(1);
    expect(received?.event.data.path).toBe('/up');
    await eventually('the event counted as published', async () => (await tap.metric('request_mirror_tap_events_published_total')) === 1);
  });

  it('keeps answering through a NATS restart and resumes publishing on the same port', async () => {
    let nats: NatsServer = await startNatsServer();
    const port = nats.port;
    cleanups.push(() => nats.stop());
    const tap = await startTap({ natsUrl: nats.url, subscribe: false, config: { targets: [target('all')] } });
    cleanups.push(() => tap.close());
    await eventually('/readyz 200', async () => (await readyz(tap)) === 200);

    await nats.stop();
    await eventually('/readyz 503', async () => (await readyz(tap)) === 503);
    const answers = await Promise.all([1, 2, 3].map((i) => send(`${tap.mirrorUrl}/outage-${i}`)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    await eventually('three drops', async () => (await dropped(tap)) === 3);

    nats = await startNatsServer({ port });
    await eventually('/readyz 200 again', async () => (await readyz(tap)) === 200);
    const events = await collect(nats.url);
    const res = await send(`${tap.mirrorUrl}/back`);
    const [received] = await events.waitForEvents(1);
    expect(received?.event.data.path).toBe('/back');
    expect(res.headers['x-request-mirror-id']).toBe(received?.event.id);
  });
});

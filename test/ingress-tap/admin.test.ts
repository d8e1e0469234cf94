import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../tools/stack/free-port.ts';
import { send, startTap, target, useTap, type TapHarness } from './tap-harness.ts';

// The operator's listener, in-process: liveness, readiness with its reason and extra detail lines, and the
// Prometheus exposition. Its probes are what Kubernetes reads; the wording is what an operator reads.

let detail: readonly string[] = [];
const { tap } = useTap({ config: { targets: [target('all')] }, deps: { readinessDetail: () => detail } });

const others: TapHarness[] = [];
afterEach(async () => {
  detail = [];
  for (const t of others.splice(0)) await t.close();
});

describe('admin listener', () => {
  it('answers /healthz with ok as plain text', async () => {
    const res = await send(`${tap.adminUrl}/healthz`);
    expect(res).toMatchObject({ status: 200, body: 'ok\n' });
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
  });

  it('answers /readyz 200 while NATS is connected, with any detail lines below, which do not change readiness', async () => {
    const ready = await send(`${tap.adminUrl}/readyz`);
    expect(ready).toMatchObject({ status: 200, body: 'ready\n' });
    expect(ready.headers['content-type']).toMatch(/^text\/plain/);
    detail = ['kubernetes watch: broken (targets as last seen)'];
    expect(await send(`${tap.adminUrl}/readyz`)).toMatchObject({ status: 200, body: 'ready\nkubernetes watch: broken (targets as last seen)\n' });
  });

  it('answers /readyz 503 naming the missing NATS connection while there is none', async () => {
    const down = await startTap({ natsUrl: `nats://127.0.0.1:${await freePort()}`, subscribe: false, config: { targets: [target('all')] } });
    others.push(down);
    expect(await send(`${down.adminUrl}/readyz`)).toMatchObject({ status: 503, body: 'not ready: no NATS connection\n' });
  });

  it('serves the tap metrics in the Prometheus text format on /metrics', async () => {
    await send(`${tap.mirrorUrl}/counted`);
    await tap.waitForEvents(1);
    const res = await send(`${tap.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(tap.metrics.registry.contentType);
    expect(res.body).toMatch(/^request_mirror_tap_requests_received_total\{attachment="mirror"\} [1-9]/m);
  });
});

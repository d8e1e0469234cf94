import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../tools/stack/stack.ts';
import { reportOnFailure } from './report.ts';
import { attachmentRoutes, KiB } from './routes.ts';

// Traefik's forwardAuth client keeps 2 idle connections per host and closes the rest after each call, so under
// concurrency it dials, reuses and drops tap connections constantly. A tap that closed a connection Traefik was
// about to reuse would surface as a 5xx to the user.

const REQUESTS = 2000;
const CONCURRENCY = 32;

let stack: Stack | undefined;
beforeAll(async () => {
  stack = await startStack({
    receivers: ['hook'],
    targets: (r) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['POST'] }],
    traefik: (b) => attachmentRoutes(b, { maxBodySize: 64 * KiB }),
  });
});
afterAll(async () => {
  await stack?.close();
});
reportOnFailure(() => stack);

describe('keep-alive', () => {
  it(`serves ${REQUESTS} requests through forwardAuth at concurrency ${CONCURRENCY} without a single 5xx`, { timeout: 180_000 }, async () => {
    const s = stack;
    if (!s) throw new Error('stack did not start');
    const statuses = new Map<number | string, number>();
    let next = 0;
    const worker = async () => {
      while (next < REQUESTS) {
        const i = next++;
        const status = await s
          .send(`/meta/load/${i}`, { method: i % 4 === 0 ? 'POST' : 'GET', ...(i % 4 === 0 ? { body: `{"i":${i}}` } : {}) })
          .then((r) => r.status, (e: unknown) => `error: ${(e as Error).message}`);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(Object.fromEntries(statuses)).toEqual({ 201: REQUESTS });
    const fiveXX = s.traefik?.accessLog().filter((e) => (e.DownstreamStatus ?? 0) >= 500) ?? [];
    expect(fiveXX).toEqual([]);
  });
});

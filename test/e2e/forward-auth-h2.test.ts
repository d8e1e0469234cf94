import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ListenerTls } from '../../contract/config.ts';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import { startStack, waitForEvent, type Stack } from '../../tools/stack/stack.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';
import { reportOnFailure } from './report.ts';

// docs/examples/traefik/forward-auth-h2.yml and request-mirror-tls.yaml in a real Traefik and a real tap: the
// forwardAuth call goes over HTTP/2 on one connection, where the plain HTTP/1.1 snippet makes Traefik dial a new
// connection for most calls under concurrency (its client keeps only 2 idle connections per host).

const CONCURRENCY = 200;
const ROUNDS = 3;

let cert: TestCertificate;
let h2: Stack | undefined;
let h1: Stack | undefined;

function tlsFromExample(c: TestCertificate): ListenerTls {
  const text = readExample('request-mirror-tls.yaml')
    .replace('/etc/request-mirror/tls/tls.crt', c.certFile)
    .replace('/etc/request-mirror/tls/tls.key', c.keyFile);
  return ListenerTls.parse((parse(text) as { tap: { forwardAuth: { tls: unknown } } }).tap.forwardAuth.tls);
}

beforeAll(async () => {
  cert = makeCertificate(['DNS:ingress-tap']);
  const common = {
    receivers: ['hook'],
    targets: (r: Stack['receivers']) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], cookieNames: ['session'] }],
  };
  h2 = await startStack({
    ...common,
    tapForwardAuthTls: tlsFromExample(cert),
    traefik: (b) => ({
      files: { 'forward-auth-h2.yml': localizeExample(readExample('traefik/forward-auth-h2.yml'), b).replace('/etc/traefik/request-mirror/ca.pem', cert.certFile) },
      routers: ['app'],
    }),
  });
  h1 = await startStack({ ...common, traefik: (b) => ({ files: { 'forward-auth.yml': localizeExample(readExample('traefik/forward-auth.yml'), b) }, routers: ['app'] }) });
}, 120_000);
afterAll(async () => {
  await h2?.close();
  await h1?.close();
  cert.remove();
});
reportOnFailure(() => h2);
reportOnFailure(() => h1);

function started(stack: Stack | undefined): Stack {
  if (!stack) throw new Error('stack did not start');
  return stack;
}

/** The tap's `request_mirror_tap_connections_total` by protocol, for the forwardAuth listener. */
async function connections(stack: Stack): Promise<Record<string, number>> {
  const text = await (await fetch(`${stack.tapAdminUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^request_mirror_tap_connections_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = new Map([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1] ?? '', l[2] ?? '']));
    if (labels.get('listener') === 'forwardAuth') out[labels.get('protocol') ?? ''] = Number(m[2]);
  }
  return out;
}

/** ROUNDS bursts of CONCURRENCY requests through Traefik, all at once; returns the statuses seen. */
async function bursts(stack: Stack, tag: string): Promise<Record<string, number>> {
  const traefik = stack.traefik;
  if (!traefik) throw new Error('no Traefik');
  const agent = new Agent({ connections: CONCURRENCY });
  const statuses: Record<string, number> = {};
  try {
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async (_, i) => {
          const res = await request(`${traefik.url}/${tag}/${round}/${i}`, { dispatcher: agent, headers: { host: 'app.localhost' } });
          await res.body.dump();
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        }),
      );
    }
  } finally {
    await agent.close();
  }
  return statuses;
}

describe('forwardAuth over HTTP/2 (forward-auth-h2.yml)', () => {
  it('mirrors a request with the same event as over HTTP/1.1 and hands the event id to the upstream', async () => {
    const s = started(h2);
    // Go's HTTP/2 client sends each cookie pair as a field of its own (RFC 9113 section 8.2.3); the tap must join
    // them again, so the cookie the target wants comes second.
    const res = await s.send('/h2-doc?q=1', { headers: { host: 'app.localhost', cookie: 'theme=dark; session=h2' } });
    expect(res.status).toBe(201);
    const hook = s.receivers.hook;
    if (!hook) throw new Error('no receiver');
    const event = await waitForEvent(hook, (e) => e.data.path === '/h2-doc');
    expect(s.upstream.requests.find((r) => r.url === '/h2-doc?q=1')?.headers['x-request-mirror-id']).toBe(event.id);
    expect(event.data).toMatchObject({ attachment: 'forwardAuth', method: 'GET', host: 'app.localhost', query: 'q=1', cookies: { session: 'h2' } });
    expect(Object.keys(event.data.headers).filter((h) => h.startsWith(':'))).toEqual([]);

    const plain = started(h1);
    expect((await plain.send('/h2-doc?q=1', { headers: { host: 'app.localhost', cookie: 'theme=dark; session=h2' } })).status).toBe(201);
    const plainHook = plain.receivers.hook;
    if (!plainHook) throw new Error('no receiver');
    const overH1 = await waitForEvent(plainHook, (e) => e.data.path === '/h2-doc');
    // Only the address Traefik reports differs: its own client IP is the same loopback one.
    expect(event.data).toEqual(overH1.data);
    // Traefik dialled the tap over HTTP/2 and never fell back to HTTP/1.1.
    expect(await connections(s)).toMatchObject({ h2: expect.any(Number) as unknown });
    expect((await connections(s))['http/1.1']).toBeUndefined();
  });

  it(`keeps to its connection under ${CONCURRENCY} concurrent requests, where HTTP/1.1 dials new ones`, { timeout: 240_000 }, async () => {
    const overH2 = started(h2);
    const overH1 = started(h1);
    // Warm both: the first calls may race to dial before Traefik knows the tap speaks HTTP/2.
    expect((await overH2.send('/warm', { headers: { host: 'app.localhost' } })).status).toBe(201);
    expect((await overH1.send('/warm', { headers: { host: 'app.localhost' } })).status).toBe(201);
    const h2Before = await connections(overH2);
    const h1Before = await connections(overH1);
    expect(await bursts(overH2, 'burst-h2')).toEqual({ 201: CONCURRENCY * ROUNDS });
    expect(await bursts(overH1, 'burst-h1')).toEqual({ 201: CONCURRENCY * ROUNDS });
    const h2Dialled = ((await connections(overH2)).h2 ?? 0) - (h2Before.h2 ?? 0);
    const h1Dialled = ((await connections(overH1))['http/1.1'] ?? 0) - (h1Before['http/1.1'] ?? 0);
    console.log(`tap connections during ${ROUNDS}x${CONCURRENCY} requests: h2 ${h2Dialled}, http/1.1 ${h1Dialled}`);
    expect(h2Dialled).toBeLessThanOrEqual(1);
    expect((await connections(overH2))['http/1.1']).toBeUndefined();
    expect(h1Dialled).toBeGreaterThan(20);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MirrorEvent } from '../../contract/event.ts';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import { waitUntil } from '../../tools/stack/process.ts';
import type { Backends } from '../../tools/stack/stack.ts';
import { useStack } from './fixture.ts';
import { sendHead } from './raw-http.ts';

// docs/event-format.md's example event, and its claims about what Traefik hands the tap, come from real Traefik:
// the documented forwardAuth snippet with forwardBody (docs/examples/traefik/forward-auth-body.yml) and the
// Mirroring snippet (router hosts shop.example.com and shop.localhost), behind a load balancer Traefik trusts (the test client, on 127.0.0.1). The event is taken off
// NATS as the tap published it; only `id`, `time` and `source`, which differ on every run, are set to the values
// the page shows.

const DOC = join(import.meta.dirname, '../../docs/event-format.md');
const SHOWN = { id: '01JHGZ7Q2K8M4N6P9R3S5T7V9X', time: '2026-01-15T09:30:00.123Z', source: '/request-mirror/ingress-tap/ingress-tap-7d9f8b6c5-x2x4z' };

function routes(b: Backends) {
  // The documented snippet, its router's host set to the example's.
  const body = localizeExample(readExample('traefik/forward-auth-body.yml'), b).replace('Host(`api.localhost`)', 'Host(`shop.example.com`)');
  const mirroring = localizeExample(readExample('traefik/mirroring.yml'), b);
  const routers = [...`${body}\n${mirroring}`.matchAll(/^ {4}(\w[\w-]*):\n {6}rule:/gm)].map((m) => m[1] ?? '');
  return { files: { 'forward-auth-body.yml': body, 'mirroring.yml': mirroring }, routers };
}

const s = useStack({
  targets: () => [
    { name: 'fraud-engine', watchURL: 'http://127.0.0.1:9/fraud', methods: ['POST'], hosts: ['shop.example.com', 'shop.localhost'], pathPrefixes: ['/checkout'], cookieNames: ['session'] },
    { name: 'audit-log', watchURL: 'http://127.0.0.1:9/audit', methods: ['*'], maxBodyBytes: 0 },
  ],
  traefik: routes,
  traefikArgs: ['--entryPoints.web.forwardedHeaders.trustedIPs=127.0.0.1/32'],
});

let nc: NatsConnection;
let sub: Subscription;
const published: { subject: string; event: MirrorEvent }[] = [];
beforeAll(async () => {
  nc = await connect({ servers: s().nats.url });
  sub = nc.subscribe('request-mirror.requests.>');
  void (async () => {
    for await (const m of sub) published.push({ subject: m.subject, event: m.json<MirrorEvent>() });
  })();
  await nc.flush();
});
afterAll(async () => {
  await nc.drain();
});

async function publishedFor(path: string): Promise<{ subject: string; event: MirrorEvent }> {
  await waitUntil(`the event of ${path} on NATS`, () => Promise.resolve(published.some((p) => p.event.data.path === path)));
  const found = published.find((p) => p.event.data.path === path);
  if (!found) throw new Error('unreachable');
  return found;
}

const BODY = '{"items":[{"sku":"A-100","qty":2}],"t":1}';

/** The checkout POST as a TLS-terminating load balancer in front of Traefik forwards it. */
function checkout(host: string): string {
  return [
    `POST /checkout/confirm?cart=8812&coupon=SPRING HTTP/1.1`,
    `Host: ${host}`,
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
    `Content-Length: ${Buffer.byteLength(BODY)}`,
    'Accept: application/json',
    'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig',
    'Content-Type: application/json',
    'Cookie: session=3f9a1c; _ga=GA1.2.123; theme=dark',
    'Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    'X-Forwarded-For: 203.0.113.42',
    'X-Forwarded-Proto: https',
    'X-Forwarded-Port: 443',
    'X-Request-Id: 7c1e5d2a-9b0f-4e8c-a3d6-2f4b8e1c9a70',
    'X-Custom: first',
    'X-Custom: second',
    'Connection: close',
    '',
    BODY,
  ].join('\r\n');
}

describe('docs/event-format.md', () => {
  it('shows exactly the event the tap publishes for its example request through Traefik', async () => {
    expect(await sendHead(s(), checkout('shop.example.com'))).toBe(201);
    const { subject, event } = await publishedFor('/checkout/confirm');
    const shown = `${JSON.stringify({ ...event, ...SHOWN }, null, 2)}\n`;
    const doc = readFileSync(DOC, 'utf8');
    const example = /<!-- example-event -->\n```json\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example, `docs/event-format.md must hold this event after <!-- example-event -->:\n${shown}`).toBe(shown);
    expect(doc).toContain(`Subject: \`${subject}\``);
  });

  // The page's "headers" row: what the tap cannot undo of Traefik's forwardAuth call, and how Mirroring differs.
  it('sees accept-encoding: gzip added by Traefik through both attachments, and no content-length through forwardAuth', async () => {
    published.length = 0;
    const plain = (host: string, path: string) => `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`;
    expect(await sendHead(s(), plain('shop.example.com', '/checkout/fa'))).toBe(201);
    expect(await sendHead(s(), plain('shop.localhost', '/checkout/mirror'))).toBe(201);
    const forwardAuth = (await publishedFor('/checkout/fa')).event.data;
    const mirror = (await publishedFor('/checkout/mirror')).event.data;
    expect([forwardAuth.attachment, mirror.attachment]).toEqual(['forwardAuth', 'mirror']);
    expect(forwardAuth.headers['accept-encoding']).toEqual(['gzip']);
    expect(mirror.headers['accept-encoding']).toEqual(['gzip']);
    expect(forwardAuth.headers['content-length']).toBeUndefined();
    expect(forwardAuth.body).toMatchObject({ declaredLength: null, capturedBytes: 5 });
    expect(mirror.headers['content-length']).toEqual(['5']);
    expect(mirror.body).toMatchObject({ declaredLength: 5, capturedBytes: 5 });
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rawExchange, statusCodes, target, useTap } from './tap-harness.ts';

// docs/event-format.md shows a real event: this test produces it from a representative forwardAuth request, with
// the id and clock injected, and fails when the document and the tap disagree.

const DOC = join(import.meta.dirname, '../../docs/event-format.md');

const { tap } = useTap({
  config: {
    targets: [
      target('fraud-engine', { methods: ['POST'], hosts: ['shop.example.com'], pathPrefixes: ['/checkout'], cookieNames: ['session'] }),
      target('audit-log', { methods: ['*'], maxBodyBytes: 0 }),
    ],
  },
  deps: {
    newId: () => '01JHGZ7Q2K8M4N6P9R3S5T7V9X',
    now: () => Date.parse('2026-01-15T09:30:00.123Z'),
    source: '/request-mirror/ingress-tap/ingress-tap-7d9f8b6c5-x2x4z',
  },
  checkEachTest: false,
});

const BODY = '{"items":[{"sku":"A-100","qty":2}],"t":1}';

/** The request Traefik's forwardAuth (trustForwardHeader: false, forwardBody: true) sends for a checkout POST. */
const REQUEST = [
  'GET /auth HTTP/1.1',
  'Host: ingress-tap.request-mirror.svc:8080',
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0',
  `Content-Length: ${Buffer.byteLength(BODY)}`,
  'Accept: application/json',
  'Accept-Encoding: gzip',
  'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig',
  'Content-Type: application/json',
  'Cookie: session=3f9a1c; _ga=GA1.2.123; theme=dark',
  'Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  'X-Forwarded-For: 203.0.113.42',
  'X-Forwarded-Host: shop.example.com',
  'X-Forwarded-Method: POST',
  'X-Forwarded-Port: 443',
  'X-Forwarded-Proto: https',
  'X-Forwarded-Uri: /checkout/confirm?cart=8812&coupon=SPRING',
  'X-Request-Id: 7c1e5d2a-9b0f-4e8c-a3d6-2f4b8e1c9a70',
  'X-Custom: first',
  'X-Custom: second',
  'Connection: close',
  '',
  BODY,
].join('\r\n');

describe('docs/event-format.md', () => {
  it('shows exactly the event the tap publishes for its example request', async () => {
    expect(statusCodes(await rawExchange(tap.forwardAuthPort, REQUEST))).toEqual([200]);
    const [received] = await tap.waitForEvents(1);
    const published = `${JSON.stringify(received?.event, null, 2)}\n`;
    const doc = readFileSync(DOC, 'utf8');
    const example = /<!-- example-event -->\n```json\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example, `docs/event-format.md must hold this event after <!-- example-event -->:\n${published}`).toBe(published);
    expect(doc).toContain(`Subject: \`${received?.subject ?? ''}\``);
  });
});

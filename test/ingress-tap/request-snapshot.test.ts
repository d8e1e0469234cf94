import { decodeTime } from 'ulid';
import { describe, expect, it } from 'vitest';
import { rawExchange, send, statusCodes, target, useTap, type Received } from './tap-harness.ts';

const { tap } = useTap({ config: { targets: [target('audit', { cookieNames: ['session'] })] } });

// Unit tests of the tap's own parsing: the requests below are written by hand in the shape of a forwardAuth call
// (X-Forwarded-Method, -Proto, -Host, -Uri, -For and the client's headers). What real Traefik sends, and the events
// made from it, are pinned through Traefik itself in test/e2e/attachments.test.ts, event-content.test.ts,
// host-spellings.test.ts and client-ip.test.ts.
function forwardAuthHeaders(extra: Record<string, string | string[]> = {}): Record<string, string | string[]> {
  return {
    'x-forwarded-method': 'POST',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'Shop.Example.com:443',
    'x-forwarded-uri': '/cart/items%20list?id=7&x=%2F',
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-port': '443',
    'user-agent': 'curl/8.5.0',
    ...extra,
  };
}

describe("request snapshot (unit: the tap's own parsing)", () => {
  it('rebuilds the original request from the forwardAuth X-Forwarded headers', async () => {
    const res = await send(`${tap.forwardAuthUrl}/auth`, { headers: forwardAuthHeaders(), body: 'qty=2' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('');
    const [received] = await tap.waitForEvents(1);
    const { event, subject } = received as Received;
    expect(subject).toBe('request-mirror.requests.POST');
    expect(event.data).toMatchObject({
      attachment: 'forwardAuth',
      method: 'POST',
      scheme: 'https',
      host: 'shop.example.com',
      path: '/cart/items%20list',
      query: 'id=7&x=%2F',
      clientIp: '203.0.113.9',
    });
    expect(event.subject).toBe('shop.example.com/cart/items%20list');
    expect(event.source).toBe('/request-mirror/ingress-tap/test');
    expect(event.data.body?.data).toBe('qty=2');
  });

  it("carries the client's Host header through forwardAuth, not the tap's address Traefik dialled", async () => {
    await send(`${tap.forwardAuthUrl}/auth`, { headers: forwardAuthHeaders() });
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.headers.host).toEqual(['Shop.Example.com:443']);
  });

  it('answers with the event id in X-Request-Mirror-Id, an empty body and a keep-alive above Traefik\'s 90 s', async () => {
    const res = await send(`${tap.forwardAuthUrl}/auth`, { headers: forwardAuthHeaders() });
    expect(res.headers['content-length']).toBe('0');
    expect(res.headers['keep-alive']).toBe('timeout=95');
    expect(res.headers['set-cookie']).toBeUndefined();
    const [received] = await tap.waitForEvents(1);
    expect(res.headers['x-request-mirror-id']).toBe(received?.event.id);
    expect(received?.event.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it('leaves X-Forwarded and hop-by-hop headers out and keeps every value of a repeated header in order', async () => {
    // Raw, because HTTP clients manage Connection themselves.
    const raw = await rawExchange(
      tap.forwardAuthPort,
      [
        'GET /auth HTTP/1.1',
        'Host: tap.internal',
        'X-Forwarded-Method: GET',
        'X-Forwarded-Host: a.example',
        'X-Forwarded-Uri: /',
        'Accept: text/html',
        'X-Tag: one',
        'x-tag: two',
        'X-TAG: three',
        'Connection: close, X-Drop',
        'X-Drop: gone',
        'Keep-Alive: timeout=5',
        '',
        '',
      ].join('\r\n'),
    );
    expect(statusCodes(raw)).toEqual([200]);
    const [received] = await tap.waitForEvents(1);
    const headers = received?.event.data.headers ?? {};
    expect(headers['x-tag']).toEqual(['one', 'two', 'three']);
    expect(headers.accept).toEqual(['text/html']);
    expect(Object.keys(headers).filter((h) => h.startsWith('x-forwarded-'))).toEqual([]);
    expect(headers.connection).toBeUndefined();
    expect(headers['x-drop']).toBeUndefined();
    expect(headers['keep-alive']).toBeUndefined();
    expect(headers.host).toEqual(['a.example']);
  });

  it('drops any port from the host, as Traefik\'s Host matcher does', async () => {
    await send(`${tap.forwardAuthUrl}/auth`, { headers: { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'a.example:8080', 'x-forwarded-uri': '/p' } });
    await send(`${tap.forwardAuthUrl}/auth`, { headers: { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'b.example:80', 'x-forwarded-uri': '/p' } });
    const events = await tap.waitForEvents(2);
    expect(events.map((e) => e.event.data.host)).toEqual(['a.example', 'b.example']);
  });

  it('takes the request a mirror listener receives as the original', async () => {
    const res = await send(`${tap.mirrorUrl}/api/orders?page=2`, {
      method: 'PUT',
      headers: { host: 'api.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.4, 10.0.0.1', 'content-type': 'application/json' },
      body: '{"id":1}',
    });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.subject).toBe('request-mirror.requests.PUT');
    expect(received?.event.data).toMatchObject({
      attachment: 'mirror',
      method: 'PUT',
      scheme: 'https',
      host: 'api.example.com',
      path: '/api/orders',
      query: 'page=2',
      clientIp: '198.51.100.4',
    });
    expect(received?.event.data.headers['content-type']).toEqual(['application/json']);
    expect(received?.event.data.body).toMatchObject({ encoding: 'utf8', data: '{"id":1}', declaredLength: 8, receivedBytes: 8, truncated: false });
    expect(res.headers['x-request-mirror-id']).toBe(received?.event.id);
  });

  it('takes the tap request itself where a forwarded value is missing or empty', async () => {
    await send(`${tap.forwardAuthUrl}/auth?k=v`, { method: 'PUT', headers: { 'x-forwarded-method': '', 'x-forwarded-host': '' } });
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data).toMatchObject({ method: 'PUT', path: '/auth', query: 'k=v', host: '127.0.0.1' });
  });

  it.each([
    [' HTTPS ', 'https'],
    ['wss', 'https'],
    ['WS', 'http'],
    ['http', 'http'],
    ['gopher', 'http'],
  ])('reads X-Forwarded-Proto %j as the scheme %s', async (proto, scheme) => {
    await send(`${tap.forwardAuthUrl}/auth`, { headers: { 'x-forwarded-proto': proto, 'x-forwarded-uri': '/s' } });
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.scheme).toBe(scheme);
  });

  it('ignores the forwardAuth-only X-Forwarded-Method, -Host and -Uri on the mirror listener', async () => {
    await send(`${tap.mirrorUrl}/real?q=1`, { method: 'DELETE', headers: { host: 'real.example', 'x-forwarded-method': 'POST', 'x-forwarded-host': 'fake.example', 'x-forwarded-uri': '/fake?f=1' } });
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data).toMatchObject({ method: 'DELETE', host: 'real.example', path: '/real', query: 'q=1' });
  });

  it('takes the first X-Forwarded-For entry, trimmed, and the peer address when that entry is empty', async () => {
    await send(`${tap.mirrorUrl}/xff-1`, { headers: { 'x-forwarded-for': ' 198.51.100.7 ,10.0.0.1' } });
    await send(`${tap.mirrorUrl}/xff-2`, { headers: { 'x-forwarded-for': ' , 10.0.0.1' } });
    const events = await tap.waitForEvents(2);
    expect(events.map((e) => e.event.data.clientIp)).toEqual(['198.51.100.7', '127.0.0.1']);
  });

  it('falls back to the peer address when there is no X-Forwarded-For', async () => {
    await send(`${tap.mirrorUrl}/x`);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.clientIp).toBe('127.0.0.1');
    expect(received?.event.data.scheme).toBe('http');
  });

  it('publishes methods that are not a NATS subject token to the _OTHER subject', async () => {
    await send(`${tap.forwardAuthUrl}/auth`, { headers: { 'x-forwarded-method': 'M.SEARCH', 'x-forwarded-uri': '/' } });
    const [received] = await tap.waitForEvents(1);
    expect(received?.subject).toBe('request-mirror.requests._OTHER');
    expect(received?.event.data.method).toBe('M.SEARCH');
  });

  it('carries a valid traceparent and ignores an invalid one', async () => {
    const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await send(`${tap.forwardAuthUrl}/auth`, { headers: { 'x-forwarded-uri': '/t', traceparent: valid } });
    await send(`${tap.forwardAuthUrl}/auth`, { headers: { 'x-forwarded-uri': '/t', traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' } });
    const events = await tap.waitForEvents(2);
    expect(events[0]?.event.traceparent).toBe(valid);
    expect(events[1]?.event).not.toHaveProperty('traceparent');
    expect(events[1]?.event.data.headers.traceparent).toBeDefined();
  });

  it('stamps time with the moment the tap saw the request, in milliseconds', async () => {
    const before = Date.now();
    await send(`${tap.forwardAuthUrl}/auth`, { headers: { 'x-forwarded-uri': '/' } });
    const after = Date.now();
    const [received] = await tap.waitForEvents(1);
    const time = Date.parse(received?.event.time ?? '');
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);
    expect(received?.event.time).toMatch(/\.\d{3}Z$/);
    expect(decodeTime(received?.event.id ?? '')).toBe(time);
  });

  it('gives events increasing ids in the order the tap saw the requests', async () => {
    for (let i = 0; i < 20; i++) await send(`${tap.mirrorUrl}/seq-${i}`);
    const events = await tap.waitForEvents(20);
    const ids = events.map((e) => e.event.id);
    expect(events.map((e) => e.event.data.path)).toEqual(Array.from({ length: 20 }, (_, i) => `/seq-${i}`));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(20);
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import type { ReceivedRequest } from '../../tools/stack/http-receiver.ts';
import { eventsOf, UPSTREAM_BODY, waitForEvent, type SentResponse } from '../../tools/stack/stack.ts';
import { useStack } from './fixture.ts';
import { attachmentRoutes, KiB } from './routes.ts';

// The tap behind real Traefik, attached both ways: what the webhook receives, and proof that the user's request and
// response pass through untouched.

const LIMIT = 64 * KiB;
const s = useStack({
  receivers: ['hook'],
  targets: (r) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], cookieNames: ['session'] }],
  traefik: (b) => attachmentRoutes(b, { maxBodySize: LIMIT }),
  traefikLogLevel: 'DEBUG',
});

/** Headers every client request carries; the upstream must receive each with the same value. */
const CLIENT_HEADERS = {
  host: 'shop.example.test',
  'user-agent': 'request-mirror-e2e/1',
  accept: 'application/json',
  'accept-encoding': 'identity',
  cookie: 'session=s3cr3t; theme=dark',
  authorization: 'Bearer token-123',
  'x-custom': 'one',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

/** What Traefik itself adds on the way to the upstream; anything else would be a change to the user's request. */
const ADDED_BY_TRAEFIK = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-forwarded-server', 'x-real-ip']);

function expectUnchangedUpstreamRequest(
  got: ReceivedRequest,
  sent: { method: string; path: string; headers: Record<string, string>; body: Buffer },
  added: readonly string[],
): void {
  expect(got.method).toBe(sent.method);
  expect(got.url).toBe(sent.path);
  for (const [name, value] of Object.entries(sent.headers)) expect(got.headers[name], name).toBe(value);
  const allowed = new Set([...ADDED_BY_TRAEFIK, ...added, ...Object.keys(sent.headers), 'content-length', 'transfer-encoding']);
  expect(Object.keys(got.headers).filter((h) => !allowed.has(h))).toEqual([]);
  expect(got.body.equals(sent.body)).toBe(true);
}

function expectUpstreamResponse(res: SentResponse): void {
  expect(res.status).toBe(201);
  expect(res.body.equals(UPSTREAM_BODY)).toBe(true);
  expect(res.headers['x-upstream']).toBe('yes');
  expect(res.headers['set-cookie']).toBe('up=1; Path=/');
  expect(res.headers['content-type']).toBe('application/octet-stream');
}

function lastUpstreamRequest(path: string): ReceivedRequest {
  const got = s().upstream.requests.filter((r) => r.url === path).at(-1);
  if (!got) throw new Error(`upstream never received ${path}`);
  return got;
}

function expectSnapshot(event: MirrorEvent, attachment: 'forwardAuth' | 'mirror', method: string, path: string, query: string): void {
  const d = event.data;
  expect(d.attachment).toBe(attachment);
  expect(d.method).toBe(method);
  expect(d.scheme).toBe('http');
  expect(d.host).toBe('shop.example.test');
  expect(d.path).toBe(path);
  expect(d.query).toBe(query);
  // The Host the client sent, not the tap's address Traefik dialled; none of the X-Forwarded headers Traefik adds.
  expect(d.headers.host).toEqual(['shop.example.test']);
  expect(Object.keys(d.headers).filter((h) => h.startsWith('x-forwarded-'))).toEqual([]);
  expect(d.headers['x-custom']).toEqual(['one']);
  expect(d.headers.accept).toEqual(['application/json']);
  expect(d.headers['user-agent']).toEqual(['request-mirror-e2e/1']);
  // The target lists only `session`; `theme` never leaves the tap, and the raw headers carrying secrets are redacted.
  expect(d.cookies).toEqual({ session: 's3cr3t' });
  expect(d.headers.cookie).toBeUndefined();
  expect(d.headers.authorization).toBeUndefined();
  expect(d.redactedHeaders).toEqual(expect.arrayContaining(['authorization', 'cookie']));
  expect(event.subject).toBe(`shop.example.test${path}`);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('forwardAuth attachment', () => {
  it('mirrors a GET with query, headers and cookies while the upstream and client see nothing change', async () => {
    const path = '/meta/items?q=1&tag=a%20b';
    const res = await s().send(path, { headers: CLIENT_HEADERS });
    expectUpstreamResponse(res);

    const got = lastUpstreamRequest(path);
    expectUnchangedUpstreamRequest(got, { method: 'GET', path, headers: CLIENT_HEADERS, body: Buffer.alloc(0) }, ['x-request-mirror-id']);
    const id = got.headers['x-request-mirror-id'];
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);

    const hook = s().receivers.hook;
    if (!hook) throw new Error('no receiver');
    const event = await waitForEvent(hook, (e) => e.id === id);
    expectSnapshot(event, 'forwardAuth', 'GET', '/meta/items', 'q=1&tag=a%20b');
    expect(event.traceparent).toBe(CLIENT_HEADERS.traceparent);
  });

  it('with forwardBody off, mirrors a POST by its metadata and never sees its body', async () => {
    const body = Buffer.from('{"order":42}');
    const headers = { ...CLIENT_HEADERS, 'content-type': 'application/json' };
    const res = await s().send('/meta/orders', { method: 'POST', headers, body });
    expectUpstreamResponse(res);
    const got = lastUpstreamRequest('/meta/orders');
    expectUnchangedUpstreamRequest(got, { method: 'POST', path: '/meta/orders', headers, body }, ['x-request-mirror-id']);

    const hook = s().receivers.hook;
    if (!hook) throw new Error('no receiver');
    const event = await waitForEvent(hook, (e) => e.id === got.headers['x-request-mirror-id']);
    // Traefik's auth call is a GET; the tap rebuilds the method from X-Forwarded-Method.
    expectSnapshot(event, 'forwardAuth', 'POST', '/meta/orders', '');
    // Traefik's auth call carries no body: the event has an empty one (the target keeps bodies), not a missing one.
    expect(event.data.body).toMatchObject({ capturedBytes: 0, receivedBytes: 0, truncated: false });
  });

  it('with forwardBody on, mirrors a POST body byte for byte, and the upstream still gets the same bytes', async () => {
    const body = Buffer.from('{"order":42,"note":"caf\u00e9 \u2615"}');
    const headers = { ...CLIENT_HEADERS, 'content-type': 'application/json' };
    const res = await s().send('/body/orders?dry=true', { method: 'POST', headers, body });
    expectUpstreamResponse(res);
    const got = lastUpstreamRequest('/body/orders?dry=true');
    expectUnchangedUpstreamRequest(got, { method: 'POST', path: '/body/orders?dry=true', headers, body }, ['x-request-mirror-id']);

    const hook = s().receivers.hook;
    if (!hook) throw new Error('no receiver');
    const event = await waitForEvent(hook, (e) => e.id === got.headers['x-request-mirror-id']);
    expectSnapshot(event, 'forwardAuth', 'POST', '/body/orders', 'dry=true');
    expect(event.data.body).toMatchObject({ encoding: 'utf8', data: body.toString('utf8'), capturedBytes: body.length, truncated: false, sha256: sha256(body) });
  });

  it('with forwardBody on, mirrors a binary PUT body as base64', async () => {
    const body = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 0x7f]);
    const headers = { ...CLIENT_HEADERS, 'content-type': 'application/octet-stream' };
    const res = await s().send('/body/blob', { method: 'PUT', headers, body });
    expectUpstreamResponse(res);
    const got = lastUpstreamRequest('/body/blob');
    expectUnchangedUpstreamRequest(got, { method: 'PUT', path: '/body/blob', headers, body }, ['x-request-mirror-id']);
    const hook = s().receivers.hook;
    if (!hook) throw new Error('no receiver');
    const event = await waitForEvent(hook, (e) => e.id === got.headers['x-request-mirror-id']);
    expect(event.data.method).toBe('PUT');
    expect(event.data.body).toMatchObject({ encoding: 'base64', data: body.toString('base64'), capturedBytes: body.length, sha256: sha256(body) });
  });
});

describe('Mirroring attachment', () => {
  it('mirrors a POST with its body after the upstream answered, and the upstream request carries no tap header', async () => {
    const body = Buffer.from('name=widget&qty=3');
    const headers = { ...CLIENT_HEADERS, 'content-type': 'application/x-www-form-urlencoded', 'x-custom': 'one' };
    const path = '/mirror/cart?step=2';
    const res = await s().send(path, { method: 'POST', headers, body });
    expectUpstreamResponse(res);
    expectUnchangedUpstreamRequest(lastUpstreamRequest(path), { method: 'POST', path, headers, body }, []);

    const hook = s().receivers.hook;
    if (!hook) throw new Error('no receiver');
    const event = await waitForEvent(hook, (e) => e.data.path === '/mirror/cart');
    expectSnapshot(event, 'mirror', 'POST', '/mirror/cart', 'step=2');
    expect(event.data.body).toMatchObject({ encoding: 'utf8', data: body.toString(), capturedBytes: body.length, declaredLength: body.length });
  });

  it('serves a body over the Mirroring maxBodySize to the client and does not mirror it', async () => {
    const big = Buffer.alloc(LIMIT + 1, 0x61);
    const res = await s().send('/mirror/too-big', { method: 'POST', headers: CLIENT_HEADERS, body: big });
    expectUpstreamResponse(res);
    expect(lastUpstreamRequest('/mirror/too-big').body.equals(big)).toBe(true);
    // A later request is mirrored; Traefik's debug log says why the big one was not.
    await s().send('/mirror/after-too-big', { headers: CLIENT_HEADERS });
    const hook = s().receivers.hook;
    if (!hook) throw new Error('no receiver');
    await waitForEvent(hook, (e) => e.data.path === '/mirror/after-too-big');
    expect(eventsOf(hook.requests).filter((e) => e.data.path === '/mirror/too-big')).toEqual([]);
    expect(s().traefik?.logLines('No mirroring, request body larger than allowed size').length).toBeGreaterThan(0);
  });
});

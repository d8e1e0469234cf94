import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { eventsOf, waitForEvent } from '../../tools/stack/stack.ts';
import { receiverOf, useStack } from './fixture.ts';
import { attachmentRoutes, KiB, MiB } from './routes.ts';

// What each Traefik body limit does, and what the tap keeps, at limit-1, limit, limit+1 and a streamed 10 MiB.
//   forwardAuth maxBodySize: a larger body is answered 401 by Traefik; neither the tap nor the upstream is called.
//   Mirroring maxBodySize:   a larger body is served normally and not mirrored.
//   tap.maxBodyBytes:        the tap keeps that many bytes, counts the rest and marks the event truncated.

const LIMIT = 64 * KiB;
const TAP_MAX = 256 * KiB;
const TEN_MIB = 10 * MiB;

const s = useStack({
  receivers: ['hook'],
  tap: { maxBodyBytes: TAP_MAX },
  targets: (r) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], maxBodyBytes: MiB }],
  traefik: (b) => attachmentRoutes(b, { maxBodySize: LIMIT }),
  traefikLogLevel: 'DEBUG',
});
const hook = (): HttpReceiver => receiverOf(s(), 'hook');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** 10 MiB in 64 KiB chunks, sent with chunked transfer encoding (no Content-Length). */
async function* tenMiB(): AsyncIterable<Buffer> {
  const chunk = Buffer.alloc(64 * KiB, 0x7a);
  for (let sent = 0; sent < TEN_MIB; sent += chunk.length) {
    yield chunk;
    await Promise.resolve();
  }
}

function upstreamGot(path: string): Buffer | undefined {
  return s().upstream.requests.find((r) => r.url === path)?.body;
}

describe('forwardAuth maxBodySize', () => {
  it.each([
    ['limit-1', LIMIT - 1],
    ['limit', LIMIT],
  ])('passes a body at %s and the tap captures all of it', async (name, size) => {
    const body = Buffer.alloc(size, 0x62);
    const path = `/body/${name}`;
    const res = await s().send(path, { method: 'POST', body });
    expect(res.status).toBe(201);
    expect(upstreamGot(path)?.equals(body)).toBe(true);
    const event = await waitForEvent(hook(), (e) => e.data.path === path);
    expect(event.data.body).toMatchObject({ capturedBytes: size, receivedBytes: size, truncated: false, sha256: sha256(body) });
  });

  it('answers 401 to a body at limit+1 without calling the tap or the upstream', async () => {
    const res = await s().send('/body/limit+1', { method: 'POST', body: Buffer.alloc(LIMIT + 1, 0x62) });
    expect(res.status).toBe(401);
    expect(upstreamGot('/body/limit+1')).toBeUndefined();
    const log = s().traefik?.accessLog().find((e) => e.RequestPath === '/body/limit+1');
    expect(log).toMatchObject({ DownstreamStatus: 401, OriginStatus: 0 });
    await s().send('/body/after-limit+1', { method: 'POST', body: 'x' });
    await waitForEvent(hook(), (e) => e.data.path === '/body/after-limit+1');
    expect(eventsOf(hook().requests).filter((e) => e.data.path === '/body/limit+1')).toEqual([]);
  });

  it('answers 401 to a streamed 10 MiB upload', async () => {
    const res = await s().send('/body/ten-mib', { method: 'POST', body: tenMiB() });
    expect(res.status).toBe(401);
    expect(upstreamGot('/body/ten-mib')).toBeUndefined();
  });
});

describe('forwardAuth without forwardBody', () => {
  it('passes a streamed 10 MiB upload to the upstream intact and mirrors only its metadata', async () => {
    const res = await s().send('/meta/ten-mib', { method: 'POST', body: tenMiB() });
    expect(res.status).toBe(201);
    expect(upstreamGot('/meta/ten-mib')?.length).toBe(TEN_MIB);
    const event = await waitForEvent(hook(), (e) => e.data.path === '/meta/ten-mib');
    expect(event.data.method).toBe('POST');
    // Traefik's auth call carries no body: the event has an empty one (the target keeps bodies), not a missing one.
    expect(event.data.body).toMatchObject({ capturedBytes: 0, receivedBytes: 0, truncated: false });
  });
});

describe('Mirroring maxBodySize', () => {
  it.each([
    ['limit-1', LIMIT - 1],
    ['limit', LIMIT],
  ])('mirrors a body at %s in full', async (name, size) => {
    const body = Buffer.alloc(size, 0x63);
    const path = `/mirror/${name}`;
    const res = await s().send(path, { method: 'POST', body });
    expect(res.status).toBe(201);
    expect(upstreamGot(path)?.equals(body)).toBe(true);
    const event = await waitForEvent(hook(), (e) => e.data.path === path);
    expect(event.data.body).toMatchObject({ capturedBytes: size, declaredLength: size, truncated: false, sha256: sha256(body) });
  });

  it('serves bodies at limit+1 and a streamed 10 MiB to the client and mirrors neither', async () => {
    const plus1 = await s().send('/mirror/limit+1', { method: 'POST', body: Buffer.alloc(LIMIT + 1, 0x63) });
    expect(plus1.status).toBe(201);
    expect(upstreamGot('/mirror/limit+1')?.length).toBe(LIMIT + 1);
    const big = await s().send('/mirror/ten-mib', { method: 'POST', body: tenMiB() });
    expect(big.status).toBe(201);
    expect(upstreamGot('/mirror/ten-mib')?.length).toBe(TEN_MIB);

    await s().send('/mirror/after-big', { method: 'POST', body: 'x' });
    await waitForEvent(hook(), (e) => e.data.path === '/mirror/after-big');
    const skipped = eventsOf(hook().requests).filter((e) => ['/mirror/limit+1', '/mirror/ten-mib'].includes(e.data.path));
    expect(skipped).toEqual([]);
    expect(s().traefik?.logLines('No mirroring, request body larger than allowed size').length).toBeGreaterThanOrEqual(2);
  });
});

describe('tap maxBodyBytes', () => {
  it('keeps the first maxBodyBytes of a streamed 10 MiB that Traefik mirrored, and marks it truncated', async () => {
    const res = await s().send('/unbounded/ten-mib', { method: 'POST', body: tenMiB() });
    expect(res.status).toBe(201);
    expect(upstreamGot('/unbounded/ten-mib')?.length).toBe(TEN_MIB);
    const event = await waitForEvent(hook(), (e) => e.data.path === '/unbounded/ten-mib', 30_000);
    expect(event.data.body).toMatchObject({
      capturedBytes: TAP_MAX,
      declaredLength: null,
      truncated: true,
      interrupted: false,
      sha256: sha256(Buffer.alloc(TAP_MAX, 0x7a)),
    });
    // The event leaves once more than the limit has arrived; it does not wait for the other 9.75 MiB.
    expect(event.data.body?.receivedBytes).toBeGreaterThan(TAP_MAX);
  });
});

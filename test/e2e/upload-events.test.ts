import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { eventsOf, waitForEvent } from '../../tools/stack/stack.ts';
import { receiverOf, tapMetric, useStack } from './fixture.ts';
import { attachmentRoutes, MiB } from './routes.ts';

// Every request Traefik forwards to the tap with a body yields its event, however large the body and however many
// arrive at once. Traefik's client stops sending a body once the tap has answered, so the tap answers only when it
// holds all it will keep (issue 11: before, 7-8 of 8 concurrent 10 MiB forwardBody uploads were dropped).

const TAP_MAX = MiB;

const s = useStack({
  receivers: ['hook'],
  tap: { maxBodyBytes: TAP_MAX },
  targets: (r) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], maxBodyBytes: TAP_MAX }],
  traefik: (b) => attachmentRoutes(b, { maxBodySize: 16 * MiB }),
});
const hook = (): HttpReceiver => receiverOf(s(), 'hook');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A body whose every byte depends on its tag, so each upload's event can be checked against its own bytes. */
function bodyFor(tag: string, size: number): Buffer {
  const seed = createHash('sha256').update(tag).digest();
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += seed.length) seed.copy(body, i);
  return body;
}

async function upload(path: string, body: Buffer): Promise<void> {
  const res = await s().send(path, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  expect(res.status).toBe(201);
  expect(s().upstream.requests.find((r) => r.url === path)?.body.equals(body)).toBe(true);
}

function expectCaptured(event: MirrorEvent, body: Buffer): void {
  const kept = Math.min(body.length, TAP_MAX);
  expect(event.data.body).toMatchObject({
    capturedBytes: kept,
    truncated: body.length > TAP_MAX,
    interrupted: false,
    sha256: sha256(body.subarray(0, kept)),
  });
}

const dropped = () => tapMetric(s(), 'request_mirror_tap_events_dropped_total');

describe.each([
  ['forwardAuth with forwardBody', '/body'],
  ['Mirroring', '/mirror'],
])('uploads through %s', (_name, prefix) => {
  it('yields the event of each of 8 concurrent 10 MiB uploads', async () => {
    const droppedBefore = await dropped();
    const paths = Array.from({ length: 8 }, (_, i) => `${prefix}/concurrent-${i}`);
    const bodies = paths.map((p) => bodyFor(p, 10 * MiB));
    await Promise.all(paths.map((p, i) => upload(p, bodies[i] as Buffer)));
    for (const [i, path] of paths.entries()) expectCaptured(await waitForEvent(hook(), (e) => e.data.path === path), bodies[i] as Buffer);
    expect(await dropped()).toBe(droppedBefore);
  });

  it('yields the event of each of 12 sequential 6 MiB uploads', async () => {
    for (let i = 0; i < 12; i++) {
      const path = `${prefix}/sequential-${i}`;
      const body = bodyFor(path, 6 * MiB);
      await upload(path, body);
      expectCaptured(await waitForEvent(hook(), (e) => e.data.path === path), body);
    }
  });

  it('keeps whole bodies at and below the capture limit, 8 at once', async () => {
    const sizes = [1, 1000, 64 * 1024, TAP_MAX - 1, TAP_MAX, TAP_MAX + 1, 2 * TAP_MAX, 3 * TAP_MAX];
    const paths = sizes.map((size) => `${prefix}/size-${size}`);
    const bodies = paths.map((p, i) => bodyFor(p, sizes[i] as number));
    await Promise.all(paths.map((p, i) => upload(p, bodies[i] as Buffer)));
    for (const [i, path] of paths.entries()) expectCaptured(await waitForEvent(hook(), (e) => e.data.path === path), bodies[i] as Buffer);
    expect(eventsOf(hook().requests).filter((e) => e.data.path.startsWith(`${prefix}/size-`))).toHaveLength(sizes.length);
  });
});

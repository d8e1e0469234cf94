import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, send, startTap, target, useTap, type TapHarness } from './tap-harness.ts';

const MAX_PAYLOAD = 4096;

const { nats, tap } = useTap({ nats: { maxPayloadBytes: MAX_PAYLOAD }, config: { targets: [target('all')] } });

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('NATS limits', () => {
  it.each([
    ['text', Buffer.from('t'.repeat(10_000)), 'utf8'],
    ['binary', Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) % 256)), 'base64'],
    ['2-byte text', Buffer.from('é'.repeat(5000)), 'utf8'],
    ['3-byte text', Buffer.from('€'.repeat(3400)), 'utf8'],
    ['4-byte text', Buffer.from('😀'.repeat(2500)), 'utf8'],
    ['4-byte text after one ASCII byte', Buffer.from(`x${'😀'.repeat(2500)}`), 'utf8'],
    ['text full of characters JSON escapes', Buffer.from('\u0001'.repeat(10_000)), 'utf8'],
    // The first pass estimates the cut from the body's average cost per byte, which here undercounts the cheap tail it
    // cuts: a second pass has to finish the job.
    ['text whose JSON-escaped characters all come first', Buffer.from(`${'\u0001'.repeat(2000)}${'a'.repeat(8000)}`), 'utf8'],
    // A short escaped head and a long plain tail: each estimate of the cut, from the body's average cost per byte,
    // removes only part of what is left over. Eight estimates did not settle it, and the event was dropped.
    ['text with a short escaped head and a long plain tail', Buffer.from(`${'\u0001'.repeat(565)}${'a'.repeat(43_500)}`), 'utf8'],
  ])('cuts a %s body so the event fits max_payload, and marks it truncated', async (_name, sent, encoding) => {
    const before = await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'max_payload' });
    const res = await send(`${tap.mirrorUrl}/big`, { method: 'POST', body: sent });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    const body = received?.event.data.body;
    if (!body) throw new Error('the event has no body');
    expect(received.size).toBeLessThanOrEqual(MAX_PAYLOAD);
    expect(body.encoding).toBe(encoding);
    expect(body.truncated).toBe(true);
    expect(body.receivedBytes).toBe(sent.length);
    const captured = body.capturedBytes;
    expect(captured).toBeGreaterThan(0);
    expect(captured).toBeLessThan(sent.length);
    expect(body.sha256).toBe(sha256(sent.subarray(0, captured)));
    expect(Buffer.from(body.data, encoding === 'utf8' ? 'utf8' : 'base64')).toEqual(sent.subarray(0, captured));
    expect(await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'max_payload' })).toBe(before + 1);
  });

  it('cuts the body to nothing, marked truncated, when the headers leave room for less than its first bytes', async () => {
    // The event's size with a 1-byte body and 1000 header bytes, to size the header that leaves 8 bytes of room.
    await send(`${tap.mirrorUrl}/room`, { method: 'POST', headers: { 'x-big': 'h'.repeat(1000) }, body: 'x' });
    const [probe] = await tap.waitForEvents(1);
    if (!probe) throw new Error('no probe event');
    tap.received.length = 0;
    // With an empty body of 10,000 received bytes the event is 10 bytes longer than the probe: data "x" becomes "",
    // truncated false becomes true, and receivedBytes, declaredLength and the Content-Length header grow from 1 to
    // 5 digits.
    const header = 1000 + (MAX_PAYLOAD - 8) - (probe.size + 10);
    const before = await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'max_payload' });
    await send(`${tap.mirrorUrl}/room`, { method: 'POST', headers: { 'x-big': 'h'.repeat(header) }, body: 'y'.repeat(10_000) });
    const [received] = await tap.waitForEvents(1);
    expect(received?.size).toBe(MAX_PAYLOAD - 8);
    expect(received?.event.data.body).toMatchObject({ data: '', capturedBytes: 0, receivedBytes: 10_000, declaredLength: 10_000, truncated: true, interrupted: false });
    expect(await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'max_payload' })).toBe(before + 1);
  });

  it('publishes an event of exactly max_payload as it is, without cutting its body', async () => {
    await send(`${tap.mirrorUrl}/exact`, { method: 'POST', headers: { 'x-big': 'h'.repeat(1000) }, body: 'xyz' });
    const [probe] = await tap.waitForEvents(1);
    if (!probe) throw new Error('no probe event');
    tap.received.length = 0;
    const before = await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'max_payload' });
    await send(`${tap.mirrorUrl}/exact`, { method: 'POST', headers: { 'x-big': 'h'.repeat(1000 + MAX_PAYLOAD - probe.size) }, body: 'xyz' });
    const [received] = await tap.waitForEvents(1);
    expect(received?.size).toBe(MAX_PAYLOAD);
    expect(received?.event.data.body).toMatchObject({ data: 'xyz', capturedBytes: 3, truncated: false });
    expect(await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'max_payload' })).toBe(before);
  });

  it('drops and counts an event whose headers alone exceed max_payload, and still answers 200', async () => {
    const before = await tap.metric('request_mirror_tap_events_dropped_total', { reason: 'event_too_large' });
    const res = await send(`${tap.mirrorUrl}/huge-headers`, { headers: { 'x-big': 'h'.repeat(MAX_PAYLOAD) } });
    expect(res.status).toBe(200);
    await send(`${tap.mirrorUrl}/after`);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.path).toBe('/after');
    expect(await tap.metric('request_mirror_tap_events_dropped_total', { reason: 'event_too_large' })).toBe(before + 1);
  });

  it('logs a dropped too-large event as a warning naming its id and max_payload, with RM_TAP_EVENT_TOO_LARGE', async () => {
    const lines: { level: number; msg: string; err?: { code?: string; message?: string } }[] = [];
    const own = await startTap({
      natsUrl: nats.url,
      config: { targets: [target('all')] },
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) }),
    });
    try {
      const res = await send(`${own.mirrorUrl}/huge-headers`, { headers: { 'x-big': 'h'.repeat(MAX_PAYLOAD) } });
      expect(res.status).toBe(200);
      await eventually('the drop counted', async () => (await own.metric('request_mirror_tap_events_dropped_total', { reason: 'event_too_large' })) === 1);
      const id = String(res.headers['x-request-mirror-id']);
      expect(lines.filter((l) => l.msg === 'event dropped')).toEqual([
        expect.objectContaining({
          level: 40,
          err: expect.objectContaining({ code: 'RM_TAP_EVENT_TOO_LARGE', message: `event ${id} exceeds max_payload ${MAX_PAYLOAD} without its body` }) as unknown,
        }),
      ]);
    } finally {
      await own.close();
    }
  });
});

describe('pending publish bytes', () => {
  let small: TapHarness | undefined;
  afterEach(async () => {
    await small?.close();
  });

  it('drops and counts events beyond tap.maxPendingPublishBytes instead of buffering them', async () => {
    small = await startTap({ natsUrl: nats.url, config: { tap: { maxPendingPublishBytes: 1 }, targets: [target('all')] } });
    const tap_ = small;
    await eventually('NATS connection', () => tap_.publisher.isConnected());
    const answers = await Promise.all([1, 2, 3].map((i) => send(`${tap_.mirrorUrl}/p${i}`)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    await eventually('3 drops', async () => (await tap_.metric('request_mirror_tap_events_dropped_total', { reason: 'pending_bytes_exceeded' })) === 3);
    expect(await small.metric('request_mirror_tap_events_published_total')).toBe(0);
  });
});

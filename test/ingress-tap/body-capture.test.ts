import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Body } from '../../contract/event.ts';
import { eventually, rawExchange, send, statusCodes, target, useTap } from './tap-harness.ts';

const LIMIT = 1000;

const { tap } = useTap({ config: { tap: { maxBodyBytes: LIMIT }, targets: [target('all', { maxBodyBytes: 64 * 1024 })] } });

async function bodyOf(body: string | Buffer | Iterable<Buffer>, method = 'POST'): Promise<Body> {
  const res = await send(`${tap.mirrorUrl}/upload`, { method, body, headers: { 'content-type': 'application/octet-stream' } });
  expect(res.status).toBe(200);
  const [received] = await tap.waitForEvents(1);
  const body_ = received?.event.data.body;
  if (!body_) throw new Error('event has no body');
  return body_;
}

function decoded(body: Body): Buffer {
  return Buffer.from(body.data, body.encoding === 'utf8' ? 'utf8' : 'base64');
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('body capture', () => {
  it.each([
    ['one under the limit', LIMIT - 1],
    ['exactly the limit', LIMIT],
  ])('keeps a body %s whole', async (_name, size) => {
    const sent = Buffer.from('a'.repeat(size));
    const interruptedBefore = await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'interrupted' });
    const body = await bodyOf(sent);
    expect(body).toMatchObject({ encoding: 'utf8', capturedBytes: size, receivedBytes: size, declaredLength: size, truncated: false, interrupted: false, sha256: sha256(sent) });
    expect(decoded(body)).toEqual(sent);
    expect(await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'interrupted' })).toBe(interruptedBefore);
  });

  it('cuts a body one byte over the limit and marks it truncated', async () => {
    const before = await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'limit' });
    const sent = Buffer.from('b'.repeat(LIMIT + 1));
    const body = await bodyOf(sent);
    expect(body).toMatchObject({ capturedBytes: LIMIT, receivedBytes: LIMIT + 1, declaredLength: LIMIT + 1, truncated: true });
    expect(body.sha256).toBe(sha256(sent.subarray(0, LIMIT)));
    expect(await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'limit' })).toBe(before + 1);
  });

  it('completes the capture once more than the limit has arrived, without counting the rest of a large body', async () => {
    const size = 3 * 1024 * 1024;
    const body = await bodyOf(Buffer.alloc(size, 0x41));
    expect(body).toMatchObject({ capturedBytes: LIMIT, declaredLength: size, truncated: true, interrupted: false });
    expect(body.receivedBytes).toBeGreaterThan(LIMIT);
    expect(body.receivedBytes).toBeLessThan(size);
  });

  it('records an empty body as zero captured bytes', async () => {
    const body = await bodyOf('');
    expect(body).toMatchObject({ encoding: 'utf8', data: '', capturedBytes: 0, receivedBytes: 0, declaredLength: 0, truncated: false, sha256: sha256(Buffer.alloc(0)) });
  });

  it('records a request sent without Content-Length or body as an empty body with no declared length', async () => {
    const res = await send(`${tap.mirrorUrl}/page`, { method: 'GET' });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.headers['content-length']).toBeUndefined();
    expect(received?.event.data.body).toMatchObject({ data: '', capturedBytes: 0, receivedBytes: 0, declaredLength: null, truncated: false });
  });

  it('encodes binary and invalid UTF-8 bodies as base64', async () => {
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x7f]);
    const body = await bodyOf(binary);
    expect(body.encoding).toBe('base64');
    expect(decoded(body)).toEqual(binary);
    tap.received.length = 0;
    const invalid = Buffer.concat([Buffer.from('héllo '), Buffer.from([0xc3, 0x28])]);
    const body2 = await bodyOf(invalid);
    expect(body2.encoding).toBe('base64');
    expect(decoded(body2)).toEqual(invalid);
  });

  it('keeps a whole body that ends inside a UTF-8 sequence, as base64: only a cut body is cut back to whole characters', async () => {
    const sent = Buffer.concat([Buffer.from('price: 5'), Buffer.from('€').subarray(0, 2)]);
    const body = await bodyOf(sent);
    expect(body).toMatchObject({ encoding: 'base64', capturedBytes: sent.length, receivedBytes: sent.length, truncated: false });
    expect(decoded(body)).toEqual(sent);
  });

  it('keeps valid multi-byte UTF-8 as text', async () => {
    const body = await bodyOf('Grüße, 世界 🌍');
    expect(body).toMatchObject({ encoding: 'utf8', data: 'Grüße, 世界 🌍' });
  });

  it('captures a chunked body, which has no declared length', async () => {
    const body = await bodyOf((function* () {
      yield Buffer.from('part one, ');
      yield Buffer.from('part two');
    })());
    expect(body).toMatchObject({ data: 'part one, part two', declaredLength: null, receivedBytes: 18, truncated: false });
  });

  it('captures the body of a GET, as forwardAuth with forwardBody sends it', async () => {
    const res = await send(`${tap.forwardAuthUrl}/`, {
      method: 'GET',
      headers: { 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/form', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1&b=2',
    });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body).toMatchObject({ data: 'a=1&b=2', declaredLength: 7 });
  });

  it('captures the body of a HEAD sent over a raw socket', async () => {
    const raw = await rawExchange(tap.mirrorPort, 'HEAD /h HTTP/1.1\r\nHost: h.example\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
    expect(statusCodes(raw)).toEqual([200]);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body).toMatchObject({ data: 'hello' });
  });

  // Traefik's client stops sending a body once it has its answer (Go closes the connection 50 ms after the response
  // while the body is still being written): the tap answers only when it has all it will keep.
  it('answers only once the body has ended when the body is within the limit', async () => {
    const socket = netConnect(tap.mirrorPort, '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.write('POST /slow HTTP/1.1\r\nHost: s.example\r\nContent-Length: 10\r\n\r\nfirst');
      // A negative can only be observed over a window: nothing may come back while the body is unfinished.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(Buffer.concat(chunks).length).toBe(0);
      socket.write('-last');
      await eventually('the answer', () => Promise.resolve(statusCodes(Buffer.concat(chunks).toString('latin1')).length === 1));
      expect(statusCodes(Buffer.concat(chunks).toString('latin1'))).toEqual([200]);
      const [received] = await tap.waitForEvents(1);
      expect(received?.event.data.body).toMatchObject({ data: 'first-last', receivedBytes: 10, truncated: false, interrupted: false });
    } finally {
      socket.destroy();
    }
  });

  it('answers as soon as more than the limit has arrived, without waiting for the rest', async () => {
    const socket = netConnect(tap.mirrorPort, '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      const answer = new Promise<string>((resolve) => socket.once('data', (c: Buffer) => { resolve(c.toString('latin1')); }));
      socket.write(`POST /big HTTP/1.1\r\nHost: s.example\r\nContent-Length: ${10 * LIMIT}\r\n\r\n${'c'.repeat(LIMIT + 1)}`);
      expect(statusCodes(await answer)).toEqual([200]);
      const [received] = await tap.waitForEvents(1);
      expect(received?.event.data.body).toMatchObject({ capturedBytes: LIMIT, receivedBytes: LIMIT + 1, declaredLength: 10 * LIMIT, truncated: true, interrupted: false });
    } finally {
      socket.destroy();
    }
  });

  it('publishes what arrived, marked interrupted, when the body breaks off before its end, and records no answer', async () => {
    const before = await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'interrupted' });
    const answeredBefore = await handledCount();
    const receivedBefore = await tap.metric('request_mirror_tap_requests_received_total', { attachment: 'mirror' });
    const socket = netConnect(tap.mirrorPort, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('POST /broken HTTP/1.1\r\nHost: s.example\r\nContent-Length: 100\r\n\r\nonly part');
    await eventually('the tap has read the part', async () => (await tap.metric('request_mirror_tap_requests_received_total', { attachment: 'mirror' })) > receivedBefore);
    socket.destroy();
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.path).toBe('/broken');
    expect(received?.event.data.body).toMatchObject({ data: 'only part', capturedBytes: 9, receivedBytes: 9, declaredLength: 100, truncated: true, interrupted: true });
    expect(await tap.metric('request_mirror_tap_bodies_truncated_total', { reason: 'interrupted' })).toBe(before + 1);
    // Nobody was left to answer: no handling time is recorded for it.
    expect(await handledCount()).toBe(answeredBefore);
  });

  it('waits for more when exactly the limit has arrived, and marks the body truncated once more does', async () => {
    const { client, server } = await connection();
    try {
      const head = `POST /exact HTTP/1.1\r\nHost: s.example\r\nContent-Length: ${LIMIT + 500}\r\n\r\n`;
      client.write(head + 'e'.repeat(LIMIT));
      // Read apart from what follows, so the capture sees exactly the limit before the rest.
      await eventually('the tap to read the first limit bytes', () => Promise.resolve(server.bytesRead === head.length + LIMIT));
      client.write('f'.repeat(500));
      const [received] = await tap.waitForEvents(1);
      expect(received?.event.data.body).toMatchObject({ capturedBytes: LIMIT, declaredLength: LIMIT + 500, truncated: true, interrupted: false });
      expect(received?.event.data.body?.receivedBytes).toBeGreaterThan(LIMIT);
    } finally {
      client.destroy();
    }
  });

  it('records a Content-Length past 2^53 as no declared length', async () => {
    const { client } = await connection();
    const receivedBefore = await tap.metric('request_mirror_tap_requests_received_total', { attachment: 'mirror' });
    client.write('POST /huge-length HTTP/1.1\r\nHost: s.example\r\nContent-Length: 9007199254740993\r\n\r\nhello');
    await eventually('the tap has read the part', async () => (await tap.metric('request_mirror_tap_requests_received_total', { attachment: 'mirror' })) > receivedBefore);
    client.destroy();
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body).toMatchObject({ data: 'hello', declaredLength: null, interrupted: true });
  });

  it('leaves no listener on a keep-alive connection once each capture is complete', async () => {
    const { client, server } = await connection();
    try {
      let replies = '';
      client.on('data', (c: Buffer) => (replies += c.toString('latin1')));
      const exchange = async (n: number) => {
        client.write(`POST /keep-${n} HTTP/1.1\r\nHost: s.example\r\nContent-Length: 5\r\n\r\nbody${n % 10}`);
        await eventually(`answer ${n}`, () => Promise.resolve(statusCodes(replies).length === n));
      };
      await exchange(1);
      const listeners = server.listenerCount('close');
      for (let n = 2; n <= 12; n++) await exchange(n);
      expect(server.listenerCount('close')).toBe(listeners);
      await tap.waitForEvents(12);
    } finally {
      client.destroy();
    }
  });
});

/** Requests the mirror listener has answered, as its handling-time histogram counts them. */
async function handledCount(): Promise<number> {
  const { values } = await tap.metrics.handlingSeconds.get();
  const count = values.find((v) => v.metricName === 'request_mirror_tap_handling_seconds_count' && v.labels.attachment === 'mirror');
  if (!count) throw new Error('no handling-time count for the mirror listener');
  return count.value;
}

/** A raw client connection to the mirror listener, with the tap's end of it. */
async function connection(): Promise<{ client: Socket; server: Socket }> {
  const accepted = new Promise<Socket>((resolve) => tap.tap.mirror.server.once('connection', resolve));
  const client = netConnect(tap.mirrorPort, '127.0.0.1');
  client.on('error', () => undefined);
  return { client, server: await accepted };
}

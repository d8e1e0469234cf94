import { connect as netConnect, type Socket } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { eventually, rawExchange, send, statusCodes, target, useTap } from './tap-harness.ts';

// Traefik hands any non-2xx from forwardAuth to the user, so every input fastify or Node would refuse must still
// get a 200 from the tap, and leave a trace in /metrics.

/** The tap's log lines, at debug level. */
const logLines: { level: number; msg: string; reason?: string; err?: { code?: string; message?: string } }[] = [];
const { tap } = useTap({
  config: { targets: [target('all')] },
  logger: pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) }),
});

const rejected = (reason: string) => tap.metric('request_mirror_tap_rejected_input_total', { reason });

describe('bad input', () => {
  it.each([
    ['invalid JSON', 'application/json', '{"unterminated": '],
    ['an unknown content type', 'application/x-made-up', 'whatever'],
    ['a malformed content type', ';;; =', 'x'],
    ['a multipart type without boundary', 'multipart/form-data', '--x--'],
  ])('answers 200 to a body with %s and publishes it unparsed', async (_name, contentType, body) => {
    for (const url of [tap.forwardAuthUrl, tap.mirrorUrl]) {
      const res = await send(`${url}/in`, { method: 'POST', headers: { 'content-type': contentType }, body });
      expect(res.status).toBe(200);
    }
    const events = await tap.waitForEvents(2);
    expect(events.map((e) => e.event.data.body?.data)).toEqual([body, body]);
  });

  it('answers 200 to a body without a content type', async () => {
    const raw = await rawExchange(tap.mirrorPort, 'PATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
    expect(statusCodes(raw)).toEqual([200]);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body?.data).toBe('abc');
  });

  it("answers 200 to a body over fastify's default body limit", async () => {
    const res = await send(`${tap.mirrorUrl}/big`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(3 * 1024 * 1024, 0x20) });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body?.truncated).toBe(true);
  });

  it('answers 200 to a URL with bad percent-encoding, counts it and publishes the path as sent', async () => {
    const before = await rejected('fst_err_bad_url');
    const res = await send(`${tap.mirrorUrl}/a/%zz/%E0%A4%A?q=%%`, { method: 'POST' });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data).toMatchObject({ path: '/a/%zz/%E0%A4%A', query: 'q=%%' });
    expect(await rejected('fst_err_bad_url')).toBe(before + 1);
    expect(res.headers['x-request-mirror-id']).toBe(received?.event.id);
  });

  it('publishes a forwarded URI with bad percent-encoding as sent', async () => {
    const res = await send(`${tap.forwardAuthUrl}/`, { headers: { 'x-forwarded-uri': '/%zz?%' } });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data).toMatchObject({ path: '/%zz', query: '%' });
  });

  it('answers 200 to 1 MiB of headers and publishes them', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 16; i++) headers[`x-big-${i}`] = 'v'.repeat(64 * 1024 - 16);
    const res = await send(`${tap.forwardAuthUrl}/`, { headers });
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.headers['x-big-15']?.[0]).toHaveLength(64 * 1024 - 16);
  });

  it('logs each malformed request at debug level with its reason and RM_TAP_REJECTED_INPUT', async () => {
    logLines.length = 0;
    const raw = await rawExchange(tap.forwardAuthPort, 'GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n');
    expect(statusCodes(raw)).toEqual([200]);
    const lines = logLines.filter((l) => l.msg === 'malformed request answered 200');
    expect(lines).toEqual([expect.objectContaining({ level: 20, reason: 'hpe_invalid_header_token', err: expect.objectContaining({ code: 'RM_TAP_REJECTED_INPUT' }) as unknown })]);
    // With Node's parse error as the cause, which says what was wrong.
    expect(lines[0]?.err?.message).toMatch(/^hpe_invalid_header_token: Parse Error: /);
  });

  it('answers 200 to headers beyond what the tap accepts, and counts it', async () => {
    const before = await rejected('hpe_header_overflow');
    const raw = await rawExchange(tap.forwardAuthPort, `GET / HTTP/1.1\r\nHost: a\r\nX-Huge: ${'h'.repeat(3 * 1024 * 1024)}\r\n\r\n`);
    expect(statusCodes(raw)).toEqual([200]);
    expect(await rejected('hpe_header_overflow')).toBe(before + 1);
  });

  it.each([
    ['an unparseable request line', 'GARBAGE\r\n\r\n', 'hpe_invalid_method'],
    ['a method Node does not know', 'BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n', 'hpe_invalid_method'],
    ['an invalid header name', 'GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n', 'hpe_invalid_header_token'],
    ['a bad Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n', 'hpe_invalid_content_length'],
    ['both Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'hpe_invalid_transfer_encoding'],
    ['a broken chunked body', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'hpe_invalid_chunk_size'],
    ['an unsupported HTTP version', 'GET / HTTP/9.9\r\nHost: a\r\n\r\n', 'hpe_invalid_version'],
  ])('answers 200 to %s and counts it', async (_name, bytes, reason) => {
    const before = await rejected(reason);
    const raw = await rawExchange(tap.forwardAuthPort, bytes);
    expect(statusCodes(raw)).toEqual([200]);
    expect(await rejected(reason)).toBe(before + 1);
  });

  it('closes a connection whose request failed to parse once the client has stayed silent 5 s after the answer', async () => {
    // The tap's end of the connection, to see it close: the client below never learns, as it sends nothing more.
    const accepted = new Promise<Socket>((resolve) => tap.tap.forwardAuth.server.once('connection', resolve));
    // A client that keeps its side open after the tap's end: only the tap can close this connection.
    const socket = netConnect({ port: tap.forwardAuthPort, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    try {
      const server = await accepted;
      const closed = new Promise<number>((resolve) => server.once('close', () => { resolve(performance.now()); }));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.write('GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n');
      await eventually('the answer', () => statusCodes(Buffer.concat(chunks).toString('latin1')).length === 1);
      const answered = performance.now();
      const closedAt = await closed;
      expect(statusCodes(Buffer.concat(chunks).toString('latin1'))).toEqual([200]);
      expect(closedAt - answered).toBeGreaterThan(4000);
      expect(closedAt - answered).toBeLessThan(9000);
    } finally {
      socket.destroy();
    }
  }, 15_000);

  it('answers 200 to a request cut off mid-body, and publishes what arrived, marked interrupted', async () => {
    const raw = await rawExchange(tap.mirrorPort, 'POST /cut HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly part');
    expect(statusCodes(raw)).toEqual([200]);
    // The broken requests above are published too, with what arrived: pick this one by its path.
    await eventually('the event of /cut', () => tap.received.some((r) => r.event.data.path === '/cut'));
    const received = tap.received.find((r) => r.event.data.path === '/cut');
    expect(received?.event.data.body).toMatchObject({ data: 'only part', receivedBytes: 9, declaredLength: 100, truncated: true, interrupted: true });
  });

  it.each(['PROPFIND', 'MKCALENDAR', 'PURGE', 'M-SEARCH', 'UNLOCK'])('answers 200 to the %s method and publishes it', async (method) => {
    const raw = await rawExchange(tap.mirrorPort, `${method} /dav HTTP/1.1\r\nHost: dav.example\r\nConnection: close\r\n\r\n`);
    expect(statusCodes(raw)).toEqual([200]);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.method).toBe(method);
  });

  it('answers 200 to CONNECT and counts it', async () => {
    const before = await rejected('connect_method');
    const raw = await rawExchange(tap.forwardAuthPort, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(statusCodes(raw)).toEqual([200]);
    expect(await rejected('connect_method')).toBe(before + 1);
  });

  it('answers 200 to an Expect other than 100-continue, counts it and publishes the request', async () => {
    const before = await rejected('unsupported_expect');
    // Raw, because HTTP clients refuse to send Expect themselves.
    const raw = await rawExchange(tap.mirrorPort, 'GET /e HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nConnection: close\r\n\r\n');
    expect(statusCodes(raw)).toEqual([200]);
    await tap.waitForEvents(1);
    expect(await rejected('unsupported_expect')).toBe(before + 1);
  });

  it('answers 200 to HTTP/1.1 without Host, to absolute-form and to asterisk-form targets', async () => {
    for (const line of ['GET /no-host HTTP/1.1\r\n', 'GET http://abs.example/x?y HTTP/1.1\r\nHost: abs.example\r\n', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n']) {
      const raw = await rawExchange(tap.mirrorPort, `${line}Connection: close\r\n\r\n`);
      expect(statusCodes(raw)).toEqual([200]);
    }
    const events = await tap.waitForEvents(3);
    expect(events.map((e) => `${e.event.data.host}|${e.event.data.path}|${e.event.data.query}`)).toEqual(['|/no-host|', 'abs.example|http://abs.example/x|y', 'a|*|']);
  });

  it('answers every request of a keep-alive connection, pipelined ones included', async () => {
    const one = 'GET /k HTTP/1.1\r\nHost: k\r\n\r\n';
    const raw = await rawExchange(tap.mirrorPort, one + one + `POST /k HTTP/1.1\r\nHost: k\r\nContent-Length: 2\r\n\r\nok${one}`);
    expect(statusCodes(raw)).toEqual([200, 200, 200, 200]);
    await tap.waitForEvents(4);
  });
});

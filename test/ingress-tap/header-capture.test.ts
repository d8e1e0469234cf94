import { connect as http2Connect, type OutgoingHttpHeaders } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import { PLUGIN_BATCH_CONTENT_TYPE, PLUGIN_BATCH_PATH, type PluginSnapshot } from '../../contract/plugin-batch.ts';
import { mapOf, PROTOTYPE_NAMES } from '../support/prototype-names.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';
import { rawExchange, send, startTap, statusCodes, target, useTap, type TapHarness, type TapHarnessOptions } from './tap-harness.ts';

// Header bytes on the wire, sent over a raw socket (undici and fetch refuse non-ASCII header values), and what the
// event says of them.

const { tap, nats } = useTap({ config: { targets: [target('all', { cookieNames: ['name', 'other', ...PROTOTYPE_NAMES] })] } });

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

type HeaderLines = readonly (readonly [string, Buffer])[];

/**
 * Sends a request with these header lines (name, raw value bytes) to the mirror listener, after `Host: h.example`
 * (to the forwardAuth listener without a Host line); returns its event.
 */
async function eventFor(headers: HeaderLines, to: TapHarness = tap, listener: 'mirror' | 'forwardAuth' = 'mirror'): Promise<MirrorEvent> {
  to.received.length = 0;
  const request = Buffer.concat([
    Buffer.from(`GET /h HTTP/1.1\r\n${listener === 'mirror' ? 'Host: h.example\r\n' : ''}`),
    ...headers.map(([name, value]) => Buffer.concat([Buffer.from(`${name}: `), value, Buffer.from('\r\n')])),
    Buffer.from('Connection: close\r\n\r\n'),
  ]);
  expect(statusCodes(await rawExchange(listener === 'mirror' ? to.mirrorPort : to.forwardAuthPort, request))).toEqual([200]);
  const [received] = await to.waitForEvents(1);
  if (!received) throw new Error('no event');
  return received.event;
}

/**
 * Runs `body` against a tap of its own, started and closed inside the test: for other targets than the file's tap,
 * or TLS, and so that a mutation run credits the code the request runs to this test.
 */
async function withOwnTap(options: Omit<TapHarnessOptions, 'natsUrl'>, body: (own: TapHarness) => Promise<void>): Promise<void> {
  const own = await startTap({ ...options, natsUrl: nats.url });
  try {
    await body(own);
    expect(own.invalid).toEqual([]);
  } finally {
    await own.close();
  }
}

/** Sends one snapshot with these headers (name, value, …) in a plugin batch, built by hand; returns its event. */
async function pluginEventFor(headers: string[]): Promise<MirrorEvent> {
  tap.received.length = 0;
  const frame = (meta: object) => {
    const json = Buffer.from(JSON.stringify(meta));
    const lengths = Buffer.alloc(4);
    lengths.writeUInt32BE(json.length);
    return Buffer.concat([lengths, json, Buffer.alloc(4)]);
  };
  const snapshot: PluginSnapshot = {
    timeMs: Date.now(),
    method: 'GET',
    scheme: 'http',
    uri: '/p',
    remoteIp: '192.0.2.10',
    headers,
    declaredLength: 0,
    receivedBytes: 0,
    complete: true,
  };
  const batch = Buffer.concat([frame({ version: 1, reporter: 'header-capture', counters: { queued: 1, sent: 1, sentBodyBytes: 0, budgetCuts: 0, dropped: {} } }), frame(snapshot)]);
  const res = await send(`${tap.pluginUrl}${PLUGIN_BATCH_PATH}`, { method: 'POST', headers: { 'content-type': PLUGIN_BATCH_CONTENT_TYPE }, body: batch });
  expect(res.status).toBe(204);
  const [received] = await tap.waitForEvents(1);
  if (!received) throw new Error('no event');
  return received.event;
}

const rejectedCookies = (to: TapHarness = tap) => to.metric('request_mirror_tap_rejected_input_total', { reason: 'malformed_cookie' });

/** The bytes a value stands for: UTF-8, or Latin-1 for a header named in latin1Headers. */
function wireBytes(event: MirrorEvent, name: string, value: string): Buffer {
  return Buffer.from(value, event.data.latin1Headers?.includes(name) ? 'latin1' : 'utf8');
}

describe('header values', () => {
  it('decodes X-Filename: résumé.pdf sent as UTF-8 bytes (issue 11)', async () => {
    const event = await eventFor([['X-Filename', bytes('résumé.pdf')]]);
    expect(event.data.headers['x-filename']).toEqual(['résumé.pdf']);
    expect(event.data.latin1Headers).toBeUndefined();
  });

  it.each([
    ['ASCII', bytes('plain; q=1')],
    ['2-byte characters', bytes('café ß')],
    ['3-byte characters', bytes('€ 日本語')],
    ['4-byte characters', bytes('😀 𝄞')],
    ['the last code point', bytes('\u{10ffff}')],
    ['a tab inside the value', bytes('a\tb é')],
  ])('decodes a value of valid UTF-8 (%s)', async (_name, value) => {
    const event = await eventFor([['X-Value', value]]);
    expect(event.data.headers['x-value']).toEqual([value.toString('utf8')]);
    expect(event.data.latin1Headers).toBeUndefined();
  });

  it.each([
    ['Latin-1 résumé', bytes('r', [0xe9], 'sum', [0xe9], '.pdf')],
    ['a sequence cut short', bytes('caf', [0xc3])],
    ['a lone continuation byte', bytes('a', [0x80], 'b')],
    ['an overlong encoding', bytes([0xc0, 0xaf])],
    ['an encoded surrogate', bytes([0xed, 0xa0, 0x80])],
    ['a code point past U+10FFFF', bytes([0xf4, 0x90, 0x80, 0x80])],
    ['a byte never used in UTF-8', bytes('x', [0xff])],
  ])('keeps a value that is not UTF-8 (%s) as Latin-1 and names its header', async (_name, value) => {
    const event = await eventFor([['X-Value', value]]);
    expect(event.data.latin1Headers).toEqual(['x-value']);
    const [got] = event.data.headers['x-value'] ?? [];
    expect(wireBytes(event, 'x-value', got ?? '').equals(value)).toBe(true);
    expect(got).toBe(value.toString('latin1'));
  });

  it('gives back the bytes of every high byte sent alone, each header named once', async () => {
    const sent = Array.from({ length: 128 }, (_, i) => [`X-B${(0x80 + i).toString(16)}`, bytes('<', [0x80 + i], '>')] as const);
    const event = await eventFor(sent);
    expect(event.data.latin1Headers?.slice().sort()).toEqual(sent.map(([n]) => n.toLowerCase()).sort());
    for (const [name, value] of sent) {
      const got = event.data.headers[name.toLowerCase()]?.[0] ?? '';
      expect(wireBytes(event, name.toLowerCase(), got).equals(value), name).toBe(true);
    }
  });

  it('keeps every value of a repeated header as Latin-1 when one of them is not UTF-8', async () => {
    const utf8 = bytes('é');
    const latin1 = bytes([0xe9]);
    const event = await eventFor([['X-Rep', utf8], ['X-Other', utf8], ['X-Rep', latin1]]);
    expect(event.data.latin1Headers).toEqual(['x-rep']);
    expect(event.data.headers['x-rep']).toEqual([utf8.toString('latin1'), 'é']);
    expect(event.data.headers['x-other']).toEqual(['é']);
  });

  it('decodes cookie values by the same rule and names cookie when its bytes are not UTF-8', async () => {
    const good = await eventFor([['Cookie', bytes('name=café; other=1')]]);
    expect(good.data.cookies).toEqual({ name: 'café', other: '1' });
    expect(good.data.latin1Headers).toBeUndefined();
    const bad = await eventFor([['Cookie', bytes('name=caf', [0xe9], '; other=1')]]);
    expect(bad.data.cookies).toEqual({ name: 'caf\u00e9', other: '1' });
    expect(bad.data.latin1Headers).toEqual(['cookie']);
    expect(bad.data.redactedHeaders).toEqual(['cookie']);
  });

  it('keeps the ASCII values of a request whose other values are not ASCII', async () => {
    const event = await eventFor([['X-Rep', bytes('plain')], ['X-Rep', bytes('é')], ['X-Ascii', bytes('ascii')]]);
    expect(event.data.headers['x-rep']).toEqual(['plain', 'é']);
    expect(event.data.headers['x-ascii']).toEqual(['ascii']);
    expect(event.data.headers.host).toEqual(['h.example']);
  });

  it('names cookie once in latin1Headers when a target reveals a Cookie header that is not UTF-8', async () => {
    const config = { targets: [target('reveals', { cookieNames: ['name'], revealHeaders: ['cookie'] })] };
    await withOwnTap({ config }, async (own) => {
      const value = bytes('name=caf', [0xe9]);
      const event = await eventFor([['Cookie', value]], own);
      expect(event.data.latin1Headers).toEqual(['cookie']);
      expect(event.data.headers.cookie).toEqual([value.toString('latin1')]);
      expect(event.data.cookies).toEqual({ name: 'caf\u00e9' });
    });
  });
});

describe('header and cookie names', () => {
  it('keeps headers and cookies named like every Object.prototype member', async () => {
    const headerNames = PROTOTYPE_NAMES.map((n) => n.toLowerCase());
    const cookie = PROTOTYPE_NAMES.map((n) => `${n}=c-${n}`).join('; ');
    const event = await eventFor([...PROTOTYPE_NAMES.map((n) => [n, bytes(`h-${n}`)] as const), ['Cookie', bytes(cookie)]]);
    expect(Object.keys(event.data.headers).sort()).toEqual(['host', ...headerNames].sort());
    expect(event.data.headers['__proto__']).toEqual(['h-__proto__']);
    expect(event.data.headers['constructor']).toEqual(['h-constructor']);
    expect(Object.keys(event.data.cookies).sort()).toEqual([...PROTOTYPE_NAMES].sort());
    expect({ ...event.data.cookies }).toEqual({ ...mapOf(PROTOTYPE_NAMES, (n) => `c-${n}`) });
  });

  it('does not take a cookie a target allows from the prototype when the request lacks it', async () => {
    const event = await eventFor([['Cookie', bytes('other=1')]]);
    expect(Object.keys(event.data.cookies)).toEqual(['other']);
  });
});

describe('headers left out, joined and checked', () => {
  it('leaves out every hop-by-hop header and the headers each Connection header names', async () => {
    const event = await eventFor([
      ['Proxy-Connection', bytes('keep-alive')],
      ['TE', bytes('trailers')],
      ['Trailer', bytes('X-Checksum')],
      ['Upgrade', bytes('h2c')],
      ['Keep-Alive', bytes('timeout=5')],
      ['Connection', bytes('X-Drop-One')],
      ['Connection', bytes('x-drop-two, , X-Drop-Three')],
      ['X-Drop-One', bytes('1')],
      ['X-Drop-Two', bytes('2')],
      ['X-Drop-Three', bytes('3')],
      ['X-Kept', bytes('k')],
    ]);
    expect(Object.keys(event.data.headers).sort()).toEqual(['host', 'x-kept']);
  });

  it('keeps a header named Undefined beside a Connection header that does not name it', async () => {
    const event = await eventFor([['Connection', bytes('X-Drop')], ['X-Drop', bytes('1')], ['Undefined', bytes('kept')]]);
    expect(event.data.headers).toEqual({ host: ['h.example'], undefined: ['kept'] });
  });

  it('ignores the empty elements of a Connection header, even beside a field with an empty name in a plugin batch', async () => {
    // RFC 9110 section 5.6.1: empty list elements do not count. HTTP parsers refuse an empty field name, but a plugin
    // batch is JSON, taken as sent.
    const event = await pluginEventFor(['Host', 'p.example', 'Connection', ' , X-Drop', '', 'nameless', 'X-Drop', '1']);
    expect(event.data.headers).toEqual({ host: ['p.example'], '': ['nameless'] });
  });

  it('keeps a credential header a target reveals even when a Connection header names it', async () => {
    const config = { targets: [target('reveals', { revealHeaders: ['authorization'] })] };
    await withOwnTap({ config }, async (own) => {
      const event = await eventFor([['Connection', bytes('Authorization, X-Drop')], ['Authorization', bytes('Bearer seen')], ['X-Drop', bytes('1')]], own);
      expect(event.data.headers).toEqual({ host: ['h.example'], authorization: ['Bearer seen'] });
      expect(event.data.redactedHeaders).toEqual([]);
    });
  });

  it('takes the client host from the first X-Forwarded-Host through forwardAuth, whatever X-Forwarded-* headers come before it', async () => {
    // The tap's own parsing of the header lines, in an order it must not depend on.
    const event = await eventFor(
      [
        ['X-Forwarded-For', bytes('192.0.2.7')],
        ['X-Forwarded-Host', bytes('first.example')],
        ['X-Forwarded-Host', bytes('second.example')],
        ['X-Kept', bytes('k')],
      ],
      tap,
      'forwardAuth',
    );
    expect(event.data.headers).toEqual({ host: ['first.example'], 'x-kept': ['k'] });
  });

  it('joins repeated Cookie headers before picking the allowed cookies, and names cookie once among the redacted', async () => {
    const event = await eventFor([
      ['Cookie', bytes('other=1')],
      ['Cookie', bytes('name=2; unlisted=3')],
    ]);
    expect({ ...event.data.cookies }).toEqual({ other: '1', name: '2' });
    expect(event.data.redactedHeaders).toEqual(['cookie']);
    expect(event.data.headers.cookie).toBeUndefined();
  });

  it('decodes percent-encoded cookie values, and keeps and counts one that does not decode', async () => {
    const before = await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'malformed_cookie' });
    const event = await eventFor([['Cookie', bytes('name=a%20b%C3%A9; other=%zz')]]);
    expect({ ...event.data.cookies }).toEqual({ name: 'a bé', other: '%zz' });
    expect(await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'malformed_cookie' })).toBe(before + 1);
  });

  it.each([
    ['well-formed pairs', 'name=1; other=2', 0],
    ['an empty pair between semicolons', 'name=1; ; other=2', 0],
    ['a pair without "="', 'name=1; flag', 1],
    ['a pair with an empty name', 'name=1; =orphan', 1],
    ['a pair whose name is blanks', 'name=1;  =orphan', 1],
  ])('counts a Cookie header with %s as malformed %i time(s)', async (_name, cookie, count) => {
    const before = await rejectedCookies();
    const event = await eventFor([['Cookie', bytes(cookie)]]);
    expect(event.data.cookies.name).toBe('1');
    expect((await rejectedCookies()) - before).toBe(count);
  });

  it('counts no malformed Cookie header when no target wanting the request takes cookies', async () => {
    await withOwnTap({ config: { targets: [target('no-cookies')] } }, async (own) => {
      const event = await eventFor([['Cookie', bytes('flag; =orphan; x=%zz')]], own);
      expect(event.data.cookies).toEqual({});
      expect(await rejectedCookies(own)).toBe(0);
    });
  });

  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const PARENT = '00f067aa0ba902b7';
  it.each([
    ['version 00', [`00-${TRACE}-${PARENT}-01`]],
    ['a later version with more fields', [`cc-${TRACE}-${PARENT}-01-what-comes-next`]],
    ['the first of two', [`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${'1'.repeat(16)}-00`]],
    ['ids starting with zeros (the W3C example)', ['00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01']],
    ['ids ending with zeros', [`00-${'a'.padEnd(32, '0')}-${'b'.padEnd(16, '0')}-01`]],
  ])('carries a traceparent of %s as the event attribute', async (_name, values) => {
    const event = await eventFor(values.map((v) => ['traceparent', bytes(v)] as const));
    expect(event.traceparent).toBe(values[0]);
    expect(event.data.headers.traceparent).toEqual(values);
  });

  it.each([
    ['version ff', [`ff-${TRACE}-${PARENT}-01`]],
    ['an all-zero trace id', [`00-${'0'.repeat(32)}-${PARENT}-01`]],
    ['an all-zero parent id', [`00-${TRACE}-${'0'.repeat(16)}-01`]],
    ['version 00 with more fields', [`00-${TRACE}-${PARENT}-01-more`]],
    ['upper-case hex', [`00-${TRACE.toUpperCase()}-${PARENT}-01`]],
    ['an invalid first of two', [`00-${TRACE}-${'0'.repeat(16)}-01`, `00-${TRACE}-${PARENT}-01`]],
  ])('leaves out a traceparent with %s, keeping the header', async (_name, values) => {
    const event = await eventFor(values.map((v) => ['traceparent', bytes(v)] as const));
    expect(event).not.toHaveProperty('traceparent');
    expect(event.data.headers.traceparent).toEqual(values);
  });
});

// The tap's own parsing of the requests an HTTP/1.1 and an HTTP/2 client send it (through real Traefik's HTTP/2
// forwardAuth client in test/e2e/forward-auth-h2.test.ts).
describe('HTTP/1.1 and HTTP/2 header fields', () => {
  let cert: TestCertificate;
  beforeAll(() => {
    cert = makeCertificate();
  });
  afterAll(() => {
    cert.remove();
  });

  const revealing = { targets: [target('reveals', { cookieNames: ['a', 'b'], revealHeaders: ['cookie'] })] };

  /** Sends one request on its own HTTP/2 session to the mirror listener of a TLS tap; returns its event. */
  async function h2EventFor(own: TapHarness, headers: OutgoingHttpHeaders): Promise<MirrorEvent> {
    const session = http2Connect(own.mirrorUrl, { ca: cert.ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        session.once('error', reject);
        const stream = session.request({ ':method': 'GET', ':path': '/h2', ...headers });
        stream.once('error', reject);
        stream.once('response', (h) => {
          stream.resume();
          stream.once('end', () => {
            resolve(Number(h[':status']));
          });
        });
      });
      expect(status).toBe(200);
    } finally {
      session.close();
    }
    const [received] = await own.waitForEvents(1);
    if (!received) throw new Error('no event');
    return received.event;
  }

  it('keeps two HTTP/1.1 Cookie headers as two values, not joined', async () => {
    await withOwnTap({ config: revealing }, async (own) => {
      const event = await eventFor([['Cookie', bytes('a=1')], ['Cookie', bytes('b=2')]], own);
      expect(event.data.headers.cookie).toEqual(['a=1', 'b=2']);
      expect(event.data.cookies).toEqual({ a: '1', b: '2' });
    });
  });

  it('joins the Cookie fields of an HTTP/2 request into one value, and keeps other repeated fields apart', async () => {
    await withOwnTap({ config: revealing, tls: { certFile: cert.certFile, keyFile: cert.keyFile } }, async (own) => {
      const event = await h2EventFor(own, { ':authority': 'h2.example', cookie: ['a=1', 'b=2'], 'x-rep': ['one', 'two'] });
      expect(event.data.headers).toEqual({ host: ['h2.example'], cookie: ['a=1; b=2'], 'x-rep': ['one', 'two'] });
      expect(event.data.cookies).toEqual({ a: '1', b: '2' });
    });
  });

  it('takes the Host field over :authority when an HTTP/2 request carries both', async () => {
    await withOwnTap({ config: revealing, tls: { certFile: cert.certFile, keyFile: cert.keyFile } }, async (own) => {
      const event = await h2EventFor(own, { ':authority': 'authority.example', host: 'host.example' });
      expect(event.data.headers.host).toEqual(['host.example']);
      expect(event.data.host).toBe('host.example');
    });
  });
});

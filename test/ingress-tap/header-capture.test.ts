import { describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import { mapOf, PROTOTYPE_NAMES } from '../support/prototype-names.ts';
import { rawExchange, statusCodes, target, useTap } from './tap-harness.ts';

// Header bytes on the wire, sent over a raw socket (undici and fetch refuse non-ASCII header values), and what the
// event says of them.

const { tap } = useTap({ config: { targets: [target('all', { cookieNames: ['name', 'other', ...PROTOTYPE_NAMES] })] } });

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

/** Sends a request with these header lines (name, raw value bytes) to the mirror listener; returns its event. */
async function eventFor(headers: readonly (readonly [string, Buffer])[]): Promise<MirrorEvent> {
  tap.received.length = 0;
  const request = Buffer.concat([
    Buffer.from('GET /h HTTP/1.1\r\nHost: h.example\r\n'),
    ...headers.map(([name, value]) => Buffer.concat([Buffer.from(`${name}: `), value, Buffer.from('\r\n')])),
    Buffer.from('Connection: close\r\n\r\n'),
  ]);
  expect(statusCodes(await rawExchange(tap.mirrorPort, request))).toEqual([200]);
  const [received] = await tap.waitForEvents(1);
  if (!received) throw new Error('no event');
  return received.event;
}

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

  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const PARENT = '00f067aa0ba902b7';
  it.each([
    ['version 00', [`00-${TRACE}-${PARENT}-01`]],
    ['a later version with more fields', [`cc-${TRACE}-${PARENT}-01-what-comes-next`]],
    ['the first of two', [`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${'1'.repeat(16)}-00`]],
  ])('carries a traceparent of %s as the event attribute', async (_name, values) => {
    const event = await eventFor(values.map((v) => ['traceparent', bytes(v)] as const));
    expect(event.traceparent).toBe(values[0]);
    expect(event.data.headers.traceparent).toEqual(values);
  });

  it.each([
    ['version ff', [`ff-${TRACE}-${PARENT}-01`]],
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

import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { EVENT_TYPE, MirrorEvent } from '../../contract/event.ts';

// What `make fuzz` sends, as fast-check arbitraries. Case `i` of a run with seed `s` is drawn with seed `s + i`
// alone, so one failing case is reproduced from the two numbers printed with it, whatever ran around it.

/** Where an HTTP request goes: through Traefik (its forwardAuth or Mirroring router) or straight to a listener. */
export const ROUTES = [
  'traefik-forwardauth-h1',
  'traefik-forwardauth-h2c',
  'traefik-mirror-h1',
  'tap-forwardauth-h1-tls',
  'tap-forwardauth-h2-tls',
  'tap-mirror-h1',
] as const;
export type Route = (typeof ROUTES)[number];

export interface HttpCase {
  readonly kind: 'http';
  readonly route: Route;
  readonly method: string;
  /** Path and query, as written on the request line. */
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array | null;
  /** Send the body chunked (HTTP/1.1) or in several DATA frames (HTTP/2) instead of with a length. */
  readonly streamed: boolean;
}

/**
 * Bytes written as they are: malformed HTTP/1.1 and plain noise to the mirror listener's socket, or HTTP/2 frames
 * after the connection preface to the TLS forwardAuth listener (ALPN h2), the connection Traefik's calls share.
 */
export interface RawCase {
  readonly kind: 'raw';
  readonly to: 'mirror' | 'forwardauth-h2-tls';
  readonly bytes: Uint8Array;
}

/** A NATS message published on the subject the dispatchers read. */
export interface EventCase {
  readonly kind: 'event';
  /** The token after `<prefix>.requests.`. */
  readonly subjectToken: string;
  readonly payload: Uint8Array;
  /** What the contract (MirrorEvent) says of the payload: the dispatcher must count it as invalid when false. */
  readonly valid: boolean;
  /** How the payload was made, for the report of a failing case. */
  readonly variant: string;
}

export type RequestCase = HttpCase | RawCase;

const tchar = fc.constantFrom(...'!#$%&\'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.split(''));
const token = fc.string({ unit: tchar, minLength: 1, maxLength: 16 });
const visible = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') },
  { weight: 2, arbitrary: fc.constantFrom('PROPFIND', 'PURGE', 'QUERY', 'MKCOL', 'LOCK', 'M-SEARCH', 'SEARCH', 'REPORT', 'get', 'Post') },
  { weight: 2, arbitrary: token },
);
// Invalid percent-escapes are rare: Traefik (Go) refuses those request lines outright, and they never reach the tap.
const pathPart = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('/', '?', '&', '=', '..', '%E0%A4', '%00', '%2F', ';', '@', ':', '//', '~', '+', '%25', '%C3%A9', '\u00e9', '%7F', '!', '$', "'", '(', '*', ',') },
  { weight: 10, arbitrary: fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._'.split('')), minLength: 1, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%4') },
  { weight: 2, arbitrary: visible.filter((c) => c !== ' ' && c !== '#') },
);
const path = fc.array(pathPart, { maxLength: 30 }).map((parts) => `/${encodeURI(parts.join('')).replaceAll('%25', '%')}`);
const headerValue = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: visible, maxLength: 200 }).map((v) => v.trim()) },
  { weight: 1, arbitrary: fc.string({ unit: visible, minLength: 1000, maxLength: 6000 }).map((v) => v.trim()) },
);
const cookie = fc
  .array(
    fc.tuple(fc.oneof(fc.constantFrom('session', 'a', '__proto__', 'constructor', '', '$Version'), token), fc.string({ unit: visible, maxLength: 60 })),
    { maxLength: 8 },
  )
  .chain((pairs) => fc.constantFrom('; ', ';', ' ;  ', ',').map((sep) => pairs.map(([k, v]) => `${k}=${v.replaceAll(';', '')}`).join(sep)))
  .map((v) => v.trim());
const headerName = fc.oneof(
  { weight: 4, arbitrary: token.map((t) => t.toLowerCase()) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'authorization', 'x-forwarded-method', 'x-forwarded-uri', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for',
      'x-real-ip', 'traceparent', 'content-type', 'x-request-mirror-id', '__proto__', 'constructor', 'forwarded', 'accept-encoding',
    ),
  },
);
const headers = fc
  .tuple(fc.array(fc.tuple(headerName, headerValue), { maxLength: 14 }), fc.option(cookie, { nil: undefined }), fc.array(cookie, { maxLength: 2 }))
  .map(([pairs, one, more]) => [...pairs, ...(one === undefined ? [] : [['cookie', one] as const]), ...more.map((c) => ['cookie', c] as const)]);
const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(null) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 2000 }).map((s) => new TextEncoder().encode(s)) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 4 }).map((s) => new TextEncoder().encode(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 8192, maxLength: 64 * 1024 }) },
);

const httpCase: fc.Arbitrary<HttpCase> = fc.record({
  kind: fc.constant('http' as const),
  route: fc.constantFrom(...ROUTES),
  method,
  path,
  headers,
  body,
  streamed: fc.boolean(),
});

// The request-ish shapes Node's parser has to refuse or survive, besides noise.
const requestHead = fc
  .tuple(method, path, fc.array(fc.tuple(token, fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 80 })), { maxLength: 8 }))
  .map(([m, p, hs]) => `${m} ${p} HTTP/1.1\r\nHost: x\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}`);
const rawBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(requestHead, fc.uint8Array({ maxLength: 400 })).map(([h, b]) => concat(latin1(`${h}\r\n`), b)),
  fc.tuple(requestHead, fc.nat({ max: 100 }), fc.uint8Array({ maxLength: 50 })).map(([h, n, b]) => concat(latin1(`${h}Content-Length: ${n}\r\n\r\n`), b)),
  fc
    .tuple(requestHead, fc.array(fc.tuple(fc.constantFrom('5', 'zz', '-1', 'ffffffffffffffff', '0', '3;ext=1', ''), fc.string({ maxLength: 8 })), { maxLength: 4 }))
    .map(([h, chunks]) => latin1(`${h}Transfer-Encoding: chunked\r\n\r\n${chunks.map(([size, data]) => `${size}\r\n${data}\r\n`).join('')}`)),
  fc.tuple(requestHead, requestHead).map(([a, b]) => latin1(`${a}\r\n${b}\r\n`)),
  fc.tuple(requestHead, fc.constantFrom('Content-Length: 1\r\nContent-Length: 2', 'Content-Length: 3\r\nTransfer-Encoding: chunked', 'Expect: 100-continue', 'Expect: nonsense', 'Upgrade: websocket\r\nConnection: Upgrade', 'Host: y')).map(([h, extra]) => latin1(`${h}${extra}\r\n\r\n`)),
  fc.constantFrom('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'GET /\r\n\r\n', '\r\n\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nX: ' + 'a'.repeat(70_000) + '\r\n\r\n').map(latin1),
  fc.uint8Array({ maxLength: 800 }),
);
// Frames of every type but requests: a HEADERS block always opens with an index into the (empty) dynamic table, so
// it never decodes into a request (HPACK fails the session), and CONTINUATION has no HEADERS to follow. No frame
// forms a request the tap would count, which keeps its forwardAuth accounting exact.
const H2_PREFACE = latin1('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const INVALID_HPACK_INDEX = 0xbf;
const h2Frame = fc
  .record({
    type: fc.constantFrom(0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xff),
    flags: fc.nat({ max: 255 }),
    stream: fc.oneof(fc.constantFrom(0, 1, 3, 2 ** 31 - 1), fc.nat({ max: 2 ** 31 - 1 })),
    payload: fc.uint8Array({ maxLength: 96 }),
    lengthDelta: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) }),
  })
  .map(({ type, flags, stream, payload, lengthDelta }) => {
    const body = type === 0x1 ? concat(Uint8Array.of(INVALID_HPACK_INDEX), payload) : type === 0x9 ? payload.subarray(0, 0) : payload;
    const header = Buffer.alloc(9);
    header.writeUIntBE(Math.max(0, body.length + lengthDelta), 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(stream, 5);
    return concat(header, body);
  });
const h2Frames = fc
  .tuple(fc.boolean(), fc.array(h2Frame, { maxLength: 12 }))
  .map(([preface, frames]) => Buffer.concat([preface ? H2_PREFACE : latin1('PRI * HTTP/2.0\r\n'), ...frames]));
const rawCase: fc.Arbitrary<RawCase> = fc.oneof(
  { weight: 3, arbitrary: rawBytes.map((bytes) => ({ kind: 'raw' as const, to: 'mirror' as const, bytes })) },
  { weight: 1, arbitrary: h2Frames.map((bytes) => ({ kind: 'raw' as const, to: 'forwardauth-h2-tls' as const, bytes })) },
);

/** Nine requests in ten are HTTP on one of the six routes, one in ten raw bytes. */
export const requestCase: fc.Arbitrary<RequestCase> = fc.oneof({ weight: 9, arbitrary: httpCase }, { weight: 1, arbitrary: rawCase });

const ULID = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const snapshot = fc.record({
  attachment: fc.constantFrom('forwardAuth', 'mirror', 'plugin'),
  method: fc.oneof(method, fc.string({ minLength: 1, maxLength: 20 })),
  scheme: fc.constantFrom('http', 'https'),
  host: fc.string({ maxLength: 40 }),
  path: fc.string({ maxLength: 100 }),
  query: fc.string({ maxLength: 60 }),
  clientIp: fc.option(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 })), { nil: null }),
  headers: fc.dictionary(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('__proto__', 'constructor', 'host')), fc.array(fc.string({ maxLength: 80 }), { maxLength: 3 }), { maxKeys: 10 }),
  redactedHeaders: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
  cookies: fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'session')), fc.string({ maxLength: 40 }), { maxKeys: 5 }),
  body: fc.option(
    fc.tuple(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), fc.boolean()).map(([bytes, truncated, interrupted]) => {
      const text = Buffer.from(bytes).toString('utf8');
      const utf8 = Buffer.from(text, 'utf8').equals(Buffer.from(bytes));
      return {
        encoding: utf8 ? 'utf8' : 'base64',
        data: utf8 ? text : Buffer.from(bytes).toString('base64'),
        capturedBytes: bytes.length,
        declaredLength: bytes.length,
        receivedBytes: bytes.length,
        truncated,
        interrupted,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      };
    }),
    { nil: null },
  ),
});
const validEvent = fc.record({
  specversion: fc.constant('1.0'),
  id: fc.string({ unit: fc.constantFrom(...ULID.split('')), minLength: 26, maxLength: 26 }),
  source: fc.string({ minLength: 1, maxLength: 40 }),
  type: fc.constant(EVENT_TYPE),
  time: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  datacontenttype: fc.constant('application/json'),
  subject: fc.string({ maxLength: 80 }),
  data: snapshot,
});

// One change to a valid event that the contract refuses (or, for a few, may accept: the oracle decides).
type Json = Record<string, unknown>;
const dataOf = (e: Json) => e.data as { headers: Json; cookies: Json; body: unknown; attachment: string };
const MUTATIONS: Readonly<Record<string, (e: Json) => void>> = {
  'an unknown key': (e) => {
    e.extra = true;
  },
  'a header value not an array': (e) => {
    dataOf(e).headers.x = 'one';
  },
  'a __proto__ header not an array': (e) => {
    Object.defineProperty(dataOf(e).headers, '__proto__', { value: 'one', enumerable: true });
  },
  'a __proto__ cookie not a string': (e) => {
    Object.defineProperty(dataOf(e).cookies, '__proto__', { value: 7, enumerable: true });
  },
  'a negative capturedBytes': (e) => {
    dataOf(e).body = { encoding: 'utf8', data: '', capturedBytes: -1, declaredLength: null, receivedBytes: 0, truncated: false, interrupted: false, sha256: '0'.repeat(64) };
  },
  'an unknown attachment': (e) => {
    dataOf(e).attachment = 'carrier-pigeon';
  },
};
const mutation: fc.Arbitrary<{ name: string; apply: (e: Json) => void }> = fc.oneof(
  fc.constantFrom('specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'data').map((key) => ({
    name: `without ${key}`,
    apply: (e: Json) => {
      Reflect.deleteProperty(e, key);
    },
  })),
  fc.constantFrom('id', 'time', 'data', 'specversion', 'traceparent').map((key) => ({
    name: `${key} a number`,
    apply: (e: Json) => {
      e[key] = 42;
    },
  })),
  fc.constantFrom(...Object.keys(MUTATIONS)).map((name) => ({ name, apply: MUTATIONS[name] ?? (() => undefined) })),
);

const eventPayload: fc.Arbitrary<{ payload: Uint8Array; variant: string }> = fc.oneof(
  { weight: 6, arbitrary: validEvent.map((e) => ({ payload: new TextEncoder().encode(JSON.stringify(e)), variant: 'valid' })) },
  {
    weight: 3,
    arbitrary: fc.tuple(validEvent, mutation).map(([e, m]) => {
      const copy = structuredClone(e) as Json;
      m.apply(copy);
      return { payload: new TextEncoder().encode(JSON.stringify(copy)), variant: m.name };
    }),
  },
  { weight: 1, arbitrary: fc.json({ maxDepth: 5 }).map((s) => ({ payload: new TextEncoder().encode(s), variant: 'any JSON' })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((b) => ({ payload: b, variant: 'any bytes' })) },
  { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => ({ payload: new TextEncoder().encode('['.repeat(n) + ']'.repeat(n)), variant: `${n} nested arrays` })) },
);

export const eventCase: fc.Arbitrary<EventCase> = fc
  .tuple(fc.oneof(fc.constantFrom('GET', 'POST', '_OTHER'), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)), eventPayload)
  .map(([subjectToken, { payload, variant }]) => ({ kind: 'event' as const, subjectToken, payload, variant, valid: isValidEvent(payload) }));

/** Case `index` of a run: the same seed and index always give the same value. */
export function draw<T>(arbitrary: fc.Arbitrary<T>, seed: number, index: number): T {
  const [value] = fc.sample(arbitrary, { seed: (seed + index) | 0, numRuns: 1 });
  if (value === undefined) throw new Error('fast-check drew nothing');
  return value;
}

/**
 * The contract's verdict on a payload, as the dispatcher must reach it: UTF-8 JSON that MirrorEvent accepts, and (as
 * zod passes over a record key named __proto__) a header or cookie of that name of the right type.
 */
export function isValidEvent(payload: Uint8Array): boolean {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    return false;
  }
  if (!MirrorEvent.safeParse(raw).success) return false;
  const { headers, cookies } = (raw as MirrorEvent).data;
  const protoHeader: unknown = Object.hasOwn(headers, '__proto__') ? headers['__proto__'] : [];
  const protoCookie: unknown = Object.hasOwn(cookies, '__proto__') ? cookies['__proto__'] : '';
  return Array.isArray(protoHeader) && protoHeader.every((v) => typeof v === 'string') && typeof protoCookie === 'string';
}

/** A case as printed with a failure: bytes as base64 and as text, so it can be replayed or read. */
export function describeCase(c: RequestCase | EventCase): string {
  const text = (b: Uint8Array) => ({ base64: Buffer.from(b).toString('base64'), latin1: Buffer.from(b).toString('latin1').slice(0, 2000) });
  if (c.kind === 'http') return JSON.stringify({ ...c, body: c.body === null ? null : text(c.body) });
  if (c.kind === 'raw') return JSON.stringify({ kind: 'raw', to: c.to, bytes: text(c.bytes) });
  return JSON.stringify({ ...c, payload: text(c.payload) });
}

function latin1(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  return Buffer.concat([a, b]);
}

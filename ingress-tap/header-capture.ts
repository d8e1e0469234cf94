import { isUtf8 } from 'node:buffer';
import { parseCookie } from 'cookie';
import type { RequestSnapshot } from '../contract/event.ts';
import { REDACTED_BY_DEFAULT, type CaptureDecision } from './capture-policy.ts';

// The headers of a snapshot: the client's headers by lower-case name, every value of a repeated header in order
// (taken from rawHeaders, since IncomingMessage.headers joins or drops duplicates). Left out: hop-by-hop headers,
// which describe Traefik's connection to the tap, and X-Forwarded-*, which Traefik set and which the snapshot
// already carries as scheme, host, path and clientIp. Through forwardAuth the Host header names the tap (Go's
// client sets it from the auth address), so the client's Host is taken from X-Forwarded-Host instead. Over HTTP/2
// the pseudo-headers are left out too, and :authority stands in for a missing Host.
//
// Node hands header values over as Latin-1 strings, one character per byte received, so the bytes are all there. A
// value whose bytes are valid UTF-8 (ASCII included) is decoded as UTF-8: `X-Filename: résumé.pdf` sent as UTF-8
// reads `résumé.pdf`. When any value of a header is not UTF-8, every value of that header stays Latin-1 (each
// character U+0000–U+00FF is one byte, so `Buffer.from(value, 'latin1')` gives the bytes back) and the header is
// named in `latin1Headers`; for the Cookie header the same goes for the values in `cookies`. The plugin's snapshots
// are JSON, whose strings are text already (Go's encoding/json turned bytes that are not UTF-8 into U+FFFD), so
// their values are taken as they are.

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export interface HeaderCapture {
  readonly headers: Record<string, string[]>;
  /** Headers whose values are given as Latin-1 because one of them is not UTF-8; empty when all are. */
  readonly latin1Headers: string[];
  readonly redactedHeaders: string[];
  readonly cookies: Record<string, string>;
  readonly traceparent: string | undefined;
  /** True when a Cookie header had pairs the parser had to skip or values it could not decode. */
  readonly malformedCookie: boolean;
}

export function captureHeaders(
  rawHeaders: readonly string[],
  decision: CaptureDecision,
  attachment: RequestSnapshot['attachment'],
): HeaderCapture {
  const forwardAuth = attachment === 'forwardAuth';
  const headers = Object.create(null) as Record<string, string[]>;
  const redactedHeaders: string[] = [];
  let cookieHeader: string | undefined;
  let traceparent: string | undefined;
  let connectionTokens: string | undefined;
  let authority: string | undefined;
  let nonAscii = false;
  // HTTP/2 pseudo-headers come before all others; a request with none is HTTP/1.x.
  const http2 = rawHeaders[0]?.startsWith(':') === true;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    if (!nonAscii && NON_ASCII.test(value)) nonAscii = true;
    if (name.startsWith(':')) {
      // The request line of HTTP/2 (:method, :path, :scheme), already in the snapshot; :authority is its Host.
      if (name === ':authority' && !forwardAuth) authority = value;
      continue;
    }
    if (HOP_BY_HOP.has(name)) {
      if (name === 'connection') connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`;
      continue;
    }
    if (forwardAuth && name === 'host') continue;
    if (name.startsWith('x-forwarded-')) {
      if (forwardAuth && name === 'x-forwarded-host' && headers.host === undefined) headers.host = [value];
      continue;
    }
    if (name === 'cookie') cookieHeader = cookieHeader === undefined ? value : `${cookieHeader}; ${value}`;
    else if (name === 'traceparent' && traceparent === undefined) traceparent = value;
    if (REDACTED_BY_DEFAULT.has(name) && !decision.revealHeaders.has(name)) {
      if (!redactedHeaders.includes(name)) redactedHeaders.push(name);
      continue;
    }
    const values = headers[name];
    if (values === undefined) headers[name] = [value];
    // HTTP/2 clients (Go's among them) may split Cookie into one field per pair; RFC 9113 section 8.2.3 joins them
    // back, so a revealed Cookie reads the same whichever protocol carried it.
    else if (http2 && name === 'cookie') values[0] = `${values[0] as string}; ${value}`;
    else values.push(value);
  }
  if (authority !== undefined && headers.host === undefined) headers.host = [authority];
  // Headers named in Connection are hop-by-hop for this one request (RFC 9110 section 7.6.1).
  if (connectionTokens !== undefined) {
    for (const token of connectionTokens.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '' && !REDACTED_BY_DEFAULT.has(name)) Reflect.deleteProperty(headers, name);
    }
  }
  const latin1Headers: string[] = [];
  if (nonAscii && attachment !== 'plugin') {
    for (const name in headers) {
      const decoded = utf8Values(headers[name] as string[]);
      if (decoded === null) latin1Headers.push(name);
      else headers[name] = decoded;
    }
    if (cookieHeader !== undefined) {
      const decoded = utf8Values([cookieHeader]);
      if (decoded === null) {
        if (!latin1Headers.includes('cookie')) latin1Headers.push('cookie');
      } else cookieHeader = decoded[0];
    }
  }
  const { cookies, malformed } = allowedCookies(cookieHeader, decision.cookieNames);
  return {
    headers,
    latin1Headers,
    redactedHeaders,
    cookies,
    traceparent: traceparent !== undefined && isValidTraceparent(traceparent) ? traceparent : undefined,
    malformedCookie: malformed,
  };
}

// A byte past 0x7F, as Node's Latin-1 strings hold it (they never hold a character past U+00FF).
const NON_ASCII = /[\u0080-\u00ff]/;

/** The values decoded from UTF-8, or null when the bytes of one of them are not UTF-8. */
function utf8Values(values: readonly string[]): string[] | null {
  const decoded: string[] = [];
  for (const value of values) {
    if (!NON_ASCII.test(value)) {
      decoded.push(value);
      continue;
    }
    const bytes = Buffer.from(value, 'latin1');
    if (!isUtf8(bytes)) return null;
    decoded.push(bytes.toString('utf8'));
  }
  return decoded;
}

function allowedCookies(header: string | undefined, names: ReadonlySet<string>): { cookies: Record<string, string>; malformed: boolean } {
  const cookies = Object.create(null) as Record<string, string>;
  if (header === undefined || names.size === 0) return { cookies, malformed: false };
  // An object, not a let: the decode callback sets it, which control-flow analysis cannot see.
  const seen = { malformed: false };
  // cookie's parseCookie throws nothing for a string: it skips what it cannot read, and decode errors are caught here.
  const parsed = parseCookie(header, {
    decode(value) {
      if (!value.includes('%')) return value;
      try {
        return decodeURIComponent(value);
      } catch {
        seen.malformed = true;
        return value;
      }
    },
  });
  for (const name of names) {
    const value = parsed[name];
    if (value !== undefined) cookies[name] = value;
  }
  // The parser skips a pair without "=" silently; count it, since a client sending one is worth knowing about.
  if (!seen.malformed) {
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (pair.trim() !== '' && (eq === -1 || pair.slice(0, eq).trim() === '')) {
        seen.malformed = true;
        break;
      }
    }
  }
  return { cookies, malformed: seen.malformed };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/;

// W3C Trace Context: version ff is invalid, all-zero trace and parent ids are invalid, and version 00 has no
// trailing fields.
function isValidTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  if (!m) return false;
  const [, version, traceId, parentId, rest] = m;
  if (version === 'ff' || /^0+$/.test(traceId as string) || /^0+$/.test(parentId as string)) return false;
  return !(version === '00' && rest !== undefined);
}

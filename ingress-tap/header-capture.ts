import { parseCookie } from 'cookie';
import { REDACTED_BY_DEFAULT, type CaptureDecision } from './capture-policy.ts';
import type { Attachment } from './forwarded-request.ts';

// The headers of a snapshot: the client's headers by lower-case name, every value of a repeated header in order
// (taken from rawHeaders, since IncomingMessage.headers joins or drops duplicates). Left out: hop-by-hop headers,
// which describe Traefik's connection to the tap, and X-Forwarded-*, which Traefik set and which the snapshot
// already carries as scheme, host, path and clientIp. Through forwardAuth the Host header names the tap (Go's
// client sets it from the auth address), so the client's Host is taken from X-Forwarded-Host instead. Over HTTP/2
// the pseudo-headers are left out too, and :authority stands in for a missing Host.

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
  readonly redactedHeaders: string[];
  readonly cookies: Record<string, string>;
  readonly traceparent: string | undefined;
  /** True when a Cookie header had pairs the parser had to skip or values it could not decode. */
  readonly malformedCookie: boolean;
}

export function captureHeaders(
  rawHeaders: readonly string[],
  decision: CaptureDecision,
  attachment: Attachment,
): HeaderCapture {
  const forwardAuth = attachment === 'forwardAuth';
  const headers = Object.create(null) as Record<string, string[]>;
  const redactedHeaders: string[] = [];
  let cookieHeader: string | undefined;
  let traceparent: string | undefined;
  let connectionTokens: string | undefined;
  let authority: string | undefined;
  // HTTP/2 pseudo-headers come before all others; a request with none is HTTP/1.x.
  const http2 = rawHeaders[0]?.startsWith(':') === true;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
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
  const { cookies, malformed } = allowedCookies(cookieHeader, decision.cookieNames);
  return {
    headers,
    redactedHeaders,
    cookies,
    traceparent: traceparent !== undefined && isValidTraceparent(traceparent) ? traceparent : undefined,
    malformedCookie: malformed,
  };
}

function allowedCookies(header: string | undefined, names: ReadonlySet<string>): { cookies: Record<string, string>; malformed: boolean } {
  const cookies = Object.create(null) as Record<string, string>;
  if (header === undefined || names.size === 0) return { cookies, malformed: false };
  // An object, not a let: the decode callback sets it, which control-flow analysis cannot see.
  const seen = { malformed: false };
  let parsed: Record<string, string | undefined>;
  try {
    parsed = parseCookie(header, {
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
  } catch {
    return { cookies, malformed: true };
  }
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

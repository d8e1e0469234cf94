import type { RequestSnapshot } from '../contract/event.ts';
import { canonicalHost } from '../contract/host.ts';
import type { TapRequest } from './request-handler.ts';

// Rebuilds the request line of the client's original request. Through forwardAuth the tap sees Traefik's GET to
// the auth address, and the original method, scheme, host and URI arrive as X-Forwarded-* headers (set by Traefik,
// or by a proxy in its entrypoint's forwardedHeaders.trustedIPs: the entrypoint deletes any others, so a client
// cannot forge them). Through Mirroring the request the tap receives is the original one.

/** How Traefik calls one of the tap's listeners; the plugin's snapshots come through their own ingest (plugin-ingest.ts). */
export type Attachment = Exclude<RequestSnapshot['attachment'], 'plugin'>;

export interface OriginalRequest {
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly path: string;
  readonly query: string;
  readonly clientIp: string | null;
}

export function originalRequest(req: TapRequest, attachment: Attachment): OriginalRequest {
  const h = req.headers;
  const scheme = schemeOf(first(h['x-forwarded-proto']));
  const forwardAuth = attachment === 'forwardAuth';
  const method = (forwardAuth ? nonEmpty(h['x-forwarded-method']) : undefined) ?? req.method ?? 'GET';
  // An HTTP/2 request names its host in :authority; a Host header, if one came too, wins as over HTTP/1.1.
  const host = (forwardAuth ? nonEmpty(h['x-forwarded-host']) : undefined) ?? h.host ?? first(h[':authority']) ?? '';
  const uri = (forwardAuth ? nonEmpty(h['x-forwarded-uri']) : undefined) ?? req.url ?? '/';
  const q = uri.indexOf('?');
  return {
    method,
    scheme,
    host: canonicalHost(host),
    path: q === -1 ? uri : uri.slice(0, q),
    query: q === -1 ? '' : uri.slice(q + 1),
    clientIp: clientIpOf(first(h['x-forwarded-for']), req.socket.remoteAddress),
  };
}

// An empty X-Forwarded value is as good as none (Traefik never sends one; something else did).
function nonEmpty(value: string | string[] | undefined): string | undefined {
  const v = first(value);
  return v === undefined || v === '' ? undefined : v;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

// Traefik reports a WebSocket upgrade as ws/wss; the snapshot's scheme is the HTTP one underneath.
function schemeOf(proto: string | undefined): 'http' | 'https' {
  if (proto === undefined) return 'http';
  const p = proto.toLowerCase();
  return p === 'https' || p === 'wss' ? 'https' : 'http';
}

// Node joins repeated X-Forwarded-For headers with ", "; the first entry is the client Traefik saw.
function clientIpOf(forwardedFor: string | undefined, peer: string | undefined): string | null {
  if (forwardedFor !== undefined) {
    const comma = forwardedFor.indexOf(',');
    const ip = (comma === -1 ? forwardedFor : forwardedFor.slice(0, comma)).trim();
    if (ip !== '') return ip;
  }
  return peer ?? null;
}

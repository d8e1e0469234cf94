import type { PluginSnapshot } from '../contract/plugin-batch.ts';
import { originalRequest, type OriginalRequest } from './forwarded-request.ts';
import type { TapRequest } from './request-handler.ts';

// The request line of a plugin snapshot, read by the same code that reads the request a Mirroring tap receives
// (forwarded-request.ts): host and port normalisation, scheme from X-Forwarded-Proto, client address from the first
// X-Forwarded-For entry or the peer. The snapshot is presented as the fields of an HTTP/1.1 request that
// originalRequest reads; its headers are Go's canonical names, which Node would have lower-cased.

export function originalOfSnapshot(snapshot: PluginSnapshot): OriginalRequest {
  const headers: Record<string, string> = {};
  const h = snapshot.headers;
  for (let i = 0; i + 1 < h.length; i += 2) {
    const name = (h[i] as string).toLowerCase();
    if (name !== 'host' && name !== 'x-forwarded-for') continue;
    const value = h[i + 1] as string;
    // As Node does: one Host, repeated X-Forwarded-For joined with ", ".
    if (headers[name] === undefined) headers[name] = value;
    else if (name === 'x-forwarded-for') headers[name] = `${headers[name]}, ${value}`;
  }
  if (snapshot.scheme !== '') headers['x-forwarded-proto'] = snapshot.scheme;
  const req = {
    method: snapshot.method,
    url: snapshot.uri,
    headers,
    httpVersionMajor: 1,
    socket: { remoteAddress: snapshot.remoteIp === '' ? undefined : snapshot.remoteIp },
  };
  return originalRequest(req as unknown as TapRequest, 'mirror');
}

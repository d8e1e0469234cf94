import { connect as http2Connect, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import type { HttpCase, RawCase, Route } from './inputs.ts';

// How each route's request leaves the harness: undici for HTTP/1.1 (plain or TLS) and HTTP/2 over TLS, Node's own
// HTTP/2 client for h2c to Traefik (undici speaks HTTP/2 only over TLS), a socket for raw bytes. What a client
// library refuses to send (a method or header it deems invalid) is not sent, and counted as such.

/**
 * An answer; `refused` when the client library would not send the request at all; `reset` when the server reset the
 * HTTP/2 stream instead of answering (Go's server, Traefik's, resets with PROTOCOL_ERROR a request whose :path is
 * not a valid request target, where over HTTP/1.1 it answers 400).
 */
export type Outcome = { readonly status: number; readonly tapId: boolean } | { readonly refused: string } | { readonly reset: number };

export interface SenderTargets {
  readonly traefikUrl: string;
  readonly tapForwardAuthTlsUrl: string;
  readonly tapMirrorUrl: string;
  readonly tapMirrorPort: number;
  /** PEM the tap's forwardAuth certificate is signed with. */
  readonly ca: string;
  /** Host names of the two Traefik routers. */
  readonly forwardAuthHost: string;
  readonly mirrorHost: string;
}

export interface Senders {
  send(c: HttpCase): Promise<Outcome>;
  raw(c: RawCase): Promise<string>;
  close(): Promise<void>;
}

// Hop-by-hop and framing headers: the client libraries set them from the body or refuse them.
const FRAMING = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect', 'host', 'content-length', 'proxy-connection', 'http2-settings']);
const RAW_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export function createSenders(t: SenderTargets, connections: number): Senders {
  const plain = new Agent({ connections, allowH2: false, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  // undici offers h2 by ALPN unless told not to (its ALPNProtocols option does not stop it).
  const tlsH1 = new Agent({ connections, allowH2: false, connect: { ca: t.ca }, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const tlsH2 = new Agent({ allowH2: true, connect: { ca: t.ca }, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  let h2c: ClientHttp2Session | undefined;
  const session = () => {
    if (!h2c || h2c.closed || h2c.destroyed) {
      const s = http2Connect(t.traefikUrl);
      s.on('error', () => undefined);
      s.on('goaway', () => {
        s.close();
      });
      h2c = s;
    }
    return h2c;
  };

  const viaUndici = async (agent: Agent, base: string, host: string | null, c: HttpCase): Promise<Outcome> => {
    const headers: [string, string][] = c.headers.filter(([k]) => !FRAMING.has(k)).map(([k, v]) => [k, v]);
    if (host) headers.push(['host', host]);
    const body = c.body;
    const sendsBody = c.method !== 'HEAD' && c.method !== 'CONNECT';
    try {
      const res = await request(`${base}${c.path}`, {
        dispatcher: agent,
        method: c.method as 'GET',
        headers: headers.flat(),
        body: body !== null && sendsBody ? (c.streamed ? Readable.from(chunks(body)) : Buffer.from(body)) : null,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await res.body.dump();
      return { status: res.statusCode, tapId: res.headers['x-request-mirror-id'] !== undefined };
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED' || (error instanceof TypeError && !code)) return { refused: `${code ?? 'TypeError'}: ${(error as Error).message}` };
      throw error;
    }
  };

  const viaH2c = (host: string, c: HttpCase): Promise<Outcome> => {
    const headers: OutgoingHttpHeaders = { ':method': c.method, ':path': c.path, ':authority': host };
    for (const [k, v] of c.headers) {
      if (FRAMING.has(k)) continue;
      const prev = headers[k];
      headers[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [String(prev)]), v];
    }
    return new Promise((resolve, reject) => {
      let stream;
      try {
        stream = session().request(headers, { endStream: c.body === null });
      } catch (error) {
        resolve({ refused: `${(error as { code?: string }).code ?? 'Error'}: ${(error as Error).message}` });
        return;
      }
      let status = 0;
      let tapId = false;
      stream.setTimeout(REQUEST_TIMEOUT_MS, () => {
        stream.close();
      });
      stream.on('response', (h) => {
        status = Number(h[':status']);
        tapId = h['x-request-mirror-id'] !== undefined;
      });
      stream.on('data', () => undefined);
      let streamError: Error | undefined;
      stream.on('error', (error: Error) => {
        streamError = error;
      });
      stream.on('close', () => {
        if (status) resolve({ status, tapId });
        else if (stream.rstCode !== constants.NGHTTP2_NO_ERROR) resolve({ reset: stream.rstCode });
        else reject(streamError ?? new Error('HTTP/2 stream closed without an answer'));
      });
      if (c.body !== null) {
        if (c.streamed && c.body.length > 1) {
          const half = Math.floor(c.body.length / 2);
          stream.write(c.body.subarray(0, half));
          stream.end(c.body.subarray(half));
        } else stream.end(c.body);
      }
    });
  };

  const routes: Record<Route, (c: HttpCase) => Promise<Outcome>> = {
    'traefik-forwardauth-h1': (c) => viaUndici(plain, t.traefikUrl, t.forwardAuthHost, c),
    'traefik-forwardauth-h2c': (c) => viaH2c(t.forwardAuthHost, c),
    'traefik-mirror-h1': (c) => viaUndici(plain, t.traefikUrl, t.mirrorHost, c),
    'tap-forwardauth-h1-tls': (c) => viaUndici(tlsH1, t.tapForwardAuthTlsUrl, null, c),
    'tap-forwardauth-h2-tls': (c) => viaUndici(tlsH2, t.tapForwardAuthTlsUrl, null, c),
    'tap-mirror-h1': (c) => viaUndici(plain, t.tapMirrorUrl, null, c),
  };

  return {
    send: (c) => routes[c.route](c),
    raw: (c) => (c.to === 'mirror' ? rawExchange(() => netConnect(t.tapMirrorPort, '127.0.0.1'), c.bytes) : rawExchange(() => tlsConnect({ host: '127.0.0.1', port: Number(new URL(t.tapForwardAuthTlsUrl).port), ca: t.ca, ALPNProtocols: ['h2'] }), c.bytes)),
    async close() {
      h2c?.close();
      await Promise.all([plain.close(), tlsH1.close(), tlsH2.close()]);
    },
  };
}

function* chunks(body: Uint8Array): Generator<Buffer> {
  for (let i = 0; i < body.length; i += 1024) yield Buffer.from(body.subarray(i, i + 1024));
}

/** Writes `bytes`, half-closes, and returns everything the tap wrote back until it closed (latin1). */
function rawExchange(open: () => Socket, bytes: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = open();
    const received: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the tap neither answered nor closed within ${RAW_TIMEOUT_MS} ms`));
    }, RAW_TIMEOUT_MS);
    socket.on('data', (c: Buffer) => received.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received).toString('latin1'));
    });
    socket.end(bytes);
  });
}

import type { TapRequest } from './request-handler.ts';

// Streams a request body, keeping at most `limit` bytes and counting the rest. Traefik may send a body with any
// method, GET included (forwardAuth with forwardBody: true), so this reads the raw stream rather than relying on
// fastify's parsers, which never run for GET and HEAD.

export interface CapturedBody {
  readonly bytes: Buffer;
  readonly receivedBytes: number;
  readonly declaredLength: number | null;
}

/**
 * Calls `done` once the body has ended (never synchronously): with the captured body, or null when `limit` is 0
 * (the body is drained unread); with `aborted` true when the client went away before the body ended.
 */
export function captureBody(req: TapRequest, limit: number, done: (body: CapturedBody | null, aborted: boolean) => void): void {
  // An 'error' without a listener would crash the process; a reset mid-body is the client's business.
  req.on('error', noop);
  let settled = false;
  const abort = () => {
    if (settled) return;
    settled = true;
    done(null, true);
  };
  req.once('close', abort);
  // Once a request has been answered, Node no longer tells it when the connection breaks off mid-body; the socket
  // does. Listening only until the body ends keeps keep-alive sockets from collecting listeners.
  const socket = req.complete ? null : req.socket;
  socket?.once('close', abort);
  req.once('end', () => socket?.off('close', abort));
  if (limit === 0) {
    req.once('end', () => {
      settled = true;
      done(null, false);
    });
    req.resume();
    return;
  }
  const chunks: Buffer[] = [];
  let captured = 0;
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (captured < limit) {
      const keep = Math.min(chunk.length, limit - captured);
      chunks.push(keep === chunk.length ? chunk : chunk.subarray(0, keep));
      captured += keep;
    }
  });
  req.once('end', () => {
    settled = true;
    const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, captured);
    done({ bytes, receivedBytes: received, declaredLength: declaredLength(req) }, false);
  });
}

function declaredLength(req: TapRequest): number | null {
  const value = req.headers['content-length'];
  if (value === undefined) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function noop(): void {}

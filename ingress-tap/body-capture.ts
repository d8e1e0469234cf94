import { StreamRequest } from './h2-stream.ts';
import type { TapRequest } from './request-handler.ts';

// Streams a request body, keeping at most `limit` bytes. Traefik may send a body with any method, GET included
// (forwardAuth with forwardBody: true), so this reads the raw stream rather than relying on fastify's parsers,
// which never run for GET and HEAD.
//
// The capture is complete as soon as the tap has all it will keep: at the body's end, or once more than `limit`
// bytes have arrived. The handler answers Traefik only then, because Traefik's client stops sending a body once it
// has its answer: Go's transport closes a connection whose request body is still being written 50 ms after the
// response (net/http transport.go, maxWriteWaitBeforeConnReuse), and forwardAuth cancels the call's context when
// the user's request ends. Answering first lost the events of large forwardBody uploads.

export interface CapturedBody {
  readonly bytes: Buffer;
  /** Bytes that had arrived when the capture completed; more than `bytes.length` when the body was cut. */
  readonly receivedBytes: number;
  readonly declaredLength: number | null;
  /** True when the body broke off before its end and before the limit: `bytes` is all that arrived. */
  readonly interrupted: boolean;
}

/**
 * Calls `done` exactly once, never synchronously, when the capture is complete: at the body's end, as soon as
 * more than `limit` bytes (≥ 1) have arrived (the rest is then drained unread), or when the body breaks off
 * (the client, or Traefik, went away mid-body: `interrupted`).
 */
export function captureBody(req: TapRequest, limit: number, done: (body: CapturedBody) => void): void {
  // An 'error' without a listener would crash the process; a reset mid-body is the sender's business.
  req.on('error', noop);
  const chunks: Buffer[] = [];
  let captured = 0;
  let received = 0;
  let settled = false;
  const settle = (interrupted: boolean) => {
    if (settled) return;
    settled = true;
    req.off('data', onData);
    socket?.off('close', onBreak);
    const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, captured);
    chunks.length = 0;
    done({ bytes, receivedBytes: received, declaredLength: declaredLength(req), interrupted });
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    const keep = Math.min(chunk.length, limit - captured);
    if (keep > 0) {
      chunks.push(keep === chunk.length ? chunk : chunk.subarray(0, keep));
      captured += keep;
    }
    // More than the limit arrived: what follows would only be counted, and the event need not wait for it.
    if (received > limit) settle(false);
  };
  const onBreak = () => {
    settle(true);
  };
  req.on('data', onData);
  req.once('end', () => {
    settle(false);
  });
  req.once('close', onBreak);
  // A stream reset mid-body still ends its readable side: Node pushes the end as it closes the stream, just after
  // 'aborted' (node lib/internal/http2/core.js, onStreamClose).
  if (req instanceof StreamRequest) req.once('aborted', onBreak);
  // After an answer, Node no longer tells an HTTP/1.1 request when its connection breaks off mid-body; the socket
  // does. Listening only until the capture completes keeps keep-alive sockets from collecting listeners. An HTTP/2
  // stream closes when its connection does.
  const socket = req instanceof StreamRequest || req.complete ? null : req.socket;
  socket?.once('close', onBreak);
  // Once settled the rest of the body is drained: the data listener is gone, so keep the stream flowing.
  req.resume();
}

function declaredLength(req: TapRequest): number | null {
  const value = req.headers['content-length'];
  if (value === undefined) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function noop(): void {}

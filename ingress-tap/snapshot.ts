import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { keptLength } from '../contract/body-cut.ts';
import { EVENT_TYPE, type Body, type MirrorEvent, type RequestSnapshot } from '../contract/event.ts';
import type { CapturedBody } from './body-capture.ts';
import type { OriginalRequest } from './forwarded-request.ts';
import type { HeaderCapture } from './header-capture.ts';

// Builds the CloudEvent for one request and serializes it within the NATS server's max_payload. The event is
// built to match contract/event.ts by construction; it is not validated at run time (the tests do that), because
// validation would cost more than everything else on the path.

export interface EventParts {
  readonly id: string;
  readonly time: number;
  readonly source: string;
  readonly attachment: RequestSnapshot['attachment'];
  readonly original: OriginalRequest;
  readonly headers: HeaderCapture;
  readonly body: CapturedBody | null;
}

export function buildEvent(parts: EventParts): MirrorEvent {
  const { original, headers } = parts;
  const event: MirrorEvent = {
    specversion: '1.0',
    id: parts.id,
    source: parts.source,
    type: EVENT_TYPE,
    time: new Date(parts.time).toISOString(),
    datacontenttype: 'application/json',
    subject: `${original.host}${original.path}`,
    // Before data, so a reader of the JSON meets every CloudEvents attribute first.
    ...(headers.traceparent === undefined ? {} : { traceparent: headers.traceparent }),
    data: {
      attachment: parts.attachment,
      method: original.method,
      scheme: original.scheme,
      host: original.host,
      path: original.path,
      query: original.query,
      clientIp: original.clientIp,
      headers: headers.headers,
      ...(headers.latin1Headers.length === 0 ? {} : { latin1Headers: headers.latin1Headers }),
      redactedHeaders: headers.redactedHeaders,
      cookies: headers.cookies,
      body: parts.body === null ? null : bodyOf(keptBytes(parts.body), parts.body),
    },
  };
  return event;
}

/** The captured bytes, cut back by the contract's rule when the capture limit cut the body (more was received). */
export function keptBytes(body: CapturedBody): Buffer {
  const { bytes } = body;
  return body.receivedBytes > bytes.length ? bytes.subarray(0, keptLength(bytes)) : bytes;
}

// Most requests (GETs, forwardAuth without forwardBody) have an empty body; hashing nothing costs a Hash object.
const EMPTY_SHA256 = createHash('sha256').digest('hex');

export function bodyOf(bytes: Buffer, body: Pick<CapturedBody, 'receivedBytes' | 'declaredLength' | 'interrupted'>): Body {
  if (bytes.length === 0) {
    return {
      encoding: 'utf8',
      data: '',
      capturedBytes: 0,
      declaredLength: body.declaredLength,
      receivedBytes: body.receivedBytes,
      truncated: body.receivedBytes > 0 || body.interrupted,
      interrupted: body.interrupted,
      sha256: EMPTY_SHA256,
    };
  }
  const utf8 = isUtf8(bytes);
  return {
    encoding: utf8 ? 'utf8' : 'base64',
    data: bytes.toString(utf8 ? 'utf8' : 'base64'),
    capturedBytes: bytes.length,
    declaredLength: body.declaredLength,
    receivedBytes: body.receivedBytes,
    truncated: body.receivedBytes > bytes.length || body.interrupted,
    interrupted: body.interrupted,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

export interface EncodedEvent {
  readonly payload: Buffer;
  /** True when the body was cut further to fit max_payload. */
  readonly cut: boolean;
}

/**
 * Serializes the event; when it exceeds `maxPayload` bytes, cuts the body (marking it truncated) until it fits, keeping
 * a text body text (contract/body-cut.ts `keptLength`). Null only when even an empty body does not fit, i.e. the
 * headers alone are too large. Rewrites `event.data.body` as it goes: only the payload is meant to be used.
 */
export function encodeEvent(event: MirrorEvent, captured: CapturedBody | null, maxPayload: number): EncodedEvent | null {
  let payload: Buffer = Buffer.from(JSON.stringify(event));
  if (payload.length <= maxPayload) return { payload, cut: false };
  const body = event.data.body;
  if (captured === null || body === null) return null;
  const encodeKeeping = (keep: number): Buffer => {
    event.data.body = bodyOf(captured.bytes.subarray(0, keptLength(captured.bytes.subarray(0, keep))), captured);
    return Buffer.from(JSON.stringify(event));
  };
  // A few passes that estimate how many captured bytes the overflow is worth, from the body's average JSON cost per
  // byte. They converge slowly when the cut-off part costs far less than the average: 565 escaped characters before
  // 43,500 plain ones did not settle in 8 passes, and the event was dropped as too large
  // (test/ingress-tap/nats-limits.test.ts). Bisection finishes what the estimates leave.
  let keep = body.capturedBytes;
  for (let pass = 0; pass < ESTIMATE_PASSES && keep > 0; pass++) {
    const current = event.data.body as Body;
    const over = payload.length - maxPayload;
    const bytesPerCaptured = Math.max(1, Buffer.byteLength(JSON.stringify(current.data)) / Math.max(1, current.capturedBytes));
    keep = Math.max(0, keep - Math.ceil(over / bytesPerCaptured) - 16);
    payload = encodeKeeping(keep);
    if (payload.length <= maxPayload) return { payload, cut: true };
  }
  // Bisection over [fits, tooLarge): a body of `keep` bytes does not fit; an empty one either fits or nothing does.
  let fits = 0;
  let tooLarge = keep;
  let best = encodeKeeping(0);
  if (best.length > maxPayload) return null;
  while (tooLarge - fits > 1) {
    const mid = fits + Math.floor((tooLarge - fits) / 2);
    const candidate = encodeKeeping(mid);
    if (candidate.length <= maxPayload) {
      fits = mid;
      best = candidate;
    } else {
      tooLarge = mid;
    }
  }
  return { payload: best, cut: true };
}

// Estimation passes before bisection. Each costs one serialization of the event, as does each bisection step (up to
// 20 for a 1 MiB body).
const ESTIMATE_PASSES = 3;

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { requestSubject } from '../contract/subjects.ts';
import { captureBody, type CapturedBody } from './body-capture.ts';
import type { CaptureDecision, CapturePolicy } from './capture-policy.ts';
import { EventTooLargeError, RejectedInputError } from './errors.ts';
import { originalRequest, type Attachment, type OriginalRequest } from './forwarded-request.ts';
import { captureHeaders } from './header-capture.ts';
import type { TapMetrics } from './metrics.ts';
import type { Publisher } from './publisher.ts';
import { buildEvent, encodeEvent } from './snapshot.ts';

// The tap's one job per request: answer 200 at once, then snapshot and publish. Nothing before the answer waits
// on I/O; the body is read and the event built and published after the 200 is written, so neither a slow body
// nor NATS can delay the user's request.

/** A request from the plain HTTP/1.1 listener, or from the TLS one (HTTP/2 through Node's compatibility API, or HTTP/1.1). */
export type TapRequest = IncomingMessage | Http2ServerRequest;
export type TapResponse = ServerResponse | Http2ServerResponse;

export interface RequestHandlerDeps {
  readonly policy: CapturePolicy;
  readonly publisher: Publisher;
  readonly metrics: TapMetrics;
  readonly logger: Logger;
  /** CloudEvents `source`, naming this tap instance. */
  readonly source: string;
  readonly newId: (time: number) => string;
  readonly now: () => number;
}

export interface RequestHandler {
  handle(req: TapRequest, res: TapResponse, attachment: Attachment): void;
  /** Counts and logs a malformed request that is being answered 200 anyway. */
  rejected(reason: string, detail: unknown): void;
  setPolicy(policy: CapturePolicy): void;
  /** True while a request on this socket has been answered and its body is still arriving. */
  answeredMidBody(socket: Socket): boolean;
}

const EMPTY_OK = { 'content-length': '0' };

export function createRequestHandler(deps: RequestHandlerDeps): RequestHandler {
  const { publisher, metrics, logger, source, newId, now } = deps;
  let policy = deps.policy;
  const midBody = new WeakSet<Socket>();
  // Labelled children resolved once: prom-client hashes the label set on every labelled call otherwise.
  const perAttachment = {
    forwardAuth: attachmentMetrics(metrics, 'forwardAuth'),
    mirror: attachmentMetrics(metrics, 'mirror'),
  };

  function rejected(reason: string, detail: unknown): void {
    metrics.rejectedInput.inc({ reason });
    // Checked first: building the error captures a stack, too dear for a flood of junk requests.
    if (logger.isLevelEnabled('debug')) {
      logger.debug({ err: new RejectedInputError(reason, { cause: detail }), reason }, 'malformed request answered 200');
    }
  }

  function publishEvent(
    attachment: Attachment,
    id: string,
    time: number,
    subject: string,
    original: OriginalRequest,
    decision: CaptureDecision,
    rawHeaders: string[],
    body: CapturedBody | null,
  ): void {
    const headers = captureHeaders(rawHeaders, decision, attachment);
    if (headers.malformedCookie) rejected('malformed_cookie', undefined);
    if (body !== null && body.receivedBytes > body.bytes.length) metrics.truncated.inc({ reason: 'limit' });
    const maxPayload = publisher.maxPayload();
    if (maxPayload === 0) {
      countOutcome(publisher.publish(subject, EMPTY_PAYLOAD));
      return;
    }
    const encoded = encodeEvent(buildEvent({ id, time, source, attachment, original, headers, body }), body, maxPayload);
    if (encoded === null) {
      logger.warn({ err: new EventTooLargeError(`event ${id} exceeds max_payload ${maxPayload} without its body`) }, 'event dropped');
      countOutcome('event_too_large');
      return;
    }
    if (encoded.cut) metrics.truncated.inc({ reason: 'max_payload' });
    countOutcome(publisher.publish(subject, encoded.payload));
  }

  // The publisher counts what it publishes; what it refuses, or never got, is counted here.
  function countOutcome(outcome: ReturnType<Publisher['publish']>): void {
    if (outcome !== 'queued') metrics.dropped.inc({ reason: outcome });
  }

  return {
    rejected,
    setPolicy(next) {
      policy = next;
    },
    answeredMidBody: (socket) => midBody.has(socket),
    handle(req, res, attachment) {
      const started = performance.now();
      const time = now();
      const counted = perAttachment[attachment];
      counted.received.inc();
      const original = originalRequest(req, attachment);
      const decision = policy.decide(original);
      if (decision === null) {
        req.on('error', noop);
        req.resume();
        answer(res, EMPTY_OK);
        if (!req.complete) {
          const socket = req.socket;
          midBody.add(socket);
          req.once('end', () => midBody.delete(socket));
        }
        counted.skipped.inc();
        counted.handlingSeconds.observe((performance.now() - started) / 1000);
        return;
      }
      const id = newId(time);
      const subject = requestSubject(policy.subjectPrefix, original.method);
      // Listening before answering: Node discards an unread request body once the response has finished.
      const socket = req.socket;
      captureBody(req, decision.bodyLimit, (body, aborted) => {
        midBody.delete(socket);
        if (aborted) {
          metrics.dropped.inc({ reason: 'request_aborted' });
          return;
        }
        try {
          publishEvent(attachment, id, time, subject, original, decision, req.rawHeaders, body);
        } catch (error) {
          metrics.publishErrors.inc();
          metrics.dropped.inc({ reason: 'publish_error' });
          logger.error({ err: error, id }, 'building or publishing an event failed');
        }
      });
      answer(res, { 'content-length': '0', 'x-request-mirror-id': id });
      if (!req.complete) midBody.add(socket);
      counted.handlingSeconds.observe((performance.now() - started) / 1000);
    },
  };
}

function noop(): void {}

// The same call on both response kinds; TypeScript cannot call the union of their writeHead overloads.
function answer(res: TapResponse, headers: Record<string, string>): void {
  if ('stream' in res) res.writeHead(200, headers).end();
  else res.writeHead(200, headers).end();
}

function attachmentMetrics(metrics: TapMetrics, attachment: Attachment) {
  return {
    received: metrics.received.labels(attachment),
    skipped: metrics.skipped.labels(attachment),
    handlingSeconds: metrics.handlingSeconds.labels(attachment),
  };
}

// Stands in for the event while disconnected: the publisher drops it before looking at the bytes, so building the
// real event would be wasted work during an outage.
const EMPTY_PAYLOAD = new Uint8Array(0);

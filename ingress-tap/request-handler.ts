import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { requestSubject } from '../contract/subjects.ts';
import { captureBody, type CapturedBody } from './body-capture.ts';
import type { CaptureDecision, CapturePolicy } from './capture-policy.ts';
import { BuildQueueFullError, RejectedInputError } from './errors.ts';
import { publishEvent } from './event-output.ts';
import { originalRequest, type Attachment, type OriginalRequest } from './forwarded-request.ts';
import { StreamRequest } from './h2-stream.ts';
import { captureHeaders } from './header-capture.ts';
import type { TapMetrics } from './metrics.ts';
import type { Publisher } from './publisher.ts';

// The tap's one job per request: answer 200, then snapshot and publish. Nothing before the answer waits on NATS
// or any other I/O but the request's own body, and that only up to what the tap keeps of it (body-capture.ts:
// Traefik stops sending a body once answered). Events are built in one pass per event-loop turn (setImmediate,
// after the turn's I/O callbacks), so every request that arrived in a turn is answered before any of its events is
// built.

/** An HTTP/1.1 request, from either listener, or an HTTP/2 one from the TLS listener (h2-stream.ts). */
export type TapRequest = IncomingMessage | StreamRequest;
/** An HTTP/2 request is answered on its stream. */
export type TapResponse = ServerResponse | ServerHttp2Stream;

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
  /**
   * On shutdown, once the listeners have closed and before the publisher closes: waits for the body captures still
   * in progress (their connections are gone, so each ends as soon as Node reports it), then builds and publishes
   * every event waiting for its pass.
   */
  flush(): Promise<void>;
}

const EMPTY_OK = { 'content-length': '0' };

// Bounds on the events waiting for their build pass. A pass runs every event-loop turn, so these are only reached
// when one turn brings an unusual burst; past them the event is dropped and counted, never queued without bound.
// The bytes are captured body bytes, already in memory: the bound caps how many the queue keeps alive. One event
// is always accepted into an empty queue, whatever its body size (the capture limit bounds that).
export const MAX_UNBUILT_EVENTS = 4096;
export const MAX_UNBUILT_BYTES = 32 * 1024 * 1024;

interface Unbuilt {
  readonly attachment: Attachment;
  readonly id: string;
  readonly time: number;
  readonly subject: string;
  readonly original: OriginalRequest;
  readonly decision: CaptureDecision;
  readonly rawHeaders: string[];
  readonly body: CapturedBody | null;
}

export function createRequestHandler(deps: RequestHandlerDeps): RequestHandler {
  const { metrics, logger, source, newId, now } = deps;
  let policy = deps.policy;
  // The request whose unkept body is being drained, by connection; mid-body while it is not complete.
  const draining = new WeakMap<Socket, IncomingMessage>();
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

  function publishUnbuilt(
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
    publishEvent(deps, subject, { id, time, source, attachment, original, headers, body });
  }

  let unbuilt: Unbuilt[] = [];
  let unbuiltBytes = 0;
  let buildScheduled = false;
  let queueFullLogged = false;
  // Body captures not yet complete, and who waits for them to be none (flush).
  let capturing = 0;
  const onNoCapture: (() => void)[] = [];

  function enqueue(item: Unbuilt): void {
    const bytes = item.body === null ? 0 : item.body.bytes.length;
    if (unbuilt.length > 0 && (unbuilt.length >= MAX_UNBUILT_EVENTS || unbuiltBytes + bytes > MAX_UNBUILT_BYTES)) {
      metrics.dropped.inc({ reason: 'build_queue_full' });
      if (!queueFullLogged) {
        queueFullLogged = true;
        logger.warn({ err: new BuildQueueFullError(`${unbuilt.length} events (${unbuiltBytes} body bytes) waiting to be built`), id: item.id }, 'event dropped');
      }
      return;
    }
    unbuilt.push(item);
    unbuiltBytes += bytes;
    if (!buildScheduled) {
      buildScheduled = true;
      setImmediate(buildAll);
    }
  }

  function buildAll(): void {
    buildScheduled = false;
    const items = unbuilt;
    unbuilt = [];
    unbuiltBytes = 0;
    queueFullLogged = false;
    for (const item of items) {
      try {
        publishUnbuilt(item.attachment, item.id, item.time, item.subject, item.original, item.decision, item.rawHeaders, item.body);
      } catch (error) {
        metrics.publishErrors.inc();
        metrics.dropped.inc({ reason: 'publish_error' });
        logger.error({ err: error, id: item.id }, 'building or publishing an event failed');
      }
    }
  }

  return {
    rejected,
    setPolicy(next) {
      policy = next;
    },
    answeredMidBody: (socket) => draining.get(socket)?.complete === false,
    async flush() {
      // A server's close callback may come before the 'close' listeners of its last sockets, which end their
      // captures: without this wait, a body breaking off at shutdown had its event built after the publisher closed.
      if (capturing > 0) await new Promise<void>((resolve) => onNoCapture.push(resolve));
      buildAll();
    },
    handle(req, res, attachment) {
      const started = performance.now();
      const time = now();
      const counted = perAttachment[attachment];
      counted.received.inc();
      const original = originalRequest(req, attachment);
      const decision = policy.decide(original);
      if (decision === null) {
        if (bodyEnded(req)) req.on('error', noop);
        else drain(req);
        answer(res, EMPTY_OK);
        counted.skipped.inc();
        counted.handlingSeconds.observe((performance.now() - started) / 1000);
        return;
      }
      const id = newId(time);
      const subject = requestSubject(policy.subjectPrefix, original.method);
      const rawHeaders = req.rawHeaders;
      const bodyless = hasNoBody(req);
      if (bodyless || decision.bodyLimit === 0) {
        // Nothing of the body to wait for: the event is complete before the answer.
        const body = decision.bodyLimit === 0 ? null : { bytes: EMPTY_BODY, receivedBytes: 0, declaredLength: req.headers['content-length'] === undefined ? null : 0, interrupted: false };
        enqueue({ attachment, id, time, subject, original, decision, rawHeaders, body });
        if (bodyless) req.on('error', noop);
        else drain(req);
        answer(res, { 'content-length': '0', 'x-request-mirror-id': id });
        counted.handlingSeconds.observe((performance.now() - started) / 1000);
        return;
      }
      // Answered only once the capture is complete (see body-capture.ts): Traefik stops sending the body once it
      // has its answer. What Traefik sends here it already holds in memory (forwardBody buffers the whole body;
      // Mirroring calls after the user's response), so the wait is the transfer of at most the capture limit.
      capturing++;
      captureBody(req, decision.bodyLimit, (body) => {
        if (body.interrupted) metrics.truncated.inc({ reason: 'interrupted' });
        enqueue({ attachment, id, time, subject, original, decision, rawHeaders, body });
        if (--capturing === 0) for (const resolve of onNoCapture.splice(0)) resolve();
        if (res.destroyed || res.writableEnded) return;
        if (!bodyEnded(req)) drain(req);
        answer(res, { 'content-length': '0', 'x-request-mirror-id': id });
        counted.handlingSeconds.observe((performance.now() - started) / 1000);
      });
    },
  };

  // The rest of a body nobody keeps: read and discarded, and its socket noted so that a parse error in it gets no
  // second answer. Read from `complete`, which the parser sets as the body ends, before it parses what follows on
  // the connection: 'end' comes a tick later, after a malformed request pipelined behind the body has been seen.
  function drain(req: TapRequest): void {
    req.on('error', noop);
    req.resume();
    // An HTTP/2 connection's streams are framed apart: a broken one is reset alone and answered by nobody.
    if (!(req instanceof StreamRequest)) draining.set(req.socket, req);
  }
}

function noop(): void {}

// Whether an HTTP/1.1 request's parser has seen its body end. An HTTP/2 body is drained whatever its state: resuming
// an ended stream costs nothing, and no parser reads the next request after it.
function bodyEnded(req: TapRequest): boolean {
  return !(req instanceof StreamRequest) && req.complete;
}

const EMPTY_BODY = Buffer.alloc(0);

// An HTTP/1.x request without Transfer-Encoding and with no or a zero Content-Length has no body (RFC 9112
// section 6.3): its event needs no stream listeners. Over HTTP/2 DATA frames may follow whatever content-length
// says, unless the HEADERS frame carried END_STREAM (RFC 9113 section 8.1), as Go's client (Traefik's forwardAuth)
// sends every request without a body. Taken through the body capture, each of those GETs waited for its stream's
// end and put a listener on the connection's socket, which all the streams of the connection share.
function hasNoBody(req: TapRequest): boolean {
  if (req instanceof StreamRequest) return req.stream.endAfterHeaders;
  const { headers } = req;
  if (headers['transfer-encoding'] !== undefined) return false;
  const length = headers['content-length'];
  return length === undefined || length === '0';
}

function answer(res: TapResponse, headers: Record<string, string>): void {
  if (!('respond' in res)) {
    res.writeHead(200, headers).end();
    return;
  }
  // A stream the client has already reset (or whose connection is gone) takes no answer: respond() would throw.
  if (res.destroyed || res.closed) return;
  res.respond({ ':status': 200, ...headers }, { endStream: true });
}

function attachmentMetrics(metrics: TapMetrics, attachment: Attachment) {
  return {
    received: metrics.received.labels(attachment),
    skipped: metrics.skipped.labels(attachment),
    handlingSeconds: metrics.handlingSeconds.labels(attachment),
  };
}

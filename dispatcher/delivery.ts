import { isIP } from 'node:net';
import { Pool, buildConnector, type Dispatcher } from 'undici';
import type { Target } from '../contract/config.ts';
import { guardedLookup, type AddressPolicy } from './address-policy.ts';
import type { Deadlines } from './deadlines.ts';
import { AddressRefusedError } from './errors.ts';
import { isRetryableStatus } from './retry-policy.ts';

// One HTTP attempt to deliver one payload to one target. It never throws: every outcome is a value the target queue
// turns into metrics, a retry or a drop.

export const CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';

export type AttemptResult =
  | { readonly ok: true; readonly status: number }
  | {
      readonly ok: false;
      /** Labels `delivery_attempts_failed_total`: timeout, connect_timeout, connection, address_refused, http_<status class>. */
      readonly reason: string;
      readonly retryable: boolean;
      /** The target is unreachable or failing (not merely refusing this event): counts towards the circuit breaker. */
      readonly unhealthy: boolean;
      readonly status?: number;
      readonly retryAfter?: string;
      readonly detail: string;
    };

/**
 * A pool per target, so one target's slow sockets never hold another's, sized to the target's concurrency. Its
 * connector checks every dialled address against the network policy: IP literals directly, names after DNS.
 */
export function createTargetPool(target: Target, policy: AddressPolicy): Pool {
  const base = buildConnector({ timeout: target.connectTimeoutMs, lookup: guardedLookup(policy) });
  const connect: buildConnector.connector = (options, callback) => {
    // net.connect dials an IP literal without calling `lookup`, so a literal is judged here, by the same check.
    const verdict = isIP(options.hostname) === 0 ? undefined : policy.check(options.hostname);
    if (verdict?.allowed === false) {
      callback(new AddressRefusedError(options.hostname, options.hostname, verdict.reason, verdict.setting), null);
      return;
    }
    base(options, callback);
  };
  return new Pool(new URL(target.watchURL).origin, { connections: target.concurrency, connect });
}

export interface AttemptOptions {
  readonly path: string;
  readonly timeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly responseBodyLimitBytes: number;
}

/** Bytes of a 2xx answer read and thrown away to keep its connection reusable; past this the connection is closed. */
const DISCARD_LIMIT_BYTES = 128 * 1024;

/**
 * A bare undici dispatch handler rather than `pool.request`: no response stream, no AbortSignal, no async resource
 * per attempt — the delivery profile was spent there. The whole attempt (connect, send, headers, body) is bounded
 * by `timeoutMs` through `deadlines`; undici's own timeouts only bound parts of it.
 */
export function attemptDelivery(
  pool: Dispatcher,
  options: AttemptOptions,
  headers: string[],
  body: Uint8Array,
  deadlines: Deadlines,
): Promise<AttemptResult> {
  return new Promise((resolve) => {
    let controller: Dispatcher.DispatchController | undefined;
    let timedOut = false;
    let status = 0;
    let retryAfter: string | undefined;
    let chunks: Buffer[] | undefined;
    let read = 0;
    let settled = false;
    const settle = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      deadlines.remove(deadline);
      resolve(result);
    };
    const answered = (): AttemptResult => {
      if (status >= 200 && status < 300) return { ok: true, status };
      const text = chunks ? Buffer.concat(chunks).toString('utf8') : '';
      return {
        ok: false,
        reason: statusReason(status),
        retryable: isRetryableStatus(status),
        unhealthy: status >= 500,
        status,
        retryAfter,
        detail: `HTTP ${status}${text ? `: ${text}` : ''}`,
      };
    };
    const deadline = deadlines.add(options.timeoutMs, () => {
      timedOut = true;
      // Before the connection is up there is nothing to abort yet; onRequestStart aborts at once instead.
      controller?.abort(new Error(`no complete answer within ${options.timeoutMs} ms`));
    });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (timedOut) c.abort(new Error(`no complete answer within ${options.timeoutMs} ms`));
      },
      onResponseStart(c, statusCode, responseHeaders) {
        if (statusCode < 200) return;
        status = statusCode;
        if (status >= 200 && status < 300) return;
        const value = responseHeaders['retry-after'];
        retryAfter = Array.isArray(value) ? value[0] : value;
        // The answer is only kept for the log line; the limit keeps memory flat.
        if (options.responseBodyLimitBytes === 0) {
          c.abort(new Error('answer not read'));
          settle(answered());
        } else {
          chunks = [];
        }
      },
      onResponseData(c, chunk) {
        if (chunks === undefined) {
          read += chunk.length;
          if (read > DISCARD_LIMIT_BYTES) c.abort(new Error('answer too long'));
          return;
        }
        const room = options.responseBodyLimitBytes - read;
        chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
        read += Math.min(chunk.length, room);
        if (read >= options.responseBodyLimitBytes) {
          c.abort(new Error('answer longer than the limit'));
          settle(answered());
        }
      },
      onResponseEnd() {
        settle(answered());
      },
      onResponseError(_c, error) {
        // Once the status line is in, the target has said what it did with the event; an answer body cut short (by the
        // deadline, undici's bodyTimeout or the peer) does not change that. A 2xx is delivered, not sent again.
        if (status >= 200) settle(answered());
        else if (timedOut) settle(timeoutResult(options.timeoutMs));
        else settle(errorResult(error));
      },
    };
    // dispatch() does not throw: undici's DispatcherBase hands every error, a closed or destroyed pool included, to
    // the handler's onResponseError.
    pool.dispatch(
      {
        path: options.path,
        method: 'POST',
        headers,
        body,
        headersTimeout: options.headersTimeoutMs,
        bodyTimeout: options.timeoutMs,
      },
      handler,
    );
  });
}

function timeoutResult(timeoutMs: number): AttemptResult {
  return { ok: false, reason: 'timeout', retryable: true, unhealthy: true, detail: `no complete answer within ${timeoutMs} ms` };
}

function statusReason(status: number): string {
  if (status === 408 || status === 410 || status === 429) return `http_${status}`;
  return `http_${Math.floor(status / 100)}xx`;
}

function errorResult(error: unknown): AttemptResult {
  const refused = findCause(error, (e) => e instanceof AddressRefusedError);
  if (refused) return { ok: false, reason: 'address_refused', retryable: false, unhealthy: false, detail: refused.message };
  const err = error as Error & { code?: string };
  const detail = `${err.code ?? err.name}: ${err.message}`;
  switch (err.code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { ok: false, reason: 'connect_timeout', retryable: true, unhealthy: true, detail };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return { ok: false, reason: 'timeout', retryable: true, unhealthy: true, detail };
    default:
      return { ok: false, reason: 'connection', retryable: true, unhealthy: true, detail };
  }
}

function findCause(error: unknown, match: (e: unknown) => boolean): Error | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (match(e)) return e;
    if (e instanceof AggregateError) {
      const inner = e.errors.find(match) as Error | undefined;
      if (inner) return inner;
    }
  }
  return undefined;
}

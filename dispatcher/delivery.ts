import { isIP } from 'node:net';
import { Pool, buildConnector, type Dispatcher } from 'undici';
import type { Target } from '../contract/config.ts';
import { guardedLookup, type AddressPolicy } from './address-policy.ts';
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
    if (isIP(options.hostname) !== 0 && !policy.allows(options.hostname)) {
      callback(new AddressRefusedError(options.hostname, options.hostname), null);
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

export async function attemptDelivery(
  pool: Dispatcher,
  options: AttemptOptions,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<AttemptResult> {
  // One bound on the whole attempt (connect, send, headers, body); undici's own timeouts only bound parts of it.
  const abort = new AbortController();
  const timer = setTimeout(() => {
    abort.abort();
  }, options.timeoutMs);
  try {
    const response = await pool.request({
      path: options.path,
      method: 'POST',
      headers,
      body,
      signal: abort.signal,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    const status = response.statusCode;
    if (status >= 200 && status < 300) {
      // Webhook answers are usually empty; reading them keeps the connection reusable, the limit keeps memory flat.
      await response.body.dump({ limit: options.responseBodyLimitBytes });
      return { ok: true, status };
    }
    const text = await readLimited(response.body, options.responseBodyLimitBytes);
    const retryAfter = response.headers['retry-after'];
    return {
      ok: false,
      reason: statusReason(status),
      retryable: isRetryableStatus(status),
      unhealthy: status >= 500,
      status,
      retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      detail: `HTTP ${status}${text ? `: ${text}` : ''}`,
    };
  } catch (error) {
    if (abort.signal.aborted) {
      return { ok: false, reason: 'timeout', retryable: true, unhealthy: true, detail: `no complete answer within ${options.timeoutMs} ms` };
    }
    return errorResult(error);
  } finally {
    clearTimeout(timer);
  }
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

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }, limit: number): Promise<string> {
  if (limit === 0) {
    body.destroy();
    return '';
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk.subarray(0, limit - size));
      size += Math.min(chunk.length, limit - size);
      if (size >= limit) break;
    }
  } catch {
    // The answer is only kept for the log line; a broken one is no worse than none.
  }
  return Buffer.concat(chunks).toString('utf8');
}

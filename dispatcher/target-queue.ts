import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Pool } from 'undici';
import type { Target } from '../contract/config.ts';
import type { AddressPolicy } from './address-policy.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { Deadlines } from './deadlines.ts';
import { attemptDelivery, createTargetPool, CONTENT_TYPE, type AttemptOptions, type AttemptResult } from './delivery.ts';
import { DeliveryFailedError, TargetGoneError } from './errors.ts';
import type { DropReason, TargetMetrics } from './metrics.ts';
import { backoffMs, retryAfterMs } from './retry-policy.ts';
import type { Signer } from './signing.ts';

// Everything between "this event matches this target" and "delivered" or "dropped": a bounded queue, the
// concurrency limit, retries, the circuit breaker and the 410 switch, for one target. Each target has its own, so a
// slow one fills only its own queue.

/** Bytes held across all targets; a ceiling on memory no matter how many targets are slow at once. */
export class ByteBudget {
  used = 0;
  limit: number;
  readonly #onChange: (used: number) => void;
  constructor(limit: number, onChange: (used: number) => void) {
    this.limit = limit;
    this.#onChange = onChange;
  }
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    this.#onChange(this.used);
    return true;
  }
  release(bytes: number): void {
    this.used -= bytes;
    this.#onChange(this.used);
  }
}

interface Entry {
  readonly id: string;
  readonly payload: Uint8Array;
  attempts: number;
}

export interface TargetQueueDeps {
  readonly target: Target;
  readonly signer: Signer | undefined;
  readonly policy: AddressPolicy;
  readonly policyKey: string;
  readonly responseBodyLimitBytes: number;
  readonly budget: ByteBudget;
  readonly metrics: TargetMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  readonly random: () => number;
}

export class TargetQueue {
  #target: Target;
  #signer: Signer | undefined;
  #pool: Pool;
  #poolKey: string;
  #attempt: AttemptOptions;
  readonly #breaker: CircuitBreaker;
  readonly #deadlines = new Deadlines();
  readonly #budget: ByteBudget;
  readonly #metrics: TargetMetrics;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  // Retries go before fresh events: they are older, and their receiver already knows they are coming.
  #retries: Entry[] = [];
  #fresh: Entry[] = [];
  #freshHead = 0;
  readonly #sleeping = new Map<NodeJS.Timeout, Entry>();
  #waitingEvents = 0;
  #waitingBytes = 0;
  #active = 0;
  #pending = 0;
  #disabled = false;
  #abandoned = false;
  #idle: (() => void)[] = [];

  constructor(deps: TargetQueueDeps) {
    this.#target = deps.target;
    this.#signer = deps.signer;
    this.#poolKey = poolKey(deps.target, deps.policyKey);
    this.#pool = createTargetPool(deps.target, deps.policy);
    this.#attempt = attemptOptions(deps.target, deps.responseBodyLimitBytes);
    this.#breaker = new CircuitBreaker(deps.target.circuitBreaker, deps.now);
    this.#budget = deps.budget;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger.child({ target: deps.target.name });
    this.#now = deps.now;
    this.#random = deps.random;
    this.#metrics.disabled.set(0);
    this.#metrics.circuitOpen.set(0);
  }

  get target(): Target {
    return this.#target;
  }

  /** Events received and not yet delivered or dropped. */
  get pending(): number {
    return this.#pending;
  }

  /** Takes an event for this target, or drops it at once (newest first) and counts why. */
  offer(id: string, payload: Uint8Array): void {
    this.#metrics.received.inc();
    const bytes = payload.byteLength;
    const queue = this.#target.queue;
    let reason: DropReason | undefined;
    if (this.#disabled) reason = 'disabled_410';
    else if (this.#abandoned) reason = 'shutdown';
    else if (this.#breaker.rejecting) reason = 'circuit_open';
    else if (this.#waitingEvents >= queue.maxEvents || this.#waitingBytes + bytes > queue.maxBytes) reason = 'queue_full';
    else if (!this.#budget.take(bytes)) reason = 'global_limit';
    if (reason !== undefined) {
      this.#metrics.dropped(reason);
      return;
    }
    this.#pending++;
    this.#metrics.pending.inc();
    this.#fresh.push({ id, payload, attempts: 0 });
    this.#addWaiting(1, bytes);
    this.#pump();
  }

  /** New settings for the next attempts; queued events stay. Any config change re-enables a target disabled by 410. */
  reconfigure(deps: Pick<TargetQueueDeps, 'target' | 'signer' | 'policy' | 'policyKey' | 'responseBodyLimitBytes'>): void {
    const key = poolKey(deps.target, deps.policyKey);
    if (key !== this.#poolKey) {
      const old = this.#pool;
      this.#pool = createTargetPool(deps.target, deps.policy);
      this.#poolKey = key;
      // close() lets the requests already on the old pool finish.
      old.close().catch((error: unknown) => { this.#logger.warn({ err: error }, 'closing the previous connection pool failed'); });
    }
    this.#target = deps.target;
    this.#signer = deps.signer;
    this.#attempt = attemptOptions(deps.target, deps.responseBodyLimitBytes);
    this.#breaker.configure(deps.target.circuitBreaker);
    if (this.#disabled) {
      this.#disabled = false;
      this.#metrics.disabled.set(0);
      this.#logger.info('target re-enabled by a config change');
    }
    this.#pump();
  }

  /** Resolves once every pending event is delivered or dropped. */
  whenIdle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Gives up on everything still pending (reason `shutdown`) and closes the sockets. */
  async abandon(): Promise<void> {
    this.#abandoned = true;
    this.#dropWaiting('shutdown', true);
    // destroy() fails the requests in flight; their attempts then finish as dropped with reason shutdown.
    await this.#pool.destroy();
    await this.whenIdle();
  }

  async close(): Promise<void> {
    await this.whenIdle();
    await this.#pool.close();
  }

  #pump(): void {
    while (this.#active < this.#target.concurrency) {
      if (this.#retries.length === 0 && this.#freshHead === this.#fresh.length) return;
      if (this.#disabled) {
        this.#dropWaiting('disabled_410', false);
        return;
      }
      const gate = this.#breaker.gate();
      if (gate === 'reject') {
        // Sleeping retries are dropped when they wake, if the circuit is still open then.
        this.#dropWaiting('circuit_open', false);
        return;
      }
      if (gate === 'wait') return;
      const entry = this.#retries.shift() ?? this.#takeFresh();
      if (entry === undefined) return;
      this.#addWaiting(-1, -entry.payload.byteLength);
      this.#active++;
      this.#metrics.inFlight.inc();
      void this.#send(entry);
    }
  }

  async #send(entry: Entry): Promise<void> {
    entry.attempts++;
    const timestamp = Math.floor(this.#now() / 1000);
    const headers = ['content-type', CONTENT_TYPE, 'webhook-id', entry.id, 'webhook-timestamp', String(timestamp)];
    // Signed per attempt: receivers reject stale timestamps, and a retry can come minutes later.
    if (this.#signer) headers.push('webhook-signature', this.#signer(entry.id, timestamp, entry.payload));
    const started = performance.now();
    const result = await attemptDelivery(this.#pool, this.#attempt, headers, entry.payload, this.#deadlines);
    this.#metrics.observeLatency(result.ok ? 'delivered' : result.reason, (performance.now() - started) / 1000);
    this.#active--;
    this.#metrics.inFlight.dec();
    if (result.ok) {
      this.#breaker.succeeded();
      this.#metrics.circuitOpen.set(0);
      this.#finish(entry, undefined);
    } else {
      this.#failed(entry, result);
    }
    this.#pump();
  }

  #failed(entry: Entry, result: Exclude<AttemptResult, { ok: true }>): void {
    this.#metrics.failedAttempt(result.reason);
    if (this.#abandoned) {
      this.#finish(entry, 'shutdown');
      return;
    }
    if (result.unhealthy) {
      if (this.#breaker.failed()) {
        this.#metrics.circuitOpen.set(1);
        this.#logger.warn({ reason: result.reason, cooldownMs: this.#target.circuitBreaker.cooldownMs }, 'circuit opened');
      }
    } else if (result.reason === 'address_refused') {
      this.#breaker.released();
    } else {
      // The target answered: it is alive, even if it does not want this event.
      this.#breaker.succeeded();
      this.#metrics.circuitOpen.set(0);
    }
    if (result.status === 410) {
      this.#disable(result.detail);
      this.#finish(entry, 'disabled_410');
      return;
    }
    if (!result.retryable) {
      this.#logger.warn({ eventId: entry.id, attempts: entry.attempts, err: failure(result) }, 'delivery failed, not retryable');
      this.#finish(entry, result.reason === 'address_refused' ? 'address_refused' : 'not_retryable');
      return;
    }
    const retry = this.#target.retry;
    if (entry.attempts >= retry.maxAttempts) {
      this.#logger.warn({ eventId: entry.id, attempts: entry.attempts, err: failure(result) }, 'delivery failed, retries exhausted');
      this.#finish(entry, 'retries_exhausted');
      return;
    }
    const delay = retryAfterMs(result.retryAfter, retry, this.#now()) ?? backoffMs(retry, entry.attempts, this.#random);
    this.#metrics.retried.inc();
    this.#addWaiting(1, entry.payload.byteLength);
    // The slot is released while the event sleeps, so healthy deliveries behind it are not held up by its backoff.
    const timer = setTimeout(() => {
      this.#sleeping.delete(timer);
      this.#retries.push(entry);
      this.#pump();
    }, delay);
    this.#sleeping.set(timer, entry);
  }

  #disable(detail: string): void {
    if (this.#disabled) return;
    this.#disabled = true;
    this.#metrics.disabled.set(1);
    this.#logger.error({ err: new TargetGoneError(`${this.#target.watchURL} answered ${detail}`) }, 'target disabled until the config changes');
    this.#dropWaiting('disabled_410', true);
  }

  #takeFresh(): Entry | undefined {
    if (this.#freshHead === this.#fresh.length) return undefined;
    const entry = this.#fresh[this.#freshHead];
    this.#fresh[this.#freshHead++] = undefined as unknown as Entry;
    // Compact now and then instead of shift(), which is O(n) on a long queue.
    if (this.#freshHead === this.#fresh.length) {
      this.#fresh = [];
      this.#freshHead = 0;
    } else if (this.#freshHead >= 1024 && this.#freshHead * 2 >= this.#fresh.length) {
      this.#fresh = this.#fresh.slice(this.#freshHead);
      this.#freshHead = 0;
    }
    return entry;
  }

  #dropWaiting(reason: DropReason, includeSleeping: boolean): void {
    const dropped: Entry[] = this.#retries;
    this.#retries = [];
    for (let i = this.#freshHead; i < this.#fresh.length; i++) dropped.push(this.#fresh[i] as Entry);
    this.#fresh = [];
    this.#freshHead = 0;
    if (includeSleeping) {
      for (const [timer, entry] of this.#sleeping) {
        clearTimeout(timer);
        dropped.push(entry);
      }
      this.#sleeping.clear();
    }
    for (const entry of dropped) {
      this.#addWaiting(-1, -entry.payload.byteLength);
      this.#finish(entry, reason);
    }
  }

  #addWaiting(events: number, bytes: number): void {
    this.#waitingEvents += events;
    this.#waitingBytes += bytes;
    // inc/dec rather than set: a removed target still draining and its re-added successor share the labels.
    this.#metrics.queueEvents.inc(events);
    this.#metrics.queueBytes.inc(bytes);
  }

  #finish(entry: Entry, dropped: DropReason | undefined): void {
    this.#budget.release(entry.payload.byteLength);
    if (dropped === undefined) this.#metrics.delivered.inc();
    else this.#metrics.dropped(dropped);
    this.#pending--;
    this.#metrics.pending.dec();
    if (this.#pending === 0 && this.#idle.length > 0) {
      const waiters = this.#idle;
      this.#idle = [];
      for (const resolve of waiters) resolve();
    }
  }
}

function failure(result: Exclude<AttemptResult, { ok: true }>): DeliveryFailedError {
  return new DeliveryFailedError(result.detail, result.reason, result.status);
}

function attemptOptions(target: Target, responseBodyLimitBytes: number): AttemptOptions {
  const url = new URL(target.watchURL);
  return {
    path: `${url.pathname}${url.search}`,
    timeoutMs: target.timeoutMs,
    headersTimeoutMs: target.headersTimeoutMs,
    responseBodyLimitBytes,
  };
}

/** What the pool is built from; any change needs a new pool. */
function poolKey(target: Target, policyKey: string): string {
  return `${new URL(target.watchURL).origin} ${target.connectTimeoutMs} ${target.concurrency} ${policyKey}`;
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// The dispatcher's metrics, in a registry of its own. Per target, at every moment:
//   events_received_total = events_delivered_total + Σ events_dropped_total + events_pending
// because each transition updates both sides in the same synchronous step.

export type DropReason =
  | 'queue_full'
  | 'global_limit'
  | 'circuit_open'
  | 'disabled_410'
  | 'retries_exhausted'
  | 'not_retryable'
  | 'address_refused'
  | 'shutdown';

export interface DispatcherMetrics {
  readonly registry: Registry;
  readonly received: Counter<'target'>;
  readonly delivered: Counter<'target'>;
  readonly dropped: Counter<'target' | 'reason'>;
  readonly pending: Gauge<'target'>;
  readonly queueEvents: Gauge<'target'>;
  readonly queueBytes: Gauge<'target'>;
  readonly inFlight: Gauge<'target'>;
  readonly failedAttempts: Counter<'target' | 'reason'>;
  readonly retried: Counter<'target'>;
  readonly latency: Histogram<'target' | 'outcome'>;
  readonly disabled: Gauge<'target'>;
  readonly circuitOpen: Gauge<'target'>;
  readonly invalidEvents: Counter;
  readonly queuedBytes: Gauge;
  readonly natsDisconnects: Counter<'cause'>;
  readonly natsPermissionDenied: Counter;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): DispatcherMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const p = 'request_mirror_dispatcher_';
  const registers = [registry];
  return {
    registry,
    received: new Counter({ name: `${p}events_received_total`, help: 'Events matching the target filters.', labelNames: ['target'], registers }),
    delivered: new Counter({ name: `${p}events_delivered_total`, help: 'Events the target accepted with a 2xx.', labelNames: ['target'], registers }),
    dropped: new Counter({
      name: `${p}events_dropped_total`,
      help: 'Events given up for the target, by reason.',
      labelNames: ['target', 'reason'],
      registers,
    }),
    pending: new Gauge({
      name: `${p}events_pending`,
      help: 'Events received for the target and not yet delivered or dropped: queued, waiting to retry or being sent.',
      labelNames: ['target'],
      registers,
    }),
    queueEvents: new Gauge({ name: `${p}queue_events`, help: 'Events waiting to be sent, retries included.', labelNames: ['target'], registers }),
    queueBytes: new Gauge({ name: `${p}queue_bytes`, help: 'Payload bytes waiting to be sent, retries included.', labelNames: ['target'], registers }),
    inFlight: new Gauge({ name: `${p}deliveries_in_flight`, help: 'HTTP requests open to the target.', labelNames: ['target'], registers }),
    failedAttempts: new Counter({
      name: `${p}delivery_attempts_failed_total`,
      help: 'Failed delivery attempts, by reason (a retried event can fail several times).',
      labelNames: ['target', 'reason'],
      registers,
    }),
    retried: new Counter({ name: `${p}delivery_retries_total`, help: 'Attempts scheduled again after a failure.', labelNames: ['target'], registers }),
    latency: new Histogram({
      name: `${p}delivery_duration_seconds`,
      help: 'Duration of one delivery attempt, by outcome.',
      labelNames: ['target', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    disabled: new Gauge({ name: `${p}target_disabled`, help: '1 while the target is disabled after a 410 Gone.', labelNames: ['target'], registers }),
    circuitOpen: new Gauge({ name: `${p}circuit_open`, help: '1 while the target circuit breaker is open.', labelNames: ['target'], registers }),
    invalidEvents: new Counter({ name: `${p}invalid_events_total`, help: 'NATS messages that were not valid events.', registers }),
    queuedBytes: new Gauge({ name: `${p}queued_bytes`, help: 'Payload bytes held across all targets (limit: dispatcher.maxQueuedBytes).', registers }),
    natsDisconnects: new Counter({
      name: `${p}nats_disconnects_total`,
      help:
        'NATS connections lost, by cause: stale (pings unanswered), slow_consumer (the server closed it after this process ' +
        'stalled), closed (anything else). Events NATS held for this dispatcher then are lost without a count.',
      labelNames: ['cause'],
      registers,
    }),
    natsPermissionDenied: new Counter({
      name: `${p}nats_permission_denied_total`,
      help:
        'Subscriptions the NATS server refused because the user may not subscribe to the subject (or with the queue ' +
        'group): the dispatcher then receives nothing and stays not ready until restarted with the permission granted.',
      registers,
    }),
  };
}

/** The per-target children, looked up once instead of on every event. */
export class TargetMetrics {
  readonly received: Counter.Internal;
  readonly delivered: Counter.Internal;
  readonly pending: Gauge.Internal<'target'>;
  readonly queueEvents: Gauge.Internal<'target'>;
  readonly queueBytes: Gauge.Internal<'target'>;
  readonly inFlight: Gauge.Internal<'target'>;
  readonly retried: Counter.Internal;
  readonly disabled: Gauge.Internal<'target'>;
  readonly circuitOpen: Gauge.Internal<'target'>;
  readonly #metrics: DispatcherMetrics;
  readonly #target: string;
  readonly #dropped = new Map<string, Counter.Internal>();
  readonly #failed = new Map<string, Counter.Internal>();
  readonly #latency = new Map<string, Histogram.Internal<'target' | 'outcome'>>();

  constructor(metrics: DispatcherMetrics, target: string) {
    this.#metrics = metrics;
    this.#target = target;
    this.received = metrics.received.labels(target);
    this.delivered = metrics.delivered.labels(target);
    this.pending = metrics.pending.labels(target);
    this.queueEvents = metrics.queueEvents.labels(target);
    this.queueBytes = metrics.queueBytes.labels(target);
    this.inFlight = metrics.inFlight.labels(target);
    this.retried = metrics.retried.labels(target);
    this.disabled = metrics.disabled.labels(target);
    this.circuitOpen = metrics.circuitOpen.labels(target);
  }

  dropped(reason: DropReason, count = 1): void {
    let child = this.#dropped.get(reason);
    if (!child) this.#dropped.set(reason, (child = this.#metrics.dropped.labels(this.#target, reason)));
    child.inc(count);
  }

  failedAttempt(reason: string): void {
    let child = this.#failed.get(reason);
    if (!child) this.#failed.set(reason, (child = this.#metrics.failedAttempts.labels(this.#target, reason)));
    child.inc();
  }

  observeLatency(outcome: string, seconds: number): void {
    let child = this.#latency.get(outcome);
    if (!child) this.#latency.set(outcome, (child = this.#metrics.latency.labels(this.#target, outcome)));
    child.observe(seconds);
  }
}

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Every outcome of a request the tap handles is a counter here: the request path never reports an error any
// other way. An own Registry (not prom-client's global one) so two taps in one process, as in the tests, never
// share or clash over metrics.

export type DropReason = 'nats_disconnected' | 'pending_bytes_exceeded' | 'event_too_large' | 'publish_error' | 'build_queue_full' | 'permission_denied';
/** The reasons `request_mirror_tap_bodies_truncated_total` counts; its HELP text explains each. */
export const TRUNCATION_REASONS = ['limit', 'max_payload', 'unread', 'interrupted'] as const;
export type TruncationReason = (typeof TRUNCATION_REASONS)[number];

export interface TapMetrics {
  readonly registry: Registry;
  readonly received: Counter<'attachment'>;
  readonly published: Counter;
  readonly skipped: Counter<'attachment'>;
  readonly dropped: Counter<'reason'>;
  readonly truncated: Counter<'reason'>;
  readonly publishErrors: Counter;
  readonly inDoubt: Counter;
  readonly rejectedInput: Counter<'reason'>;
  readonly handlingSeconds: Histogram<'attachment'>;
  readonly connections: Counter<'listener' | 'protocol'>;
}

export function createMetrics(): TapMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    received: new Counter({
      name: 'request_mirror_tap_requests_received_total',
      help: 'Requests the tap answered and plugin snapshots it received, by attachment (forwardAuth, mirror or plugin).',
      labelNames: ['attachment'],
      registers,
    }),
    published: new Counter({
      name: 'request_mirror_tap_events_published_total',
      help:
        'Events the NATS server took: counted once the server has answered the PING sent after them, or when the ' +
        'connection dropped before it could (those are in events_in_doubt_total too). Events it refused are dropped instead.',
      registers,
    }),
    skipped: new Counter({
      name: 'request_mirror_tap_requests_skipped_total',
      help: 'Requests no target wants; answered and not published.',
      labelNames: ['attachment'],
      registers,
    }),
    dropped: new Counter({
      name: 'request_mirror_tap_events_dropped_total',
      help: 'Events not published, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    truncated: new Counter({
      name: 'request_mirror_tap_bodies_truncated_total',
      help: 'Bodies cut short: at the capture limit (limit), to fit the NATS max_payload (max_payload), not read to their end by the upstream (unread, plugin only), or broken off by the sender before their end (interrupted).',
      labelNames: ['reason'],
      registers,
    }),
    publishErrors: new Counter({
      name: 'request_mirror_tap_publish_errors_total',
      help: 'Publishes the NATS client refused or failed to flush.',
      registers,
    }),
    inDoubt: new Counter({
      name: 'request_mirror_tap_events_in_doubt_total',
      help:
        'Events handed to NATS that the server had not yet confirmed (PING/PONG) when the connection was lost: each one ' +
        'was either delivered or lost without trace (NATS core is at-most-once). An upper bound on what a lost connection cost.',
      registers,
    }),
    rejectedInput: new Counter({
      name: 'request_mirror_tap_rejected_input_total',
      help: 'Malformed or unusual requests answered 200 anyway, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    handlingSeconds: new Histogram({
      name: 'request_mirror_tap_handling_seconds',
      help: 'Time from the tap seeing a request to its 200 being written.',
      labelNames: ['attachment'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    connections: new Counter({
      name: 'request_mirror_tap_connections_total',
      help: 'Connections accepted by the forwardAuth and mirror listeners (with TLS: handshakes completed), by listener and protocol (http/1.1 or h2). Its rate is the connection churn Traefik causes.',
      labelNames: ['listener', 'protocol'],
      registers,
    }),
  };
}

import type { Logger } from 'pino';
import { EventTooLargeError } from './errors.ts';
import type { TapMetrics } from './metrics.ts';
import type { Publisher } from './publisher.ts';
import { buildEvent, encodeEvent, type EventParts } from './snapshot.ts';

// The last step of every attachment (forwardAuth, Mirroring, the plugin): one captured request becomes one event
// within the NATS server's max_payload and is handed to the publisher, and every way it can fail to leave is
// counted. One implementation, so the attachments cannot drift apart.

export interface EventOutputDeps {
  readonly publisher: Publisher;
  readonly metrics: TapMetrics;
  readonly logger: Logger;
}

/** Builds, encodes and publishes the event of `parts` on `subject`; never throws for a too-large event. */
export function publishEvent(deps: EventOutputDeps, subject: string, parts: EventParts): void {
  const { publisher, metrics, logger } = deps;
  const { body } = parts;
  if (body !== null && body.receivedBytes > body.bytes.length) metrics.truncated.inc({ reason: 'limit' });
  const maxPayload = publisher.maxPayload();
  if (maxPayload === 0) {
    countOutcome(metrics, publisher.publish(subject, EMPTY_PAYLOAD));
    return;
  }
  const encoded = encodeEvent(buildEvent(parts), body, maxPayload);
  if (encoded === null) {
    logger.warn({ err: new EventTooLargeError(`event ${parts.id} exceeds max_payload ${maxPayload} without its body`) }, 'event dropped');
    countOutcome(metrics, 'event_too_large');
    return;
  }
  if (encoded.cut) metrics.truncated.inc({ reason: 'max_payload' });
  countOutcome(metrics, publisher.publish(subject, encoded.payload));
}

// The publisher counts what it publishes; what it refuses, or never got, is counted here.
function countOutcome(metrics: TapMetrics, outcome: ReturnType<Publisher['publish']>): void {
  if (outcome !== 'queued') metrics.dropped.inc({ reason: outcome });
}

// Stands in for the event while disconnected: the publisher drops it before looking at the bytes, so building the
// real event would be wasted work during an outage.
const EMPTY_PAYLOAD = new Uint8Array(0);

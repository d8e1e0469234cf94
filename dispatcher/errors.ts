import { RequestMirrorError } from '../contract/errors.ts';

// The dispatcher's failure modes; docs/errors.md (## dispatcher) lists the codes. None of them ever reaches the
// tap or Traefik: each becomes a log line with the code and a counter in /metrics.

/** A NATS message was not a valid Request Mirror event; it is logged, counted and skipped. */
export class InvalidEventError extends RequestMirrorError {
  readonly code = 'RM_EVENT_INVALID';
}

/** The address a target resolved to is refused by `dispatcher.network`; never retried. */
export class AddressRefusedError extends RequestMirrorError {
  readonly code = 'RM_ADDRESS_REFUSED';
  readonly address: string;
  /** The setting that would allow the address (`dispatcher.network.allowLoopback`…), when one would. */
  readonly setting: string | undefined;
  constructor(address: string, host: string, reason: string, setting?: string) {
    const resolved = address === host ? '' : ` (resolved from ${host})`;
    super(`refusing to connect to ${address}${resolved}: ${reason}; ${setting ? `${setting} allows it` : 'no setting allows it'}`);
    this.address = address;
    this.setting = setting;
  }
}

/** `dispatcher.network` holds a CIDR that does not parse. */
export class NetworkPolicyInvalidError extends RequestMirrorError {
  readonly code = 'RM_NETWORK_POLICY_INVALID';
}

/**
 * Why the dispatcher gave up on an event for one target: its last attempt's non-2xx answer, timeout or network error.
 * Logged once per event given up (not retryable, or retries exhausted) with `eventId` and `attempts`; every failed
 * attempt, retried or not, is counted in `delivery_attempts_failed_total` under `reason`.
 */
export class DeliveryFailedError extends RequestMirrorError {
  readonly code = 'RM_DELIVERY_FAILED';
  readonly reason: string;
  readonly status: number | undefined;
  constructor(message: string, reason: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
    this.status = status;
  }
}

/** A target answered 410 Gone; it receives nothing more until the config changes. */
export class TargetGoneError extends RequestMirrorError {
  readonly code = 'RM_TARGET_GONE';
}

/** The NATS connection was lost; the message says why when this side can tell (see nats-status.ts). */
export class NatsConnectionLostError extends RequestMirrorError {
  readonly code = 'RM_NATS_CONNECTION_LOST';
}

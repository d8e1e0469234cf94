import { RequestMirrorError } from '../contract/errors.ts';

// The tap's failure modes. None of them ever reaches Traefik as an HTTP error: each becomes a log line carrying
// its code and a counter in /metrics (docs/errors.md lists them).

/** The NATS client refused a publish (connection closed, payload over max_payload) or a flush failed. */
export class PublishFailedError extends RequestMirrorError {
  readonly code = 'RM_TAP_PUBLISH_FAILED';
}

/** Events are dropped while the tap has no NATS connection. */
export class NatsDisconnectedError extends RequestMirrorError {
  readonly code = 'RM_TAP_NATS_DISCONNECTED';
}

/** More than `tap.maxPendingPublishBytes` were waiting to reach NATS; the event was dropped. */
export class PendingBytesExceededError extends RequestMirrorError {
  readonly code = 'RM_TAP_PENDING_BYTES_EXCEEDED';
}

/** More events were waiting for their build pass than the tap keeps (request-handler.ts MAX_UNBUILT_*); dropped. */
export class BuildQueueFullError extends RequestMirrorError {
  readonly code = 'RM_TAP_BUILD_QUEUE_FULL';
}

/** The event does not fit the NATS max_payload even without its body (its headers alone are too large). */
export class EventTooLargeError extends RequestMirrorError {
  readonly code = 'RM_TAP_EVENT_TOO_LARGE';
}

/** A malformed or unusual request (bad URL, header overflow, parse error…) that the tap answered 200 anyway. */
export class RejectedInputError extends RequestMirrorError {
  readonly code = 'RM_TAP_REJECTED_INPUT';
}

/** A listener could not bind its address at start-up. */
export class ListenFailedError extends RequestMirrorError {
  readonly code = 'RM_TAP_LISTEN_FAILED';
}

/** A listener's `tls.certFile` or `tls.keyFile` is missing, unreadable, not PEM, or the key does not match the certificate. */
export class TlsUnusableError extends RequestMirrorError {
  readonly code = 'RM_TAP_TLS_UNUSABLE';
}

/** A plugin batch that is cut short or whose frames do not match contract/plugin-batch.ts; answered 400. */
export class PluginBatchInvalidError extends RequestMirrorError {
  readonly code = 'RM_TAP_PLUGIN_BATCH_INVALID';
}

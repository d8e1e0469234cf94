// Every failure mode has a class with a stable code; docs/errors.md lists them.

export abstract class RequestMirrorError extends Error {
  abstract readonly code: string;
  override get name(): string {
    return this.constructor.name;
  }
}

/** The config file could not be read or parsed as YAML. */
export class ConfigUnreadableError extends RequestMirrorError {
  readonly code = 'RM_CONFIG_UNREADABLE';
}

/** The config file parsed but does not match the schema; the message names the file and each field. */
export class ConfigInvalidError extends RequestMirrorError {
  readonly code = 'RM_CONFIG_INVALID';
}

/** A secret named in the config (a signing secret, the NATS password or token) could not be read from its env variable or file. */
export class SecretUnavailableError extends RequestMirrorError {
  readonly code = 'RM_SECRET_UNAVAILABLE';
}

/** A file of `nats.tls` is missing, unreadable or not PEM, or the key does not belong to the certificate. */
export class NatsTlsUnusableError extends RequestMirrorError {
  readonly code = 'RM_NATS_TLS_UNUSABLE';
}

/** The NATS server refused the credentials of `nats.auth` (or asked for some and none were configured). */
export class NatsAuthFailedError extends RequestMirrorError {
  readonly code = 'RM_NATS_AUTH_FAILED';
}

/** A connection attempt to NATS failed for another reason (refused, timed out, TLS handshake or verification). */
export class NatsConnectFailedError extends RequestMirrorError {
  readonly code = 'RM_NATS_CONNECT_FAILED';
}

/** The NATS server refused a publish or a subscription: the user's permissions do not allow the subject. */
export class NatsPermissionDeniedError extends RequestMirrorError {
  readonly code = 'RM_NATS_PERMISSION_DENIED';
}

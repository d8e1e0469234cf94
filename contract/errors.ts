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

/** A signing secret named in the config could not be resolved from its env variable or file. */
export class SecretUnavailableError extends RequestMirrorError {
  readonly code = 'RM_SECRET_UNAVAILABLE';
}

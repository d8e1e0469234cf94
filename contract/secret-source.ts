import { readFileSync } from 'node:fs';
import type { Env } from './config-file.ts';
import type { SecretSource } from './config.ts';
import { SecretUnavailableError } from './errors.ts';

// Reads one `{ env } | { file }` secret: the dispatcher's signing secrets and the NATS password or token of both
// services, so the two kinds fail the same way, with the same code.

export interface SecretSources {
  readonly env: Env;
  readonly readFile: (path: string) => string;
}

export const processSecretSources: SecretSources = { env: process.env, readFile: (path) => readFileSync(path, 'utf8') };

/**
 * The secret's text. `where` starts the message (`nats.auth.password`). Throws SecretUnavailableError when the
 * variable is unset or empty, or the file unreadable or empty.
 */
export function readSecret(source: SecretSource, sources: SecretSources, where: string): string {
  if ('env' in source) {
    const value = sources.env[source.env];
    if (!value) throw new SecretUnavailableError(`${where}: environment variable ${source.env} is not set or empty`);
    return value;
  }
  let text: string;
  try {
    text = sources.readFile(source.file);
  } catch (cause) {
    throw new SecretUnavailableError(`${where}: cannot read file ${source.file}: ${(cause as Error).message}`, { cause });
  }
  // Mounted secrets and `echo > file` end in a newline that is not part of the key.
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new SecretUnavailableError(`${where}: file ${source.file} is empty`);
  return value;
}

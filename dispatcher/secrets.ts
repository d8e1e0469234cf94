import { readFileSync } from 'node:fs';
import type { Config, SecretSource } from '../contract/config.ts';
import type { Env } from '../contract/config-file.ts';
import { SecretUnavailableError } from '../contract/errors.ts';
import { decodeSecret } from './signing.ts';

/** Signing keys by target name, resolved once per config load so a missing secret fails the load, not a delivery. */
export type SecretKeys = ReadonlyMap<string, readonly Buffer[]>;

export interface SecretSources {
  readonly env: Env;
  readonly readFile: (path: string) => string;
}

const defaultSources: SecretSources = { env: process.env, readFile: (path) => readFileSync(path, 'utf8') };

/** Throws one SecretUnavailableError listing every secret that cannot be read, one per line. */
export function resolveSecrets(config: Config, sources: SecretSources = defaultSources): SecretKeys {
  const keys = new Map<string, readonly Buffer[]>();
  const problems: SecretUnavailableError[] = [];
  config.targets.forEach((target, i) => {
    const decoded: Buffer[] = [];
    target.secrets.forEach((source, j) => {
      try {
        decoded.push(decodeSecret(readSecret(source, sources, `targets[${i}] "${target.name}": secrets[${j}]`)));
      } catch (error) {
        if (!(error instanceof SecretUnavailableError)) throw error;
        problems.push(error);
      }
    });
    keys.set(target.name, decoded);
  });
  const [first] = problems;
  if (first && problems.length === 1) throw first;
  if (problems.length > 1) throw new SecretUnavailableError(problems.map((p) => p.message).join('\n'), { cause: problems });
  return keys;
}

function readSecret(source: SecretSource, sources: SecretSources, where: string): string {
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

import type { Config } from '../contract/config.ts';
import { SecretUnavailableError } from '../contract/errors.ts';
import { processSecretSources, readSecret, type SecretSources } from '../contract/secret-source.ts';
import { decodeSecret } from './signing.ts';

/** Signing keys by target name, resolved once per config load so a missing secret fails the load, not a delivery. */
export type SecretKeys = ReadonlyMap<string, readonly Buffer[]>;

/** Throws one SecretUnavailableError listing every secret that cannot be read, one per line. */
export function resolveSecrets(config: Config, sources: SecretSources = processSecretSources): SecretKeys {
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

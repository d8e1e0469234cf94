import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { Config } from './config.ts';
import { ConfigInvalidError, ConfigUnreadableError } from './errors.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads, validates and freezes the config file; `NATS_URL` in env overrides `nats.url`. */
export function loadConfig(path: string, env: Env = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigUnreadableError(`config ${path}: cannot read: ${(cause as Error).message}`, { cause });
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigUnreadableError(`config ${path}: not valid YAML:\n${doc.errors.map((e) => e.message).join('\n')}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigInvalidError(`config ${path} is invalid:\n${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  }
  const config = parsed.data;
  if (env.NATS_URL) config.nats.url = env.NATS_URL;
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Calls `onChange` with the new config whenever the file changes and still validates; `onError` otherwise, while
 * the old config stays in force. Watches the directory, not the file, because Kubernetes updates a mounted ConfigMap
 * by swapping a symlink, which a watch on the old file would never see.
 */
export function watchConfig(
  path: string,
  onChange: (config: Config) => void,
  onError: (error: Error) => void,
  env: Env = process.env,
): FSWatcher {
  const file = resolve(path);
  let last = safeRead(file);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(file), () => {
    // Editors and ConfigMap updates write in several steps; settle before reading.
    clearTimeout(timer);
    timer = setTimeout(() => {
      const text = safeRead(file);
      if (text === last) return;
      last = text;
      try {
        onChange(loadConfig(file, env));
      } catch (error) {
        onError(error as Error);
      }
    }, 100);
  });
  watcher.on('close', () => {
    clearTimeout(timer);
  });
  return watcher;
}

function safeRead(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

import { readFileSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { Config, natsUrlProblems } from './config.ts';
import { describeIssues } from './config-issues.ts';
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
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigUnreadableError(`config ${path}: not valid YAML:\n${doc.errors.map((e) => e.message).join('\n')}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigInvalidError(`config ${path} is invalid:\n${describeIssues(parsed.error, doc, lines, Config)}`, { cause: parsed.error });
  }
  const config = parsed.data;
  if (env.NATS_URL) {
    // The override meets the same checks as nats.url in the file, or a typo in it would only show as endless reconnects.
    const problems = natsUrlProblems(env.NATS_URL);
    if (problems.length > 0) {
      throw new ConfigInvalidError(`env NATS_URL (overrides nats.url of ${path}) is invalid:\n${problems.map((p) => `  ✖ ${p}`).join('\n')}`);
    }
    config.nats.url = env.NATS_URL;
  }
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A change to the config file is applied, or reported when invalid, within this many ms, whatever else happens. */
export const RELOAD_BOUND_MS = 1000;
// Editors and ConfigMap updates write in several steps, so a change is read once the file has been still this long…
const SETTLE_MS = 100;
// …but no later than this after the first change seen, so a file rewritten without pause is read all the same.
const MAX_SETTLE_MS = 300;
// fs.watch misses some changes (a symlink to a file in another directory, filesystems without inotify); a look at
// the file this often backs it up. Worst case: POLL_MS + MAX_SETTLE_MS, well within RELOAD_BOUND_MS.
const POLL_MS = 300;

/**
 * Calls `onChange` with the new config whenever the file changes and still validates; `onError` otherwise, while
 * the old config stays in force; either within RELOAD_BOUND_MS of the change. Only the file itself counts: what
 * its path resolves to and that file's inode, size and times. Its directory is watched, not the file, because
 * Kubernetes updates a mounted ConfigMap by swapping a symlink (`..data`) to a new directory, which a watch on the
 * old file would never see; events for other files there (a log appended every few ms) are skipped without a stat
 * (`mayMoveConfig`).
 */
export function watchConfig(
  path: string,
  onChange: (config: Config) => void,
  onError: (error: Error) => void,
  env: Env = process.env,
): FSWatcher {
  const file = resolve(path);
  let last = safeRead(file);
  let seen = identity(file);
  let firstChangeAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    firstChangeAt = undefined;
    const text = safeRead(file);
    if (text === last) return;
    last = text;
    try {
      onChange(loadConfig(file, env));
    } catch (error) {
      onError(error as Error);
    }
  };
  const look = () => {
    const now = identity(file);
    if (now === seen) return;
    seen = now;
    const at = Date.now();
    firstChangeAt ??= at;
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(0, Math.min(SETTLE_MS, firstChangeAt + MAX_SETTLE_MS - at)));
  };
  const base = basename(file);
  const watcher = watch(dirname(file), (_event, name) => {
    if (mayMoveConfig(name, base)) look();
  });
  // A watch that fails (its directory removed, inotify limits) leaves the poll; an unhandled 'error' would crash.
  watcher.on('error', noop);
  const poll = setInterval(look, POLL_MS).unref();
  watcher.on('close', () => {
    clearInterval(poll);
    clearTimeout(timer);
  });
  return watcher;
}

/**
 * Whether a change the directory watch reports, to the entry `name` (null when the platform does not say), can
 * change the config file `base` in that directory: the file itself (written, or renamed over), or what Kubernetes'
 * atomic writer swaps when a mounted ConfigMap is updated (`..data`, `..data_tmp`, `..<timestamp>`; kubelet's
 * pkg/volume/util/atomic_writer.go). Anything else written there, such as a log beside the config, is not looked at:
 * each such write used to cost a realpath and a stat in every process watching the directory (in `make bench`, 12
 * processes for each line of Traefik's access log). A change this misses (a symlink of another name on the way to
 * the file, or one in another directory) is found by the poll.
 */
export function mayMoveConfig(name: string | null, base: string): boolean {
  return name === null || name === base || name.startsWith('..');
}

/** What the path resolves to and that file's inode, size and times; any write or swap changes it. */
function identity(file: string): string {
  try {
    const real = realpathSync(file);
    const s = statSync(real, { bigint: true });
    return `${real}\0${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return '';
  }
}

function noop(): void {}

function safeRead(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

import { createWriteStream, existsSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, waitUntil, type ManagedProcess } from '../stack/process.ts';

// Children of the benchmark: each one's output goes to <run dir>/<name>.log for the post-mortem, and every child is
// SIGKILLed if the benchmark dies (tools/stack/process.ts).

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * A command-line argument as a report shows it: the absolute path in `NAME=PATH` (or a bare PATH) made relative to
 * the repository root when it lies inside it (`-output=.bench/run-…/S0.bin`), so a committed report names no
 * developer's checkout. Anything else is returned unchanged.
 */
export function repoRelative(arg: string): string {
  const name = arg.slice(0, arg.indexOf('=') + 1);
  const value = arg.slice(name.length);
  if (!isAbsolute(value)) return arg;
  const inRepo = relative(REPO_ROOT, value);
  return inRepo.startsWith('..') || isAbsolute(inRepo) ? arg : `${name}${inRepo}`;
}

export interface Peer {
  readonly process: ManagedProcess;
  readonly port: number;
  readonly url: string;
}

export function startLogged(
  name: string,
  command: string,
  args: readonly string[],
  logDir: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = REPO_ROOT,
): ManagedProcess {
  const log = createWriteStream(join(logDir, `${name}.log`));
  return startProcess({ name, command, args, env, cwd, onOutput: (text) => log.write(text) });
}

/** Starts a child that prints `listening on HOST:PORT` and resolves with that port. */
export async function startPeer(name: string, command: string, args: readonly string[], logDir: string): Promise<Peer> {
  const child = startLogged(name, command, args, logDir);
  let port = 0;
  await waitUntil(
    `${name} to listen`,
    () => {
      const m = /listening on [^\s]*:(\d+)/.exec(child.output());
      port = m?.[1] ? Number(m[1]) : 0;
      return Promise.resolve(port > 0);
    },
    { process: child, timeoutMs: 20_000, intervalMs: 25 },
  );
  return { process: child, port, url: `http://127.0.0.1:${port}` };
}

/** A Node script of this folder, run by the same Node binary. */
export function nodeScript(relative: string): { command: string; args: string[] } {
  return { command: process.execPath, args: [join(REPO_ROOT, 'tools/bench', relative)] };
}

export function requireBin(envName: string, hint: string): string {
  const bin = process.env[envName];
  if (!bin || !existsSync(bin)) throw new Error(`${envName} is not set to a binary: ${hint}`);
  return bin;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

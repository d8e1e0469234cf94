import { spawn, type ChildProcess } from 'node:child_process';
import { atExit } from './at-exit.ts';

// Child processes (Traefik, the tap, the dispatcher) that keep their output for failure reports and cannot outlive
// the test run: every live child is SIGKILLed when this process exits, however it exits.

const live = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  atExit(() => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export interface ProcessOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Called with each chunk of output as it arrives, e.g. to echo the demo's children to the terminal. */
  readonly onOutput?: (text: string) => void;
  /** Bytes of combined stdout and stderr kept for `output()`; the oldest are dropped. */
  readonly keepBytes?: number;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Combined stdout and stderr so far (the last `keepBytes`). */
  output(): string;
  /** True once the process has exited. */
  exited(): boolean;
  /** Resolves with the exit code (or signal name) when the process exits. */
  readonly exit: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once, as a crash would. */
  kill(): Promise<void>;
}

export function startProcess(options: ProcessOptions): ManagedProcess {
  hookExit();
  const keep = options.keepBytes ?? 256 * 1024;
  let log = '';
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const exit = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (error) => {
      live.delete(child);
      log += `\n[${options.name}] failed to start: ${error.message}\n`;
      resolve('spawn-error');
    });
  });
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    log += text;
    if (log.length > keep) log = log.slice(log.length - keep);
    options.onOutput?.(text);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const gone = () => child.exitCode !== null || child.signalCode !== null || !live.has(child);
  const stop = async (graceMs = 5000) => {
    if (gone()) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.kill('SIGTERM');
    await exit;
    clearTimeout(timer);
  };
  return {
    name: options.name,
    pid: child.pid ?? -1,
    output: () => log,
    exited: gone,
    exit,
    stop,
    kill: async () => {
      if (gone()) return;
      child.kill('SIGKILL');
      await exit;
    },
  };
}

/**
 * Polls `probe` until it resolves true; rejects after `timeoutMs`, or at once when `process` exits first, with its
 * output so the reason is visible.
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  options: { timeoutMs?: number; process?: ManagedProcess; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError = '';
  for (;;) {
    if (options.process?.exited()) {
      throw new Error(`${options.process.name} exited before ${what}:\n${options.process.output()}`);
    }
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() > deadline) {
      const out = options.process ? `\n${options.process.name} output:\n${options.process.output()}` : '';
      throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}${out}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/** True when GET `url` answers 2xx; network errors count as "not yet". */
export async function answers2xx(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

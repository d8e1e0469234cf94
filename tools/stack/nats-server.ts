import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, waitUntil } from './process.ts';
import { scratchDir } from './scratch-dir.ts';

// A real nats-server on loopback for tests, the demo and the benchmark. `tools/run` builds the pinned binary and
// exports NATS_SERVER_BIN.

export interface NatsServerOptions {
  /** Reuse a port, e.g. to restart the server where clients expect it. Default: a free one. */
  port?: number;
  maxPayloadBytes?: number;
  /** Extra lines of nats-server configuration, e.g. an `authorization { ... }` or a `tls { ... }` block. */
  extraConfig?: readonly string[];
  /** Variables for the server's environment, which its config reads as `$NAME`. */
  env?: Record<string, string>;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** The server's process id (the benchmark reads its CPU time from /proc). */
  readonly pid: number;
  /** The server's combined output so far (its log: connections, authentication errors). */
  output(): string;
  stop(): Promise<void>;
}

export function natsServerBin(): string {
  const bin = process.env.NATS_SERVER_BIN;
  if (!bin || !existsSync(bin)) {
    throw new Error('NATS_SERVER_BIN is not set to a nats-server binary: run the tests with `make test` (it builds one)');
  }
  return bin;
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const scratch = scratchDir('rm-nats-');
  const dir = scratch.path;
  const conf = join(dir, 'nats.conf');
  writeFileSync(
    conf,
    [
      `host: 127.0.0.1`,
      `port: ${options.port ?? -1}`,
      `max_payload: ${options.maxPayloadBytes ?? 8 * 1024 * 1024}`,
      ...(options.extraConfig ?? []),
    ].join('\n'),
  );
  // Started through startProcess so that a crashed or interrupted test run never leaves a server behind.
  const child = startProcess({ name: 'nats-server', command: natsServerBin(), args: ['-c', conf], env: { ...process.env, ...options.env } });
  let port = 0;
  await waitUntil(
    'nats-server to listen',
    () => {
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(child.output());
      port = Number(m?.[1] ?? 0);
      return Promise.resolve(port > 0);
    },
    { process: child, intervalMs: 20 },
  );
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    output: () => child.output(),
    // Its config directory goes with it: every test file and demo run starts servers, and /tmp kept them all.
    stop: async () => {
      await child.stop();
      scratch.remove();
    },
  };
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child is gone. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

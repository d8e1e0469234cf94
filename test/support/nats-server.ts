import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A real nats-server on loopback. `make test` builds the pinned binary and exports NATS_SERVER_BIN.

export interface NatsServerOptions {
  /** Reuse a port, e.g. to restart the server where clients expect it. Default: a free one. */
  port?: number;
  maxPayloadBytes?: number;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
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
  const dir = mkdtempSync(join(tmpdir(), 'rm-nats-'));
  const conf = join(dir, 'nats.conf');
  writeFileSync(
    conf,
    [`host: 127.0.0.1`, `port: ${options.port ?? -1}`, `max_payload: ${options.maxPayloadBytes ?? 8 * 1024 * 1024}`].join('\n'),
  );
  const child = spawn(natsServerBin(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      if (m?.[1]) {
        child.stderr.off('data', onData);
        child.stderr.resume();
        resolve(Number(m[1]));
      }
    };
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      reject(new Error(`nats-server exited early (code ${code}):\n${log}`));
    });
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop: () => stopChild(child),
  };
}

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

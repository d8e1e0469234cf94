import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ConfigInput } from '../../contract/config.ts';
import { freePort } from '../stack/free-port.ts';
import { answers2xx, waitUntil, type ManagedProcess } from '../stack/process.ts';
import { REPO_ROOT, startLogged } from './processes.ts';

// One Request Mirror pipeline as production runs it: `node ingress-tap/main.ts --config FILE` and
// `node dispatcher/main.ts --config FILE` reading the same file. Each scenario that needs its own webhook
// behaviour gets its own pipeline with its own subject prefix and queue group, so their events never mix.

export const TAP_MAIN = join(REPO_ROOT, 'ingress-tap/main.ts');
export const DISPATCHER_MAIN = join(REPO_ROOT, 'dispatcher/main.ts');

/** Why pipelines cannot run yet, or null when both services are there. */
export function pipelineMissing(): string | null {
  const missing = [TAP_MAIN, DISPATCHER_MAIN].filter((f) => !existsSync(f));
  return missing.length ? `not present in this checkout: ${missing.map((f) => f.slice(REPO_ROOT.length + 1)).join(', ')}` : null;
}

/** Extra Node arguments for the services, e.g. `--cpu-prof` while diagnosing (main.ts --profile-dir). */
let serviceNodeArgs: readonly string[] = [];
export function setServiceNodeArgs(args: readonly string[]): void {
  serviceNodeArgs = args;
}

export type TargetInput = NonNullable<ConfigInput['targets']>[number];

export interface PipelineOptions {
  readonly name: string;
  readonly natsUrl: string;
  readonly targets: readonly TargetInput[];
  readonly dir: string;
  /** Start the tap only (throughput against bare fastify), or the dispatcher only. */
  readonly tap?: boolean;
  readonly dispatcher?: boolean;
  readonly dispatcherMaxQueuedBytes?: number;
  /** Serve the forwardAuth listener over TLS (HTTP/2 or HTTP/1.1 by ALPN) with this certificate. */
  readonly forwardAuthTls?: { readonly certFile: string; readonly keyFile: string };
}

export interface Pipeline {
  readonly name: string;
  readonly subjectPrefix: string;
  readonly tap?: ManagedProcess;
  readonly dispatcher?: ManagedProcess;
  readonly forwardAuthPort: number;
  readonly mirrorPort: number;
  /** The plugin listener, where S10's Traefik plugin sends its batches. */
  readonly pluginPort: number;
  readonly tapAdminUrl: string;
  readonly dispatcherAdminUrl: string;
  stop(): Promise<void>;
}

/**
 * Where a pipeline's config file goes: a directory of their own, as in a deployment (a mounted ConfigMap holds
 * nothing else). In the run directory itself every line of Traefik's access log woke the config watch of each tap
 * and dispatcher.
 */
export function pipelineConfigPath(runDir: string, name: string): string {
  return join(runDir, 'configs', `${name}.yaml`);
}

export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const subjectPrefix = `bench-${options.name}`;
  const ports = { fa: await freePort(), mirror: await freePort(), plugin: await freePort(), tapAdmin: await freePort(), dAdmin: await freePort() };
  const config: ConfigInput = {
    nats: { url: options.natsUrl, subjectPrefix, queueGroup: subjectPrefix },
    tap: {
      forwardAuth: { host: '127.0.0.1', port: ports.fa, ...(options.forwardAuthTls ? { tls: { ...options.forwardAuthTls } } : {}) },
      mirror: { host: '127.0.0.1', port: ports.mirror },
      // Its default port is fixed: the run's several taps would collide on it.
      plugin: { host: '127.0.0.1', port: ports.plugin },
      admin: { host: '127.0.0.1', port: ports.tapAdmin },
    },
    dispatcher: {
      admin: { host: '127.0.0.1', port: ports.dAdmin },
      network: { allowLoopback: true },
      ...(options.dispatcherMaxQueuedBytes ? { maxQueuedBytes: options.dispatcherMaxQueuedBytes } : {}),
    },
    targets: [...options.targets],
  };
  const file = pipelineConfigPath(options.dir, options.name);
  mkdirSync(dirname(file), { recursive: true });
  // JSON is YAML; the services read it with the same loader as any config file.
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  const env = { ...process.env, LOG_LEVEL: 'warn' };
  const tap =
    options.tap === false ? undefined : startLogged(`tap-${options.name}`, process.execPath, [...serviceNodeArgs, TAP_MAIN, '--config', file], options.dir, env);
  const dispatcher =
    options.dispatcher === false
      ? undefined
      : startLogged(`dispatcher-${options.name}`, process.execPath, [...serviceNodeArgs, DISPATCHER_MAIN, '--config', file], options.dir, env);
  const tapAdminUrl = `http://127.0.0.1:${ports.tapAdmin}`;
  const dispatcherAdminUrl = `http://127.0.0.1:${ports.dAdmin}`;
  const stop = async () => {
    await Promise.all([tap?.stop(), dispatcher?.stop()]);
  };
  try {
    if (tap) await waitUntil(`tap ${options.name} /readyz`, () => answers2xx(`${tapAdminUrl}/readyz`), { process: tap });
    if (dispatcher) {
      await waitUntil(`dispatcher ${options.name} /readyz`, () => answers2xx(`${dispatcherAdminUrl}/readyz`), {
        process: dispatcher,
      });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name: options.name,
    subjectPrefix,
    ...(tap ? { tap } : {}),
    ...(dispatcher ? { dispatcher } : {}),
    forwardAuthPort: ports.fa,
    mirrorPort: ports.mirror,
    pluginPort: ports.plugin,
    tapAdminUrl,
    dispatcherAdminUrl,
    stop,
  };
}

import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { ConfigInput, ListenerTls } from '../../contract/config.ts';
import { MirrorEvent } from '../../contract/event.ts';
import { Cleanup } from './cleanup.ts';
import { freePort } from './free-port.ts';
import { startHttpReceiver, type HttpReceiver, type ReceivedRequest, type Responder } from './http-receiver.ts';
import { startNatsServer, type NatsServer } from './nats-server.ts';
import { answers2xx, startProcess, waitUntil, type ManagedProcess } from './process.ts';
import { REQUEST_MIRROR_PLUGIN, startTraefik, type Traefik } from './traefik.ts';
import { scratchDir } from './scratch-dir.ts';

// The whole product on loopback, as the e2e tests and the demo run it: NATS, the ingress-tap, the dispatcher, an
// upstream, webhook receivers and Traefik in front. Each piece's teardown is registered the moment it starts, so a
// failure half-way through start-up still stops what did start.

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Addresses the Traefik dynamic configuration points at. */
export interface Backends {
  /** forwardAuth address of the tap, e.g. `http://127.0.0.1:40001/` (https with `tapForwardAuthTls`). */
  readonly tapForwardAuthUrl: string;
  /** Base URL of the tap's mirror listener (a Traefik server URL; https with `tapMirrorTls`). */
  readonly tapMirrorUrl: string;
  /** Base URL of the tap's plugin listener (the plugin's `tapURL`). */
  readonly tapPluginUrl: string;
  readonly upstreamUrl: string;
}

export interface StackOptions {
  /** Webhook receivers to start, by name; `targets` gets their URLs. */
  readonly receivers?: readonly string[];
  readonly targets?: (receivers: Readonly<Record<string, HttpReceiver>>) => NonNullable<ConfigInput['targets']>;
  readonly tap?: Omit<NonNullable<ConfigInput['tap']>, 'forwardAuth' | 'mirror' | 'admin'>;
  /** Serve the tap's forwardAuth listener over TLS (HTTP/2 and HTTP/1.1); `tapForwardAuthUrl` is then https. */
  readonly tapForwardAuthTls?: ListenerTls;
  /** Serve the tap's mirror listener over TLS (HTTP/2 and HTTP/1.1); `tapMirrorUrl` is then https. */
  readonly tapMirrorTls?: ListenerTls;
  readonly dispatcher?: Omit<NonNullable<ConfigInput['dispatcher']>, 'admin' | 'network'>;
  /** Dynamic Traefik configuration and the routers to wait for; no Traefik when absent. */
  readonly traefik?: (backends: Backends) => { files: Record<string, string>; routers: string[] };
  readonly traefikLogLevel?: 'DEBUG' | 'INFO';
  /** Load the Request Mirror plugin into Traefik (as `requestmirror`). */
  readonly traefikPlugin?: boolean;
  /** Traefik applies changes to its dynamic files while running. */
  readonly traefikWatch?: boolean;
  /** More static configuration flags for Traefik. */
  readonly traefikArgs?: readonly string[];
  /** How the upstream answers; default: `upstreamEcho`. */
  readonly upstream?: Responder;
  /** Fixed ports (the demo); each absent one is a free port. */
  readonly ports?: Partial<Record<'nats' | 'upstream' | 'tapForwardAuth' | 'tapMirror' | 'tapPlugin' | 'tapAdmin' | 'dispatcherAdmin' | 'traefikWeb' | 'traefikAdmin', number>>;
  /** Read targets from MirrorTargets too (config `kubernetes`); the services then need `env.KUBECONFIG`. */
  readonly kubernetes?: ConfigInput['kubernetes'];
  /** Extra environment for the tap and the dispatcher, e.g. `KUBECONFIG`; a function gives each its own. */
  readonly env?: NodeJS.ProcessEnv | ((service: 'ingress-tap' | 'dispatcher') => NodeJS.ProcessEnv);
  /** Sees every child's output as it arrives, e.g. to echo it with `--verbose`. */
  readonly onOutput?: (name: string, text: string) => void;
}

export interface Stack {
  readonly dir: string;
  readonly configPath: string;
  nats: NatsServer;
  readonly natsPort: number;
  tap: ManagedProcess;
  dispatcher: ManagedProcess;
  readonly traefik: Traefik | undefined;
  readonly upstream: HttpReceiver;
  readonly receivers: Readonly<Record<string, HttpReceiver>>;
  readonly tapAdminUrl: string;
  readonly dispatcherAdminUrl: string;
  readonly backends: Backends;
  /** Sends a request through Traefik's `web` entrypoint (`path` may carry a query). */
  send(path: string, init?: SendInit): Promise<SentResponse>;
  /** Starts NATS again on its old port (after `nats.stop()`). */
  restartNats(): Promise<void>;
  startTap(): Promise<ManagedProcess>;
  startDispatcher(): Promise<ManagedProcess>;
  /** Every process's output, for a failure report. */
  report(): string;
  close(): Promise<void>;
}

export interface SendInit {
  readonly method?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer | AsyncIterable<Buffer>;
}

export interface SentResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** The upstream's default answer: 201, two custom headers and a binary body, so a changed response shows. */
export const UPSTREAM_BODY = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x41, 0x42, 0x43, 0x0a]);
export const upstreamEcho: Responder = (_req, res) => {
  res.writeHead(201, { 'content-type': 'application/octet-stream', 'x-upstream': 'yes', 'set-cookie': 'up=1; Path=/' });
  res.end(UPSTREAM_BODY);
};

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const cleanup = new Cleanup();
  const processes: ManagedProcess[] = [];
  try {
    return await build(options, cleanup, processes);
  } catch (error) {
    const report = processes.map((p) => `--- ${p.name} ---\n${p.output()}`).join('\n');
    await cleanup.run().catch(() => undefined);
    throw new Error(`stack failed to start: ${(error as Error).message}\n${report}`, { cause: error });
  }
}

async function build(options: StackOptions, cleanup: Cleanup, processes: ManagedProcess[]): Promise<Stack> {
  const scratch = scratchDir('rm-stack-');
  const dir = scratch.path;
  cleanup.add(() => {
    scratch.remove();
  });

  const ports = options.ports ?? {};
  // A port below the ephemeral range (see free-port.ts) rather than nats-server's own port 0 pick.
  let nats = await startNatsServer({ port: ports.nats ?? (await freePort()) });
  cleanup.add(() => nats.stop());
  const natsPort = nats.port;

  const upstream = await startHttpReceiver(options.upstream ?? upstreamEcho, ports.upstream ?? 0);
  cleanup.add(() => upstream.close());

  const receivers: Record<string, HttpReceiver> = {};
  for (const name of options.receivers ?? []) {
    const r = await startHttpReceiver();
    cleanup.add(() => r.close());
    receivers[name] = r;
  }

  const faPort = ports.tapForwardAuth ?? (await freePort());
  const mirrorPort = ports.tapMirror ?? (await freePort());
  const pluginPort = ports.tapPlugin ?? (await freePort());
  const tapAdminPort = ports.tapAdmin ?? (await freePort());
  const dispatcherAdminPort = ports.dispatcherAdmin ?? (await freePort());
  const config: ConfigInput = {
    nats: { url: nats.url },
    tap: {
      ...options.tap,
      forwardAuth: { host: '127.0.0.1', port: faPort, ...(options.tapForwardAuthTls ? { tls: options.tapForwardAuthTls } : {}) },
      mirror: { host: '127.0.0.1', port: mirrorPort, ...(options.tapMirrorTls ? { tls: options.tapMirrorTls } : {}) },
      // Its default port is fixed: two stacks at once (parallel test files) would collide on it.
      plugin: { ...options.tap?.plugin, host: '127.0.0.1', port: pluginPort },
      admin: { host: '127.0.0.1', port: tapAdminPort },
    },
    dispatcher: {
      ...options.dispatcher,
      admin: { host: '127.0.0.1', port: dispatcherAdminPort },
      network: { allowLoopback: true },
    },
    targets: options.targets?.(receivers) ?? [],
    ...(options.kubernetes ? { kubernetes: options.kubernetes } : {}),
  };
  const configPath = join(dir, 'request-mirror.yaml');
  // JSON is YAML; the services read it with the same loader as a hand-written file.
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  const tapAdminUrl = `http://127.0.0.1:${tapAdminPort}`;
  const dispatcherAdminUrl = `http://127.0.0.1:${dispatcherAdminPort}`;
  const extraEnv = options.env;
  const envOf = (name: 'ingress-tap' | 'dispatcher') => ({
    ...process.env,
    ...(typeof extraEnv === 'function' ? extraEnv(name) : extraEnv),
    NATS_URL: nats.url,
  });

  const startService = async (name: 'ingress-tap' | 'dispatcher', adminUrl: string) => {
    const p = startProcess({
      name,
      command: process.execPath,
      args: [join(ROOT, name, 'main.ts'), '--config', configPath],
      env: envOf(name),
      cwd: ROOT,
      ...(options.onOutput ? { onOutput: (text: string) => options.onOutput?.(name, text) } : {}),
    });
    processes.push(p);
    cleanup.add(() => p.stop());
    await waitUntil(`${name} /readyz`, () => answers2xx(`${adminUrl}/readyz`), { process: p });
    return p;
  };

  const tap = await startService('ingress-tap', tapAdminUrl);
  const dispatcher = await startService('dispatcher', dispatcherAdminUrl);

  const backends: Backends = {
    tapForwardAuthUrl: `${options.tapForwardAuthTls ? 'https' : 'http'}://127.0.0.1:${faPort}/`,
    tapMirrorUrl: `${options.tapMirrorTls ? 'https' : 'http'}://127.0.0.1:${mirrorPort}`,
    tapPluginUrl: `http://127.0.0.1:${pluginPort}`,
    upstreamUrl: upstream.url,
  };

  let traefik: Traefik | undefined;
  if (options.traefik) {
    const dynamic = options.traefik(backends);
    traefik = await startTraefik({
      ...dynamic,
      logLevel: options.traefikLogLevel ?? 'INFO',
      ...(options.traefikPlugin ? { localPlugins: { requestmirror: REQUEST_MIRROR_PLUGIN } } : {}),
      ...(options.traefikWatch ? { watch: true } : {}),
      ...(options.traefikArgs ? { extraArgs: options.traefikArgs } : {}),
      ...(ports.traefikWeb === undefined ? {} : { webPort: ports.traefikWeb }),
      ...(ports.traefikAdmin === undefined ? {} : { adminPort: ports.traefikAdmin }),
      ...(options.onOutput ? { onOutput: (text: string) => options.onOutput?.('traefik', text) } : {}),
    });
    const t = traefik;
    processes.push(t.process);
    cleanup.add(() => t.stop());
  }

  const agent = new Agent({ connections: 64 });
  cleanup.add(() => agent.close());

  const stack: Stack = {
    dir,
    configPath,
    nats,
    natsPort,
    tap,
    dispatcher,
    traefik,
    upstream,
    receivers,
    tapAdminUrl,
    dispatcherAdminUrl,
    backends,
    async send(path, init = {}) {
      if (!traefik) throw new Error('this stack has no Traefik');
      const res = await request(`${traefik.url}${path}`, {
        dispatcher: agent,
        method: (init.method ?? 'GET') as 'GET',
        headers: init.headers ?? {},
        body: init.body === undefined || typeof init.body === 'string' || Buffer.isBuffer(init.body) ? (init.body ?? null) : Readable.from(init.body),
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body };
    },
    async restartNats() {
      nats = await startNatsServer({ port: natsPort });
      stack.nats = nats;
      cleanup.add(() => nats.stop());
    },
    async startTap() {
      stack.tap = await startService('ingress-tap', tapAdminUrl);
      return stack.tap;
    },
    async startDispatcher() {
      stack.dispatcher = await startService('dispatcher', dispatcherAdminUrl);
      return stack.dispatcher;
    },
    report: () => processes.map((p) => `--- ${p.name} (pid ${p.pid}) ---\n${p.output().slice(-20_000)}`).join('\n'),
    close: () => cleanup.run(),
  };
  return stack;
}

// Each request is parsed once: waitForEvent polls every 50 ms, and re-parsing every megabyte-sized event a receiver
// holds on each poll kept the test process's event loop (which runs the receivers) too busy to read deliveries in
// time under CI load; an upload test then timed out waiting for an event the dispatcher was still trying to send.
const parsed = new WeakMap<ReceivedRequest, MirrorEvent>();

/** The events a receiver got, parsed and checked against the contract (each request once, then from a cache). */
export function eventsOf(requests: readonly ReceivedRequest[]): MirrorEvent[] {
  return requests.map((r) => {
    let event = parsed.get(r);
    if (event === undefined) {
      const raw: unknown = JSON.parse(r.body.toString('utf8'));
      MirrorEvent.parse(raw);
      // zod's copy would drop a header or cookie named __proto__; the schema has no transforms, so raw is the event.
      event = raw as MirrorEvent;
      parsed.set(r, event);
    }
    return event;
  });
}

/** Waits until a receiver has an event whose data matches `pick`, and returns it. */
export async function waitForEvent(
  receiver: HttpReceiver,
  pick: (event: MirrorEvent) => boolean,
  timeoutMs = 15_000,
): Promise<MirrorEvent> {
  let found: MirrorEvent | undefined;
  await waitUntil(
    'a matching event at the webhook',
    () => {
      found = eventsOf(receiver.requests).find(pick);
      return Promise.resolve(found !== undefined);
    },
    { timeoutMs, intervalMs: 50 },
  );
  if (!found) throw new Error('unreachable');
  return found;
}

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cleanup } from './cleanup.ts';
import { freePort } from './free-port.ts';
import { natsServerBin } from './nats-server.ts';
import { startProcess, waitUntil, type ManagedProcess } from './process.ts';
import { scratchDir } from './scratch-dir.ts';

// A real nats-server cluster on loopback: every node routes to every other one (a full mesh, as the NATS docs
// recommend for a cluster), each with a client port, a route port and a monitoring port fixed up front, so a node
// killed and restarted comes back where its clients and peers expect it. Ports come from freePort (below the
// ephemeral range). Every process is started through startProcess, so none outlives the test run.

export interface NatsNodeOptions {
  /** Extra lines of nats-server configuration, e.g. `max_pending: 262144` or `write_deadline: "500ms"`. */
  readonly extraConfig?: readonly string[];
}

export interface NatsClusterNode {
  readonly name: string;
  /** `nats://127.0.0.1:<port>` of this node only. */
  readonly url: string;
  readonly port: number;
  /** Base URL of the node's monitoring endpoint (`/varz`, `/routez`, `/connz`). */
  readonly monitorUrl: string;
  /** The running process's id; changes on restart. */
  pid(): number;
  /** Combined output of the current process. */
  output(): string;
  running(): boolean;
  /** SIGKILL, as a crash or an OOM kill would; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the node again on the same ports and waits until it has its routes back. */
  restart(): Promise<void>;
  /** SIGSTOP: the process freezes with its sockets open, as a node cut off by the network looks to its peers. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /** GET of a monitoring endpoint, parsed. */
  monitor<T = Record<string, unknown>>(path: string): Promise<T>;
}

export interface NatsCluster {
  readonly nodes: readonly NatsClusterNode[];
  /** Every node's client URL, comma-separated, as `nats.url` takes it. */
  readonly urls: string;
  stop(): Promise<void>;
}

interface Ports {
  readonly client: number;
  readonly route: number;
  readonly monitor: number;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return (await res.json()) as T;
}

/** Starts `size` (default 3) nodes and resolves once every node has a route to every other one. */
export async function startNatsCluster(options: { size?: number } & NatsNodeOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const scratch = scratchDir('rm-nats-cluster-');
  const dir = scratch.path;
  const cleanup = new Cleanup();
  cleanup.add(() => {
    scratch.remove();
  });
  const ports: Ports[] = [];
  const taken = new Set<number>();
  while (ports.length < size) {
    const picked: number[] = [];
    while (picked.length < 3) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        picked.push(p);
      }
    }
    ports.push({ client: picked[0] ?? 0, route: picked[1] ?? 0, monitor: picked[2] ?? 0 });
  }

  const nodes = ports.map((own, i): NatsClusterNode & { start(): void; stopNode(): Promise<void>; process(): ManagedProcess } => {
    const name = `n${i + 1}`;
    const conf = join(dir, `${name}.conf`);
    const routes = ports.filter((p) => p !== own).map((p) => `nats-route://127.0.0.1:${p.route}`);
    writeFileSync(
      conf,
      [
        `server_name: ${name}`,
        'host: 127.0.0.1',
        `port: ${own.client}`,
        `http: "127.0.0.1:${own.monitor}"`,
        `max_payload: ${8 * 1024 * 1024}`,
        ...(options.extraConfig ?? []),
        'cluster {',
        '  name: request-mirror-test',
        `  listen: "127.0.0.1:${own.route}"`,
        `  routes: [${routes.map((r) => `"${r}"`).join(', ')}]`,
        '}',
      ].join('\n'),
    );
    let child: ManagedProcess | undefined;
    let paused = false;
    const url = `nats://127.0.0.1:${own.client}`;
    const monitorUrl = `http://127.0.0.1:${own.monitor}`;
    const current = () => {
      if (!child) throw new Error(`${name} was never started`);
      return child;
    };
    const node = {
      name,
      process: current,
      url,
      port: own.client,
      monitorUrl,
      pid: () => current().pid,
      output: () => current().output(),
      running: () => child !== undefined && !child.exited(),
      start() {
        child = startProcess({ name: `nats-server ${name}`, command: natsServerBin(), args: ['-c', conf] });
      },
      async stopNode() {
        if (paused) node.resume();
        await child?.stop(2000);
      },
      kill: async () => {
        paused = false;
        await current().kill();
      },
      async restart() {
        if (node.running()) throw new Error(`${name} is still running`);
        node.start();
        await waitForRoutes(node, size - 1, current());
      },
      pause() {
        process.kill(current().pid, 'SIGSTOP');
        paused = true;
      },
      resume() {
        if (!paused) return;
        paused = false;
        if (node.running()) process.kill(current().pid, 'SIGCONT');
      },
      monitor: <T>(path: string) => getJson<T>(`${monitorUrl}${path}`),
    };
    return node;
  });

  for (const node of nodes) {
    cleanup.add(() => node.stopNode());
    node.start();
  }
  const stop = () => cleanup.run();
  try {
    await Promise.all(nodes.map((n) => waitForRoutes(n, size - 1, n.process())));
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, urls: nodes.map((n) => n.url).join(','), stop };
}

/** Waits until `node` has a route to `peers` distinct servers (a route pool may hold several connections per peer). */
async function waitForRoutes(node: NatsClusterNode, peers: number, process: ManagedProcess): Promise<void> {
  await waitUntil(
    `${node.name} to route to ${peers} peers`,
    async () => {
      const routez = await node.monitor<{ routes?: { remote_name?: string }[] }>('/routez');
      return new Set((routez.routes ?? []).map((r) => r.remote_name)).size >= peers;
    },
    { timeoutMs: 20_000, intervalMs: 50, process },
  );
}

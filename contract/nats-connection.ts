import type { ConnectionOptions } from '@nats-io/transport-node';
import { natsServerList, type Config } from './config.ts';

// The one set of NATS client options the tap, the dispatcher and their tests use, so what the cluster tests prove is
// what the services do. Cluster updates stay on (nats.js's default; `ignoreClusterUpdates` is never set): the
// servers a cluster gossips in INFO join the seeds, so a client told about one node can fail over to the others.

/** Client options for `connect()`: the seeds of `nats.url`, reconnect forever, and `nats.pingIntervalMs` liveness. */
export function natsConnectionOptions(nats: Config['nats'], name: string): ConnectionOptions {
  return {
    servers: natsServerList(nats.url),
    name,
    // NATS core keeps nothing for a client while it is away, so never give up: every second away is events lost.
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: nats.reconnectTimeWaitMs,
    // A hung or partitioned server keeps its TCP connections open; only unanswered pings reveal it.
    pingInterval: nats.pingIntervalMs,
    maxPingOut: nats.maxPingsOutstanding,
    timeout: nats.connectTimeoutMs,
  };
}

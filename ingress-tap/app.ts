import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { createAdminServer } from './admin.ts';
import { createEventIdFactory } from './event-id.ts';
import { capturePolicy } from './capture-policy.ts';
import type { TapMetrics } from './metrics.ts';
import type { Publisher } from './publisher.ts';
import { loadListenerTls } from './listener-tls.ts';
import { createPluginIngest } from './plugin-ingest.ts';
import { createRequestHandler } from './request-handler.ts';
import { createTapServer, type TapServer } from './tap-server.ts';

// The ingress-tap's behaviour, with its collaborators passed in: main.ts wires the real ones; tests pass a real
// NATS publisher, their own metrics registry and, for reproducible events, their own id factory and clock.

export interface TapDeps {
  readonly config: Config;
  readonly publisher: Publisher;
  readonly metrics: TapMetrics;
  readonly logger: Logger;
  /** CloudEvents `source`, e.g. `/request-mirror/ingress-tap/<hostname>`. */
  readonly source: string;
  /** Event id for a request seen at `time` (ms since the epoch); default: monotonic ULIDs. */
  readonly newId?: (time: number) => string;
  readonly now?: () => number;
  /** Extra /readyz lines that do not change readiness, e.g. a broken Kubernetes watch. */
  readonly readinessDetail?: () => readonly string[];
}

export interface Tap {
  readonly forwardAuth: TapServer;
  readonly mirror: TapServer;
  /** Where the Traefik plugin POSTs its batches of snapshots. */
  readonly plugin: FastifyInstance;
  readonly admin: FastifyInstance;
  /** Applies a reloaded config to the next request. Listener addresses and NATS settings need a restart. */
  reconfigure(config: Config): void;
  /** Stops accepting requests, answers those in flight, then closes the admin listener. */
  close(): Promise<void>;
}

/** Throws `TlsUnusableError` when a listener's `tls` files cannot be used. */
export function buildTap(deps: TapDeps): Tap {
  const { forwardAuth: forwardAuthListener, mirror: mirrorListener } = deps.config.tap;
  const forwardAuthTls = forwardAuthListener.tls && loadListenerTls('tap.forwardAuth.tls', forwardAuthListener.tls);
  const mirrorTls = mirrorListener.tls && loadListenerTls('tap.mirror.tls', mirrorListener.tls);
  let policy = capturePolicy(deps.config);
  const newId = deps.newId ?? createEventIdFactory();
  const handler = createRequestHandler({
    policy,
    publisher: deps.publisher,
    metrics: deps.metrics,
    logger: deps.logger,
    source: deps.source,
    newId,
    now: deps.now ?? Date.now,
  });
  const keepAliveTimeoutMs = deps.config.tap.keepAliveTimeoutMs;
  const connections = (listener: 'forwardAuth' | 'mirror') => (protocol: string) => {
    deps.metrics.connections.inc({ listener, protocol });
  };
  const forwardAuth = createTapServer({ attachment: 'forwardAuth', handler, keepAliveTimeoutMs, tls: forwardAuthTls, onConnection: connections('forwardAuth') });
  const mirror = createTapServer({ attachment: 'mirror', handler, keepAliveTimeoutMs, tls: mirrorTls, onConnection: connections('mirror') });
  const plugin = createPluginIngest({
    policy: () => policy,
    publisher: deps.publisher,
    metrics: deps.metrics,
    logger: deps.logger,
    source: deps.source,
    newId,
    maxBatchBytes: deps.config.tap.plugin.maxBatchBytes,
    keepAliveTimeoutMs,
  });
  const admin = createAdminServer(deps.publisher, deps.metrics, deps.readinessDetail);
  return {
    forwardAuth,
    mirror,
    plugin,
    admin,
    reconfigure(config) {
      policy = capturePolicy(config);
      handler.setPolicy(policy);
    },
    async close() {
      await Promise.all([forwardAuth.close(), mirror.close(), plugin.close()]);
      await handler.flush();
      await admin.close();
    },
  };
}

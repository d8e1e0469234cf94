import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Config } from '../contract/config.ts';
import { loadConfig, watchConfig } from '../contract/config-file.ts';
import { RequestMirrorError } from '../contract/errors.ts';
import { createAddressPolicy } from './address-policy.ts';
import { startAdminServer } from './admin-server.ts';
import { createDispatcher } from './dispatcher.ts';
import { createMetrics } from './metrics.ts';
import { resolveSecrets, type SecretKeys } from './secrets.ts';
import { subscribeEvents, watchConnection } from './subscription.ts';

// Wiring only: read the config, connect, listen, reload, shut down. Behaviour lives in createDispatcher.
//   node dispatcher/main.ts --config FILE        (or REQUEST_MIRROR_CONFIG=FILE)

function loadAll(path: string): { config: Config; secrets: SecretKeys } {
  const config = loadConfig(path);
  const secrets = resolveSecrets(config);
  // Throws NetworkPolicyInvalidError now rather than at the first delivery.
  createAddressPolicy(config.dispatcher.network);
  return { config, secrets };
}

function describe(error: unknown): string {
  return error instanceof RequestMirrorError ? `${error.code}: ${error.message}` : String(error);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
  const path = values.config ?? process.env.REQUEST_MIRROR_CONFIG;
  if (!path) {
    process.stderr.write('dispatcher: no config file: pass --config FILE or set REQUEST_MIRROR_CONFIG\n');
    process.exit(1);
  }
  let loaded: { config: Config; secrets: SecretKeys };
  try {
    loaded = loadAll(path);
  } catch (error) {
    process.stderr.write(`dispatcher: ${describe(error)}\n`);
    process.exit(1);
  }
  let { config } = loaded;
  const logger = pino({ name: 'dispatcher', level: process.env.LOG_LEVEL ?? 'info' });
  const metrics = createMetrics({ defaultMetrics: true });
  const dispatcher = createDispatcher({ config, secrets: loaded.secrets, metrics, logger });

  let connected = false;
  let sub: Subscription | undefined;
  let stopping = false;
  const admin = await startAdminServer(config.dispatcher.admin, metrics.registry, () => connected && sub !== undefined && !stopping);
  logger.info({ port: admin.port }, 'admin listening');

  const nc: NatsConnection = await connect({
    servers: config.nats.url.split(',').map((s) => s.trim()),
    name: 'request-mirror-dispatcher',
    // NATS core keeps nothing for us while we are away, so never give up: every second away is events lost.
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
  });
  connected = true;
  watchConnection(nc, logger, (up) => {
    connected = up;
  });
  sub = subscribeEvents(nc, config.nats, dispatcher, logger);

  const watcher = watchConfig(
    path,
    (next) => {
      let secrets: SecretKeys;
      try {
        secrets = resolveSecrets(next);
        createAddressPolicy(next.dispatcher.network);
      } catch (error) {
        logger.error({ err: error }, `config reload rejected, keeping the old one: ${describe(error)}`);
        return;
      }
      const previous = config;
      config = next;
      dispatcher.reconfigure(next, secrets);
      if (next.nats.subjectPrefix !== previous.nats.subjectPrefix || next.nats.queueGroup !== previous.nats.queueGroup) {
        // The new subscription starts before the old one stops, so no event is missed in between; for a changed
        // queue group an event can arrive on both in that moment (receivers deduplicate on webhook-id).
        const old = sub;
        sub = subscribeEvents(nc, next.nats, dispatcher, logger);
        old?.drain().then(
          () => { logger.info({ subject: old.getSubject() }, 'previous subscription drained'); },
          (error: unknown) => { logger.warn({ err: error }, 'draining the previous subscription failed'); },
        );
      }
      if (next.nats.url !== previous.nats.url) logger.warn('nats.url changed: takes effect at the next restart');
      logger.info({ targets: next.targets.map((t) => t.name) }, 'config reloaded');
    },
    (error) => {
      logger.error({ err: error }, `config reload rejected, keeping the old one: ${describe(error)}`);
    },
  );

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, pending: dispatcher.pending() }, 'shutting down: draining the subscription');
    watcher.close();
    // Draining the subscription delivers what the server already sent us, then stops new events.
    await sub?.drain().catch((error: unknown) => { logger.warn({ err: error }, 'subscription drain failed'); });
    const { completed } = await dispatcher.drain(config.dispatcher.shutdownTimeoutMs);
    logger.info({ completed }, completed ? 'all deliveries finished' : 'shutdown timeout: dropped what was left (reason shutdown)');
    await nc.close().catch(() => undefined);
    await admin.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

await main();

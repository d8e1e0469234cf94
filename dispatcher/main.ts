import { type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { createServiceLogger } from '../contract/service-logger.ts';
import { parseCommandLine, usageError } from '../contract/command-line.ts';
import { commonWarnings, formatFindings, loadForStartup, validateFile, type ConfigFinding } from '../contract/config-check.ts';
import { watchConfig } from '../contract/config-file.ts';
import type { Config } from '../contract/config.ts';
import { RequestMirrorError } from '../contract/errors.ts';
import { connectWhenUp, natsConnectionOptions } from '../contract/nats-connection.ts';
import { resolveNatsCredentials, type NatsCredentials } from '../contract/nats-credentials.ts';
import { startAdminServer } from './admin-server.ts';
import type { AddressPolicy } from './address-policy.ts';
import { checkDispatcherConfig, refusedTargetWarnings } from './config-check.ts';
import { createDispatcher } from './dispatcher.ts';
import { createMetrics } from './metrics.ts';
import type { SecretKeys } from './secrets.ts';
import { watchConnection } from './nats-status.ts';
import { subscribeEvents } from './subscription.ts';
import { decodeSecret } from './signing.ts';
import { deliveryStatesFrom } from '../kubernetes/delivery-states.ts';
import { startKubernetesTargets } from '../kubernetes/kubernetes-targets.ts';
import { startStatusWriter } from '../kubernetes/status-writer.ts';
import type { TargetSnapshot } from '../kubernetes/target-source.ts';

// Wiring only: read the config, connect, listen, reload, shut down. Behaviour lives in createDispatcher.

const NAME = 'node dispatcher/main.ts';
const USAGE = `
usage: node dispatcher/main.ts [--config FILE]            run the dispatcher
       node dispatcher/main.ts validate [--config FILE]   check FILE as the dispatcher does at start-up, then exit
  --config FILE   the config file (default: $REQUEST_MIRROR_CONFIG)
  -h, --help      this text
Environment: NATS_URL overrides nats.url; LOG_LEVEL sets the log level (default info); the variables that
targets[].secrets and nats.auth name.
Exit status: 0 stopped cleanly (or valid), 1 failed while running, 2 bad usage or a config it cannot use.`;

/** The file's signing keys plus those of the MirrorTargets, read from their Secrets. */
function withKubernetesSecrets(file: SecretKeys, snapshot: TargetSnapshot | undefined): SecretKeys {
  const keys = new Map(file);
  for (const watched of snapshot?.objects ?? []) {
    if (watched.target) keys.set(watched.target.name, watched.secrets.map(decodeSecret));
  }
  return keys;
}

/** The settings of `nats` that only a new connection applies. */
function connectionKey(nats: Config['nats']): string {
  return JSON.stringify([nats.url, nats.pingIntervalMs, nats.maxPingsOutstanding, nats.connectTimeoutMs, nats.reconnectTimeWaitMs, nats.auth, nats.tls]);
}

function describe(error: unknown): string {
  return error instanceof RequestMirrorError ? `${error.code}: ${error.message}` : String(error);
}

async function main(): Promise<void> {
  const { values, positionals } = parseCommandLine({ name: NAME, usage: USAGE, options: { config: { type: 'string' } }, maxPositionals: 1 });
  const [subcommand] = positionals;
  if (subcommand !== undefined && subcommand !== 'validate') usageError(NAME, `unknown command ${JSON.stringify(subcommand)}`);
  const path = values.config ?? process.env.REQUEST_MIRROR_CONFIG;
  if (!path) usageError(NAME, 'no config: pass --config FILE or set REQUEST_MIRROR_CONFIG');
  if (subcommand === 'validate') {
    await validateFile('dispatcher validate', path, 'the dispatcher', async (c) => {
      const { findings, policy } = checkDispatcherConfig(c);
      return [...resolveNatsCredentials(c.nats).findings, ...findings, ...(await refusedTargetWarnings(c, policy))];
    });
  }
  let secrets: SecretKeys = new Map();
  let credentials: NatsCredentials | undefined;
  let policy: AddressPolicy | undefined;
  const startup = await loadForStartup('dispatcher', path, (c) => {
    const checked = checkDispatcherConfig(c);
    if (checked.secrets) secrets = checked.secrets;
    policy = checked.policy;
    const nats = resolveNatsCredentials(c.nats);
    credentials = nats.credentials;
    return [...nats.findings, ...checked.findings];
  });
  let { config } = startup;
  const logger = createServiceLogger('dispatcher');
  const logWarnings = (warnings: readonly ConfigFinding[]) => {
    for (const w of warnings) logger.warn({ code: w.code }, w.message);
  };
  logWarnings(startup.warnings);
  // Not awaited: a slow resolver must not hold the start-up back, and the policy is enforced at delivery anyway.
  void refusedTargetWarnings(config, policy).then(logWarnings);
  const metrics = createMetrics({ defaultMetrics: true });
  const dispatcher = createDispatcher({ config, secrets, metrics, logger });
  let fileSecrets = secrets;
  // MirrorTargets (config `kubernetes`) join the file's targets through the same reconfigure path as a file reload.
  const kubernetes = startKubernetesTargets({
    config,
    registry: metrics.registry,
    logger,
    secrets: true,
    onChange: (snapshot) => {
      dispatcher.reconfigure(kubernetes?.merge(config) ?? config, withKubernetesSecrets(fileSecrets, snapshot));
      logger.info({ targets: snapshot.targets.map((t) => t.name) }, 'MirrorTargets applied');
    },
  });
  const statusWriter =
    kubernetes &&
    startStatusWriter({
      kubeConfig: kubernetes.kubeConfig,
      logger,
      metrics: kubernetes.metrics,
      intervalMs: config.kubernetes?.statusIntervalMs ?? 2000,
      snapshot: () => kubernetes.source.snapshot(),
      deliveryStates: deliveryStatesFrom(metrics),
    });

  let connected = false;
  let sub: Subscription | undefined;
  let stopping = false;
  // Why the dispatcher has no usable connection, or no subscription, for /readyz; undefined while it is fine.
  let natsProblem: string | undefined;
  let subscriptionProblem: string | undefined;
  const admin = await startAdminServer(
    config.dispatcher.admin,
    metrics.registry,
    () => connected && sub !== undefined && !sub.isClosed() && !stopping,
    () => [...[natsProblem, subscriptionProblem].flatMap((p) => (p === undefined ? [] : [`nats: ${p}`])), ...(kubernetes?.readinessDetail() ?? [])],
  );
  logger.info({ port: admin.port }, 'admin listening');

  const first = connectWhenUp(natsConnectionOptions(config.nats, 'request-mirror-dispatcher', credentials), config.nats.reconnectTimeWaitMs, (error) => {
    natsProblem = error.message;
    logger.error({ err: error }, 'cannot connect to NATS; retrying');
  });
  process.once('SIGTERM', () => { first.stop(); });
  process.once('SIGINT', () => { first.stop(); });
  const nc: NatsConnection | undefined = await first.connection;
  if (nc === undefined) process.exit(0);
  connected = true;
  natsProblem = undefined;
  logger.info({ server: nc.getServer() }, 'connected to NATS');
  const onSubscriptionProblem = (problem: string) => {
    subscriptionProblem = problem;
  };
  const connectionWatch = watchConnection(nc, {
    logger,
    metrics,
    onChange: (up) => {
      connected = up;
    },
    onProblem: (problem) => {
      natsProblem = problem;
    },
  });
  sub = subscribeEvents(nc, config.nats, dispatcher, logger, { metrics, onProblem: onSubscriptionProblem });

  const watcher = watchConfig(
    path,
    (next) => {
      const checked = checkDispatcherConfig(next);
      if (!checked.secrets) {
        logger.error({ codes: checked.findings.map((f) => f.code) }, formatFindings('config reload rejected, keeping the old one:', checked.findings));
        return;
      }
      const previous = config;
      config = next;
      fileSecrets = checked.secrets;
      dispatcher.reconfigure(kubernetes?.merge(next) ?? next, withKubernetesSecrets(checked.secrets, kubernetes?.source.snapshot()));
      if (JSON.stringify(next.kubernetes) !== JSON.stringify(previous.kubernetes)) {
        logger.warn('kubernetes settings changed: they take effect at the next restart');
      }
      logWarnings(commonWarnings(next));
      void refusedTargetWarnings(next, checked.policy).then(logWarnings);
      if (next.nats.subjectPrefix !== previous.nats.subjectPrefix || next.nats.queueGroup !== previous.nats.queueGroup) {
        // The new subscription starts before the old one stops, so no event is missed in between; for a changed
        // queue group an event can arrive on both in that moment (receivers deduplicate on webhook-id).
        const old = sub;
        subscriptionProblem = undefined;
        sub = subscribeEvents(nc, next.nats, dispatcher, logger, { metrics, onProblem: onSubscriptionProblem });
        old?.drain().then(
          () => { logger.info({ subject: old.getSubject() }, 'previous subscription drained'); },
          (error: unknown) => { logger.warn({ err: error }, 'draining the previous subscription failed'); },
        );
      }
      if (connectionKey(next.nats) !== connectionKey(previous.nats)) {
        logger.warn('nats connection settings changed: they take effect at the next restart');
      }
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
    connectionWatch.stop();
    statusWriter?.stop();
    kubernetes?.source.stop();
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

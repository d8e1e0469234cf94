import { hostname } from 'node:os';
import { createServiceLogger } from '../contract/service-logger.ts';
import { parseCommandLine, usageError } from '../contract/command-line.ts';
import { commonWarnings, errorFinding, exitOnConfigErrors, loadForStartup, validateFile } from '../contract/config-check.ts';
import { watchConfig } from '../contract/config-file.ts';
import type { Config } from '../contract/config.ts';
import { RequestMirrorError } from '../contract/errors.ts';
import { resolveNatsCredentials, type NatsCredentials } from '../contract/nats-credentials.ts';
import { startKubernetesTargets } from '../kubernetes/kubernetes-targets.ts';
import { buildTap, type Tap } from './app.ts';
import { checkTapConfig } from './config-check.ts';
import { ListenFailedError } from './errors.ts';
import { createMetrics } from './metrics.ts';
import { startPublisher } from './publisher.ts';

// Wiring only: read the config, connect, listen, reload, shut down. Serves even while NATS is down; exits on
// SIGTERM/SIGINT after answering what is in flight and flushing NATS, within tap.shutdownTimeoutMs.

const NAME = 'node ingress-tap/main.ts';
const { values, positionals } = parseCommandLine({
  name: NAME,
  usage: `
usage: node ingress-tap/main.ts [--config FILE]            run the ingress-tap
       node ingress-tap/main.ts validate [--config FILE]   check FILE as the tap does at start-up, then exit
  --config FILE   the config file (default: $REQUEST_MIRROR_CONFIG)
  -h, --help      this text
Environment: NATS_URL overrides nats.url; LOG_LEVEL sets the log level (default info); the variable that
nats.auth names.
Exit status: 0 stopped cleanly (or valid), 1 failed while running, 2 bad usage or a config it cannot use.`,
  options: { config: { type: 'string' } },
  maxPositionals: 1,
});
const [subcommand] = positionals;
if (subcommand !== undefined && subcommand !== 'validate') usageError(NAME, `unknown command ${JSON.stringify(subcommand)}`);
const configPath = values.config ?? process.env.REQUEST_MIRROR_CONFIG;
if (!configPath) usageError(NAME, 'no config: pass --config FILE or set REQUEST_MIRROR_CONFIG');
if (subcommand === 'validate') {
  await validateFile('ingress-tap validate', configPath, 'the ingress-tap', (c) => [...resolveNatsCredentials(c.nats).findings, ...checkTapConfig(c)]);
}

const logger = createServiceLogger('ingress-tap');
let credentials: NatsCredentials | undefined;
const startup = await loadForStartup('ingress-tap', configPath, (c) => {
  const nats = resolveNatsCredentials(c.nats);
  credentials = nats.credentials;
  return [...nats.findings, ...checkTapConfig(c)];
});
let config: Config = startup.config;
for (const w of startup.warnings) logger.warn({ code: w.code }, w.message);

const metrics = createMetrics();
const publisher = startPublisher({ nats: config.nats, credentials, maxPendingBytes: config.tap.maxPendingPublishBytes, metrics, logger });
let tap: Tap;
try {
  tap = buildTap({
    config,
    publisher,
    metrics,
    logger,
    source: `/request-mirror/ingress-tap/${hostname()}`,
    readinessDetail: () => [...publisher.problems(), ...(kubernetes?.readinessDetail() ?? [])],
  });
} catch (error) {
  // The TLS files were checked above; this is one that changed since.
  exitOnConfigErrors('ingress-tap', configPath, [errorFinding(error)]);
  throw error;
}

// MirrorTargets (config `kubernetes`) join the file's targets through the same reconfigure path as a file reload.
const kubernetes = startKubernetesTargets({
  config,
  registry: metrics.registry,
  logger,
  secrets: false,
  onChange: (snapshot) => {
    tap.reconfigure(kubernetes?.merge(config) ?? config);
    logger.info({ targets: snapshot.targets.map((t) => t.name) }, 'MirrorTargets applied');
  },
});
try {
  await Promise.all([
    // Copies: fastify's listen writes into its options object, and the config is frozen.
    tap.forwardAuth.listen({ ...config.tap.forwardAuth }),
    tap.mirror.listen({ ...config.tap.mirror }),
    tap.plugin.listen({ host: config.tap.plugin.host, port: config.tap.plugin.port }),
    tap.admin.listen({ ...config.tap.admin }),
  ]);
} catch (cause) {
  logger.fatal({ err: new ListenFailedError('cannot listen', { cause }) }, 'cannot listen');
  process.exit(1);
}
logger.info(
  { forwardAuth: tap.forwardAuth.addresses(), mirror: tap.mirror.addresses(), plugin: tap.plugin.addresses(), admin: tap.admin.addresses(), targets: config.targets.length },
  'ingress-tap listening',
);

const watcher = watchConfig(
  configPath,
  (next) => {
    if (JSON.stringify([next.nats, next.tap]) !== JSON.stringify([config.nats, config.tap])) {
      logger.warn('config reloaded: nats and tap settings take effect only after a restart; targets apply now');
    }
    if (JSON.stringify(next.kubernetes) !== JSON.stringify(config.kubernetes)) {
      logger.warn('config reloaded: kubernetes settings take effect only after a restart');
    }
    config = next;
    tap.reconfigure(kubernetes?.merge(next) ?? next);
    for (const w of commonWarnings(next)) logger.warn({ code: w.code }, w.message);
    logger.info({ targets: next.targets.length }, 'config reloaded');
  },
  (error) => {
    logger.error({ code: (error as Partial<RequestMirrorError>).code, err: error }, 'config reload rejected; keeping the previous config');
  },
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  const deadline = setTimeout(() => {
    logger.error({ timeoutMs: config.tap.shutdownTimeoutMs }, 'shutdown timed out; exiting');
    publisher.abandon();
    process.exit(1);
  }, config.tap.shutdownTimeoutMs);
  deadline.unref();
  watcher.close();
  kubernetes?.source.stop();
  await tap.close();
  await publisher.close();
  logger.info('stopped');
  process.exit(0);
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void shutdown(signal);
  });
}

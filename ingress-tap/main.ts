import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig, watchConfig } from '../contract/config-file.ts';
import type { Config } from '../contract/config.ts';
import { RequestMirrorError } from '../contract/errors.ts';
import { buildTap, type Tap } from './app.ts';
import { ListenFailedError } from './errors.ts';
import { createMetrics } from './metrics.ts';
import { startPublisher } from './publisher.ts';

// `node ingress-tap/main.ts --config FILE` (or REQUEST_MIRROR_CONFIG=FILE). Env: NATS_URL overrides nats.url,
// LOG_LEVEL sets the pino level (default info). Serves even while NATS is down; exits on SIGTERM/SIGINT after
// answering what is in flight and flushing NATS, within tap.shutdownTimeoutMs.

const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { service: 'ingress-tap' } });

const { values } = parseArgs({ options: { config: { type: 'string' } } });
const configPath = values.config ?? process.env.REQUEST_MIRROR_CONFIG;
if (!configPath) {
  logger.fatal('no config: pass --config FILE or set REQUEST_MIRROR_CONFIG');
  process.exit(2);
}

let config: Config;
try {
  config = loadConfig(configPath);
} catch (error) {
  if (!(error instanceof RequestMirrorError)) throw error;
  logger.fatal({ code: error.code }, error.message);
  process.exit(1);
}

const metrics = createMetrics();
const publisher = startPublisher({ servers: config.nats.url, maxPendingBytes: config.tap.maxPendingPublishBytes, metrics, logger });
let tap: Tap;
try {
  tap = buildTap({ config, publisher, metrics, logger, source: `/request-mirror/ingress-tap/${hostname()}` });
} catch (error) {
  if (!(error instanceof RequestMirrorError)) throw error;
  logger.fatal({ code: error.code }, error.message);
  process.exit(1);
}

try {
  await Promise.all([
    // Copies: fastify's listen writes into its options object, and the config is frozen.
    tap.forwardAuth.listen({ ...config.tap.forwardAuth }),
    tap.mirror.listen({ ...config.tap.mirror }),
    tap.admin.listen({ ...config.tap.admin }),
  ]);
} catch (cause) {
  logger.fatal({ err: new ListenFailedError('cannot listen', { cause }) }, 'cannot listen');
  process.exit(1);
}
logger.info(
  { forwardAuth: tap.forwardAuth.addresses(), mirror: tap.mirror.addresses(), admin: tap.admin.addresses(), targets: config.targets.length },
  'ingress-tap listening',
);

const watcher = watchConfig(
  configPath,
  (next) => {
    if (JSON.stringify([next.nats, next.tap]) !== JSON.stringify([config.nats, config.tap])) {
      logger.warn('config reloaded: nats and tap settings take effect only after a restart; targets apply now');
    }
    config = next;
    tap.reconfigure(next);
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
    process.exit(1);
  }, config.tap.shutdownTimeoutMs);
  deadline.unref();
  watcher.close();
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

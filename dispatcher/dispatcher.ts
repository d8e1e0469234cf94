import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { targetWants } from '../contract/target-filter.ts';
import { createAddressPolicy } from './address-policy.ts';
import { InvalidEventError } from './errors.ts';
import { parseEvent } from './incoming-event.ts';
import { TargetMetrics, type DispatcherMetrics } from './metrics.ts';
import { isUnchangedFor, projectEvent } from './projection.ts';
import type { SecretKeys } from './secrets.ts';
import { createSigner } from './signing.ts';
import { ByteBudget, TargetQueue } from './target-queue.ts';

// Routes each event to the queue of every target whose filters match. Knows nothing of NATS or HTTP listeners:
// main.ts feeds it messages, tests feed it real NATS messages through the same subscription code.

export interface DispatcherDeps {
  readonly config: Config;
  readonly secrets: SecretKeys;
  readonly metrics: DispatcherMetrics;
  readonly logger: Logger;
  /** Wall clock in ms, for signature timestamps, Retry-After dates and the breaker cooldown. */
  readonly now?: () => number;
  /** Uniform in [0, 1), for backoff jitter. */
  readonly random?: () => number;
}

export interface Dispatcher {
  /** Handles one NATS message payload; never throws. */
  handle(data: Uint8Array): void;
  /** Applies a new config: unchanged and changed targets keep their queues, removed ones drain in the background. */
  reconfigure(config: Config, secrets: SecretKeys): void;
  /** Events received for any target and not yet delivered or dropped. */
  pending(): number;
  /** Waits up to `timeoutMs` for everything pending, then drops the rest (reason `shutdown`) and closes sockets. */
  drain(timeoutMs: number): Promise<{ readonly completed: boolean }>;
}

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { metrics, logger } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  let config = deps.config;
  let policy = createAddressPolicy(config.dispatcher.network);
  let policyKey = JSON.stringify(config.dispatcher.network);
  const budget = new ByteBudget(config.dispatcher.maxQueuedBytes, (used) => {
    metrics.queuedBytes.set(used);
  });
  let queues = new Map<string, TargetQueue>();
  // Removed by a reload but still delivering what they had; shutdown must wait for (or abandon) them too.
  const retiring = new Set<TargetQueue>();

  const newQueue = (target: Config['targets'][number], secrets: SecretKeys) =>
    new TargetQueue({
      target,
      signer: createSigner(secrets.get(target.name) ?? []),
      policy,
      policyKey,
      responseBodyLimitBytes: config.dispatcher.responseBodyLimitBytes,
      budget,
      metrics: new TargetMetrics(metrics, target.name),
      logger,
      now,
      random,
    });

  for (const target of config.targets) queues.set(target.name, newQueue(target, deps.secrets));

  return {
    handle(data) {
      let event;
      try {
        event = parseEvent(data);
      } catch (error) {
        metrics.invalidEvents.inc();
        logger.warn({ err: error, code: (error as InvalidEventError).code }, 'skipping an invalid event');
        return;
      }
      // NATS hands us a view into its read buffer; a copy keeps a queued event from pinning the whole chunk.
      let raw: Uint8Array | undefined;
      for (const queue of queues.values()) {
        const target = queue.target;
        if (!targetWants(target, event.data)) continue;
        let payload: Uint8Array;
        if (isUnchangedFor(event, target)) {
          payload = raw ??= Buffer.copyBytesFrom(data);
        } else {
          payload = Buffer.from(JSON.stringify(projectEvent(event, target)));
        }
        queue.offer(event.id, payload);
      }
    },

    reconfigure(next, secrets) {
      config = next;
      policy = createAddressPolicy(next.dispatcher.network);
      policyKey = JSON.stringify(next.dispatcher.network);
      budget.limit = next.dispatcher.maxQueuedBytes;
      const updated = new Map<string, TargetQueue>();
      for (const target of next.targets) {
        const existing = queues.get(target.name);
        if (existing) {
          existing.reconfigure({
            target,
            signer: createSigner(secrets.get(target.name) ?? []),
            policy,
            policyKey,
            responseBodyLimitBytes: next.dispatcher.responseBodyLimitBytes,
          });
          updated.set(target.name, existing);
        } else {
          updated.set(target.name, newQueue(target, secrets));
        }
      }
      for (const [name, queue] of queues) {
        if (updated.has(name)) continue;
        retiring.add(queue);
        logger.info({ target: name, pending: queue.pending }, 'target removed; delivering what it still holds');
        queue
          .close()
          .catch((error: unknown) => { logger.warn({ err: error, target: name }, 'closing a removed target failed'); })
          .finally(() => retiring.delete(queue));
      }
      queues = updated;
    },

    pending() {
      let n = 0;
      for (const queue of queues.values()) n += queue.pending;
      for (const queue of retiring) n += queue.pending;
      return n;
    },

    async drain(timeoutMs) {
      const all = [...queues.values(), ...retiring];
      let timer: NodeJS.Timeout | undefined;
      const completed = await Promise.race([
        Promise.all(all.map((q) => q.whenIdle())).then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => {
            resolve(false);
          }, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      await Promise.all(all.map((q) => (completed ? q.close() : q.abandon())));
      return { completed };
    },
  };
}

import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type Condition, type MirrorTargetStatus } from '../contract/mirror-target.ts';
import { StatusWriteFailedError } from './errors.ts';
import type { KubernetesMetrics } from './kubernetes-metrics.ts';
import type { TargetSnapshot, WatchedTarget } from './target-source.ts';

// Tells each MirrorTarget's owner why it gets events or not: `Accepted` (spec valid, Secrets found) and `Ready`
// (deliveries succeed), written to the status subresource with server-side apply. The state comes from the
// dispatcher's own per-target metrics, sampled every `intervalMs`: a target disabled after 410 Gone, an open
// circuit, the reason of the latest failed attempts. Only a changed status is written.

export const FIELD_MANAGER = 'request-mirror-dispatcher';

/** What the dispatcher knows of one target's deliveries right now. */
export interface DeliveryState {
  readonly disabled: boolean;
  readonly circuitOpen: boolean;
  /** `delivered` or a failed attempt's reason, for attempts made since the previous sample; undefined if none. */
  readonly latestOutcome: string | undefined;
}

export interface StatusWriterOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly metrics: KubernetesMetrics;
  readonly intervalMs: number;
  readonly snapshot: () => TargetSnapshot;
  /** The delivery state of every target, by name (`<namespace>/<name>` for MirrorTargets). */
  readonly deliveryStates: () => Promise<ReadonlyMap<string, DeliveryState>>;
  readonly now?: () => Date;
}

export interface StatusWriter {
  /** Computes and writes now (also done every `intervalMs`). */
  sync(): Promise<void>;
  stop(): void;
}

const READY_BY_OUTCOME: Record<string, { reason: string; message: string }> = {
  address_refused: {
    reason: 'AddressRefused',
    message: 'watchURL resolves to an address the dispatcher network policy refuses (dispatcher.network); events are dropped',
  },
};

function readyCondition(watched: WatchedTarget, state: DeliveryState | undefined, lastOutcome: string | undefined): Pick<Condition, 'status' | 'reason' | 'message'> {
  if (watched.refusal) return { status: 'False', reason: watched.refusal.reason, message: watched.refusal.message };
  if (state?.disabled) {
    return { status: 'False', reason: 'TargetGone', message: 'the webhook answered 410 Gone: no deliveries until the MirrorTarget changes' };
  }
  if (state?.circuitOpen) {
    return { status: 'False', reason: 'CircuitOpen', message: `consecutive deliveries failed (last: ${lastOutcome ?? 'unknown'}); new events are dropped until a trial delivery succeeds` };
  }
  if (lastOutcome === undefined) return { status: 'Unknown', reason: 'NoDeliveryYet', message: 'no delivery attempted yet' };
  if (lastOutcome === 'delivered') return { status: 'True', reason: 'Delivering', message: 'the latest delivery succeeded' };
  return { status: 'False', ...(READY_BY_OUTCOME[lastOutcome] ?? { reason: 'DeliveryFailing', message: `the latest delivery attempt failed: ${lastOutcome}` }) };
}

export function startStatusWriter(options: StatusWriterOptions): StatusWriter {
  const { logger, metrics } = options;
  const now = options.now ?? (() => new Date());
  const api = options.kubeConfig.makeApiClient(CustomObjectsApi);
  const applyJson = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  /** What was last written (or read back), by `<namespace>/<name>`. */
  const written = new Map<string, { json: string; status: MirrorTargetStatus }>();
  const outcomes = new Map<string, { outcome: string; time: string }>();
  let chain: Promise<void> = Promise.resolve();

  const transition = (previous: Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, time: string): Condition => {
    const before = previous?.find((c) => c.type === next.type);
    return { ...next, lastTransitionTime: before && before.status === next.status ? before.lastTransitionTime : time };
  };

  async function syncOnce(): Promise<void> {
    const time = now().toISOString().replace(/\.\d+Z$/, 'Z');
    const seen = new Set<string>();
    const states = await options.deliveryStates();
    for (const watched of options.snapshot().objects) {
      const key = `${watched.namespace}/${watched.name}`;
      seen.add(key);
      const state = watched.target ? states.get(key) : undefined;
      if (state?.latestOutcome !== undefined) outcomes.set(key, { outcome: state.latestOutcome, time });
      const last = outcomes.get(key);
      const previous = written.get(key)?.status.conditions;
      const accepted: Omit<Condition, 'lastTransitionTime'> = watched.refusal
        ? { type: 'Accepted', status: 'False', reason: watched.refusal.reason, message: watched.refusal.message, observedGeneration: watched.generation }
        : {
            type: 'Accepted',
            status: 'True',
            reason: 'Valid',
            message: watched.secrets.length > 0 ? `spec valid; ${watched.secrets.length} signing secret(s) found` : 'spec valid; deliveries are unsigned',
            observedGeneration: watched.generation,
          };
      const status: MirrorTargetStatus = {
        observedGeneration: watched.generation,
        conditions: [
          transition(previous, accepted, time),
          transition(previous, { type: 'Ready', observedGeneration: watched.generation, ...readyCondition(watched, state, last?.outcome) }, time),
        ],
        ...(last ? { lastDelivery: last } : {}),
      };
      const json = JSON.stringify(status);
      if (written.get(key)?.json === json) continue;
      try {
        await api.patchNamespacedCustomObjectStatus(
          {
            group: GROUP,
            version: VERSION,
            namespace: watched.namespace,
            plural: PLURAL,
            name: watched.name,
            body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: watched.name, namespace: watched.namespace }, status },
            fieldManager: FIELD_MANAGER,
            force: true,
          },
          applyJson,
        );
        written.set(key, { json, status });
        metrics.statusWrites.inc({ outcome: 'ok' });
      } catch (error) {
        metrics.statusWrites.inc({ outcome: 'error' });
        const err = new StatusWriteFailedError(`cannot write the status of MirrorTarget ${key}`, { cause: error });
        logger.warn({ err, code: err.code, target: key }, 'cannot write MirrorTarget status; retrying at the next interval');
      }
    }
    for (const key of written.keys()) {
      if (!seen.has(key)) {
        written.delete(key);
        outcomes.delete(key);
      }
    }
  }

  const sync = (): Promise<void> => {
    // One pass at a time; a request during a pass waits for it and then runs its own.
    const next = chain.then(syncOnce);
    chain = next.catch(() => undefined);
    return next;
  };
  const timer = setInterval(() => {
    sync().catch((error: unknown) => { logger.warn({ err: error }, 'MirrorTarget status pass failed'); });
  }, options.intervalMs);
  timer.unref();
  return {
    sync,
    stop: () => {
      clearInterval(timer);
    },
  };
}

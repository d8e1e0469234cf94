import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type V1Namespace, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { KubernetesSource, Target } from '../contract/config.ts';
import { GROUP, MirrorTargetSpec, PLURAL, VERSION, type MirrorTargetObject } from '../contract/mirror-target.ts';
import type { KubernetesMetrics } from './kubernetes-metrics.ts';
import { KubernetesWatchFailedError } from './errors.ts';
import { ResourceWatch } from './resource-watch.ts';

// Targets from MirrorTarget objects: one informer per watched namespace, plus (with `secrets`) one per Secret a
// target references, selected by name so only referenced Secrets are ever held in memory. Every change rebuilds the
// whole target list from the informers' caches and hands it to `onChange`, the same hot-reload path a config file
// change takes. While the API server is out of reach, the caches keep their last listed state.

/** Why a MirrorTarget is not a target right now; the dispatcher writes it as `Accepted=False` with this reason. */
export interface Refusal {
  readonly reason: 'SpecInvalid' | 'SecretMissing';
  readonly message: string;
}

export interface WatchedTarget {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  /** The target as the services use it (name `<namespace>/<name>`), or why there is none. */
  readonly target?: Target;
  readonly refusal?: Refusal;
  /** Signing secrets in spec order, as stored in the Secrets (`whsec_...`). */
  readonly secrets: readonly string[];
}

export interface TargetSnapshot {
  /** Every MirrorTarget seen, accepted or not, sorted by namespace and name. */
  readonly objects: readonly WatchedTarget[];
  /** The accepted ones' targets, in the same order. */
  readonly targets: readonly Target[];
}

export interface TargetSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly source: KubernetesSource;
  /** Namespace watched when `source` names none: the pod's, or the kubeconfig context's. */
  readonly defaultNamespace: string;
  /** Resolve `spec.secrets` (the dispatcher); the tap needs no Secret and gets no access to them. */
  readonly secrets: boolean;
  readonly logger: Logger;
  readonly metrics: KubernetesMetrics;
  readonly onChange: (snapshot: TargetSnapshot) => void;
  /** Settle time before a change is applied, so one `kubectl apply` of many objects is one reload. */
  readonly settleMs?: number;
}

export interface TargetSource {
  /** Resolves once every watched namespace has been listed once (targets are known). */
  readonly ready: Promise<void>;
  snapshot(): TargetSnapshot;
  /** Watches that are broken right now, as `resource namespace: message`; empty while all work. */
  problems(): string[];
  stop(): void;
}

export function targetName(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function watchMirrorTargets(options: TargetSourceOptions): TargetSource {
  const { kubeConfig, source, logger, metrics } = options;
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const namespaces = new Map<string, ResourceWatch<MirrorTargetObject & { metadata: { name: string } }>>();
  const secretWatches = new Map<string, ResourceWatch<V1Secret>>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: TargetSnapshot = { objects: [], targets: [] };
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => { resolveReady = resolve; });

  const health = (resource: string, namespace: string) => {
    let failed = false;
    return (error: Error | undefined) => {
      metrics.watchUp.set({ resource, namespace }, error ? 0 : 1);
      if (error) {
        failed = true;
        metrics.watchErrors.inc({ resource });
        const err = new KubernetesWatchFailedError(`watch of ${resource}${namespace ? ` in ${namespace}` : ''} failed: ${error.message}`, { cause: error });
        logger.error({ err, code: err.code, resource, namespace }, 'kubernetes watch failed; keeping the last known targets and retrying');
      } else if (failed) {
        failed = false;
        logger.info({ resource, namespace }, 'kubernetes watch restored');
      }
    };
  };

  const schedule = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(rebuild, options.settleMs ?? 50);
  };

  function watchNamespace(namespace: string): void {
    if (namespaces.has(namespace)) return;
    metrics.watchUp.set({ resource: PLURAL, namespace }, 0);
    namespaces.set(
      namespace,
      new ResourceWatch({
        kubeConfig,
        path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
        list: () => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL }) as Promise<KubernetesListObject<MirrorTargetObject & { metadata: { name: string } }>>,
        onChange: schedule,
        onHealth: health(PLURAL, namespace),
      }),
    );
  }

  function secretWatch(namespace: string, name: string): ResourceWatch<V1Secret> {
    const key = `${namespace}/${name}`;
    let watch = secretWatches.get(key);
    if (!watch) {
      watch = new ResourceWatch({
        kubeConfig,
        path: `/api/v1/namespaces/${namespace}/secrets`,
        fieldSelector: `metadata.name=${name}`,
        list: () => core.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${name}` }),
        onChange: schedule,
        onHealth: health('secrets', namespace),
      });
      secretWatches.set(key, watch);
    }
    return watch;
  }

  function rebuild(): void {
    if (stopped) return;
    const objects: WatchedTarget[] = [];
    const wantedSecrets = new Set<string>();
    let waiting = namespaceWatch !== undefined && !namespaceWatch.synced;
    for (const [namespace, watch] of namespaces) {
      if (!watch.synced) {
        waiting = true;
        continue;
      }
      for (const object of watch.objects()) {
        const watched = toWatchedTarget(namespace, object, (secretName) => {
          wantedSecrets.add(`${namespace}/${secretName}`);
          return secretWatch(namespace, secretName);
        });
        // A Secret watch just started has not listed yet: wait for it rather than refuse its target for a moment.
        if (watched === 'pending') waiting = true;
        else objects.push(watched);
      }
    }
    // A Secret no target references any more is forgotten.
    for (const [key, watch] of secretWatches) {
      if (!wantedSecrets.has(key)) {
        watch.stop();
        secretWatches.delete(key);
      }
    }
    objects.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    const next: TargetSnapshot = { objects, targets: objects.flatMap((o) => (o.target ? [o.target] : [])) };
    if (waiting) return;
    metrics.targets.set(next.targets.length);
    metrics.refused.set(objects.length - next.targets.length);
    if (JSON.stringify(next) !== JSON.stringify(current)) {
      current = next;
      options.onChange(next);
    }
    resolveReady();
  }

  function toWatchedTarget(namespace: string, object: MirrorTargetObject, secretsOf: (name: string) => ResourceWatch<V1Secret>): WatchedTarget | 'pending' {
    const name = object.metadata?.name ?? '';
    const generation = object.metadata?.generation ?? 0;
    const parsed = MirrorTargetSpec.safeParse(object.spec);
    if (!parsed.success) {
      return { namespace, name, generation, secrets: [], refusal: { reason: 'SpecInvalid', message: z.prettifyError(parsed.error) } };
    }
    const { secrets: refs, ...spec } = parsed.data;
    const secrets: string[] = [];
    if (options.secrets) {
      for (const { secretRef } of refs) {
        const watch = secretsOf(secretRef.name);
        if (!watch.synced) {
          if (!watch.error) return 'pending';
          return { namespace, name, generation, secrets: [], refusal: { reason: 'SecretMissing', message: `cannot read Secret ${secretRef.name}: ${watch.error.message}` } };
        }
        const secret = watch.objects().find((s) => s.metadata?.name === secretRef.name);
        const encoded = secret?.data?.[secretRef.key];
        const value = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8').replace(/\r?\n$/, '');
        if (value === '') {
          const what = secret ? `has no non-empty key "${secretRef.key}"` : 'does not exist';
          return { namespace, name, generation, secrets: [], refusal: { reason: 'SecretMissing', message: `Secret ${secretRef.name} ${what}` } };
        }
        secrets.push(value);
      }
    }
    return { namespace, name, generation, secrets, target: { ...spec, name: targetName(namespace, name), secrets: [] } };
  }

  let namespaceWatch: ResourceWatch<V1Namespace> | undefined;
  if (source.namespaceSelector !== undefined) {
    const selector = source.namespaceSelector;
    namespaceWatch = new ResourceWatch({
      kubeConfig,
      path: '/api/v1/namespaces',
      labelSelector: selector,
      list: () => core.listNamespace({ labelSelector: selector }),
      onChange: () => {
        const selected = new Set((namespaceWatch?.objects() ?? []).map((n) => n.metadata?.name ?? ''));
        for (const namespace of selected) watchNamespace(namespace);
        for (const [namespace, watch] of namespaces) {
          if (selected.has(namespace)) continue;
          watch.stop();
          namespaces.delete(namespace);
          metrics.watchUp.remove({ resource: PLURAL, namespace });
        }
        schedule();
      },
      onHealth: health('namespaces', ''),
    });
  } else {
    for (const namespace of source.namespaces.length > 0 ? source.namespaces : [options.defaultNamespace]) watchNamespace(namespace);
  }

  return {
    ready,
    snapshot: () => current,
    problems: () => {
      const out: string[] = [];
      if (namespaceWatch?.error) out.push(`namespaces: ${namespaceWatch.error.message}`);
      for (const [namespace, watch] of namespaces) if (watch.error) out.push(`${PLURAL} ${namespace}: ${watch.error.message}`);
      for (const [key, watch] of secretWatches) if (watch.error) out.push(`secret ${key}: ${watch.error.message}`);
      return out;
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      namespaceWatch?.stop();
      for (const watch of namespaces.values()) watch.stop();
      for (const watch of secretWatches.values()) watch.stop();
    },
  };
}

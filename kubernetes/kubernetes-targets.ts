import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { loadKubeAccess } from './kube-config.ts';
import { createKubernetesMetrics, type KubernetesMetrics } from './kubernetes-metrics.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { watchMirrorTargets, type TargetSnapshot, type TargetSource } from './target-source.ts';

// The seam between a service's config file and its MirrorTargets: the targets in force are the file's followed by
// the Kubernetes ones (named `<namespace>/<name>`, so they never collide with a file target's name).

export interface KubernetesTargets {
  readonly source: TargetSource;
  readonly kubeConfig: KubeConfig;
  readonly metrics: KubernetesMetrics;
  /** The file's config with the MirrorTargets' targets appended. */
  merge(config: Config): Config;
  /** Lines for /readyz: what is broken in the watch, and that the last known targets stay in force meanwhile. */
  readinessDetail(): string[];
}

export function startKubernetesTargets(options: {
  readonly config: Config;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly secrets: boolean;
  readonly onChange: (snapshot: TargetSnapshot) => void;
}): KubernetesTargets | undefined {
  const { config, logger } = options;
  if (!config.kubernetes) return undefined;
  const access = loadKubeAccess();
  const metrics = createKubernetesMetrics(options.registry);
  const source = watchMirrorTargets({
    kubeConfig: access.kubeConfig,
    source: config.kubernetes,
    defaultNamespace: access.namespace,
    secrets: options.secrets,
    logger,
    metrics,
    onChange: options.onChange,
  });
  logger.info(
    { server: access.kubeConfig.getCurrentCluster()?.server, namespaces: config.kubernetes.namespaces, namespaceSelector: config.kubernetes.namespaceSelector, defaultNamespace: access.namespace },
    'watching MirrorTargets',
  );
  return {
    source,
    kubeConfig: access.kubeConfig,
    metrics,
    merge: (file) => ({ ...file, targets: [...file.targets, ...source.snapshot().targets] }),
    readinessDetail: () => {
      const problems = source.problems();
      if (problems.length === 0) return [];
      return [`kubernetes: watch broken, last known targets stay in force (${source.snapshot().targets.length})`, ...problems.map((p) => `kubernetes: ${p}`)];
    },
  };
}

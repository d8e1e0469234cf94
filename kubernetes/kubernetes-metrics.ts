import { Counter, Gauge, type Registry } from 'prom-client';

// Metrics of the Kubernetes target source, registered in the service's own registry (tap or dispatcher), so they
// appear on its /metrics next to the rest.

export interface KubernetesMetrics {
  /** 1 while the watch of `resource` in `namespace` works, 0 while it is broken (the last known targets stay). */
  readonly watchUp: Gauge<'resource' | 'namespace'>;
  readonly watchErrors: Counter<'resource'>;
  readonly targets: Gauge;
  readonly refused: Gauge;
  readonly statusWrites: Counter<'outcome'>;
}

export function createKubernetesMetrics(registry: Registry): KubernetesMetrics {
  const p = 'request_mirror_kubernetes_';
  const registers = [registry];
  return {
    watchUp: new Gauge({
      name: `${p}watch_up`,
      help: '1 while the watch works; 0 while the API server is out of reach and the last known targets stay in force.',
      labelNames: ['resource', 'namespace'],
      registers,
    }),
    watchErrors: new Counter({ name: `${p}watch_errors_total`, help: 'Watches that failed and were restarted with backoff.', labelNames: ['resource'], registers }),
    targets: new Gauge({ name: `${p}targets`, help: 'MirrorTargets in force.', registers }),
    refused: new Gauge({ name: `${p}targets_refused`, help: 'MirrorTargets not in force (invalid spec or missing Secret).', registers }),
    statusWrites: new Counter({
      name: `${p}status_writes_total`,
      help: 'MirrorTarget status updates the dispatcher applied, by outcome (ok, error).',
      labelNames: ['outcome'],
      registers,
    }),
  };
}

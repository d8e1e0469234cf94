import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

// How the services reach the API server: `KUBECONFIG` when set (outside a cluster, tests), else the pod's service
// account (in cluster), else ~/.kube/config — client-node's own order of precedence.

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface KubeAccess {
  readonly kubeConfig: KubeConfig;
  /** The pod's namespace in cluster, else the current context's, else `default`. */
  readonly namespace: string;
}

export function loadKubeAccess(env: NodeJS.ProcessEnv = process.env): KubeAccess {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  let namespace: string | undefined;
  if (!env.KUBECONFIG) {
    try {
      namespace = readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || undefined;
    } catch {
      namespace = undefined;
    }
  }
  namespace ??= kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
  return { kubeConfig, namespace };
}

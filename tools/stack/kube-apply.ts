import {
  ApiextensionsV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  loadAllYaml,
} from '@kubernetes/client-node';
import { waitUntil } from './process.ts';

// Applying manifests to a real API server the way `kubectl apply --server-side` does, without kubectl: each document
// is a server-side apply PATCH. Used by the cluster harness (Traefik's CRDs and RBAC), the tests and the docs tests.

export const FIELD_MANAGER = 'request-mirror-tests';

/** A manifest as written in YAML: plain data (client-node's object types are classes). */
export interface Manifest {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

/** A client configuration for a bearer token, e.g. the harness's admin token or a ServiceAccount's. */
export function kubeConfigFor(cluster: { server: string; ca: string }, token: string, namespace = 'default'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cluster.server, caData: Buffer.from(cluster.ca).toString('base64') }],
    users: [{ name: 'user', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'user', namespace }],
    currentContext: 'test',
  });
  return kc;
}

/** Namespaced objects that name no namespace go to the client's context namespace (see `kubeConfigFor`). */
export interface ApplyOptions {
  /** `All`: validate and default, store nothing (server-side dry run). */
  readonly dryRun?: 'All';
  readonly fieldManager?: string;
}

/** The objects of a multi-document YAML text, empty documents skipped. */
export function parseManifests(yaml: string): Manifest[] {
  return (loadAllYaml(yaml) as (Manifest | null)[]).filter((o): o is Manifest => o !== null && typeof o === 'object');
}

/**
 * Applies every object in order and returns what the API server stored (or would store, with `dryRun`). Throws the
 * API server's error (its message names the field) at the first object it refuses.
 */
export async function applyObjects(kc: KubeConfig, objects: readonly Manifest[], options: ApplyOptions = {}): Promise<Manifest[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const out: Manifest[] = [];
  for (const object of objects) {
    const stored = await api.patch(structuredClone(object), undefined, options.dryRun, options.fieldManager ?? FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    out.push(stored);
  }
  return out;
}

export async function applyYaml(kc: KubeConfig, yaml: string, options: ApplyOptions = {}): Promise<Manifest[]> {
  return applyObjects(kc, parseManifests(yaml), options);
}

/** Deletes the objects, ignoring those already gone. */
export async function deleteObjects(kc: KubeConfig, objects: readonly Manifest[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const object of [...objects].reverse()) {
    try {
      await api.delete(object);
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
  }
}

/** Waits until every named CRD reports `Established`, so objects of its kinds can be created. */
export async function waitForCrds(kc: KubeConfig, names: readonly string[], timeoutMs = 30_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  await waitUntil(
    `CRDs established: ${names.join(', ')}`,
    async () => {
      for (const name of names) {
        const crd = await api.readCustomResourceDefinition({ name });
        if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return false;
      }
      return true;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, inject } from 'vitest';
import { applyObjects, deleteObjects, kubeConfigFor, parseManifests, type ApplyOptions, type Manifest } from '../../tools/stack/kube-apply.ts';
import { writeKubeconfig } from '../../tools/stack/kube-cluster.ts';
import type { KubeWorldInfo } from '../../tools/stack/kube-world.ts';
import { lateBound } from './late-bound.ts';

// A test file's share of the run's Kubernetes API server and Traefik (test/support/kube-global-setup.ts): its own
// namespace, an admin client defaulting to it, and apply/delete helpers. Namespaced objects the file applied are
// deleted in afterAll: with no controller-manager running, deleting the namespace alone would never remove them, and
// Traefik would keep routing the file's Ingresses. Cluster-scoped objects (the CRDs) are shared and stay.

export interface KubeFixture {
  readonly world: KubeWorldInfo;
  readonly namespace: string;
  /** Admin client whose default namespace is the file's. */
  readonly kc: KubeConfig;
  /** A kubeconfig file for the same, for child processes (`KUBECONFIG`). */
  readonly kubeconfigPath: string;
  /** Server-side applies YAML or objects (into the file's namespace unless they name one); returns what was stored. */
  apply(manifests: string | readonly Manifest[], options?: ApplyOptions): Promise<Manifest[]>;
  /** Deletes the objects now (they are deleted in afterAll otherwise). */
  remove(manifests: string | readonly Manifest[]): Promise<void>;
  /** Traefik's output so far, for assertions on its log and failure reports. */
  traefikLog(): Promise<string>;
  /** A raw request to the API server as admin, for what the client library does not expose (Table output, strict apply). */
  request(method: string, path: string, options?: { body?: unknown; contentType?: string; accept?: string }): Promise<{ status: number; body: unknown }>;
}

/** Starts (once per run) or joins the shared cluster and Traefik, and gives this file a fresh namespace. */
export async function joinKubeWorld(prefix = 't'): Promise<KubeFixture & { close(): Promise<void> }> {
  const url = inject('kubeWorldUrl');
  const res = await fetch(`${url}/world`, { method: 'POST' });
  if (!res.ok) throw new Error(`the Kubernetes test-bed did not start:\n${await res.text()}`);
  const world = (await res.json()) as KubeWorldInfo;
  const namespace = `${prefix}-${randomBytes(4).toString('hex')}`;
  const kc = kubeConfigFor(world, world.token, namespace);
  const dir = mkdtempSync(join(tmpdir(), 'rm-kube-ns-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, world, world.token, namespace);
  const applied = new Map<string, Manifest>();
  const agent = new Agent({ connect: { ca: world.ca } });
  const objectsOf = (m: string | readonly Manifest[]) => (typeof m === 'string' ? parseManifests(m) : m);
  const keyOf = (o: Manifest) => `${o.apiVersion ?? ''}/${o.kind ?? ''}/${o.metadata?.namespace ?? namespace}/${o.metadata?.name ?? ''}`;
  await applyObjects(kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }]);
  return {
    world,
    namespace,
    kc,
    kubeconfigPath,
    async apply(manifests, options) {
      const stored = await applyObjects(kc, objectsOf(manifests), options);
      // Cluster-scoped objects other than namespaces (CRDs, ClusterRoles) are shared by every file: never deleted.
      const owned = (o: Manifest) => o.metadata?.namespace !== undefined || o.kind === 'Namespace';
      if (!options?.dryRun) for (const o of stored) if (owned(o)) applied.set(keyOf(o), o);
      return stored;
    },
    async remove(manifests) {
      const objects = objectsOf(manifests);
      await deleteObjects(kc, objects);
      for (const o of objects) applied.delete(keyOf(o));
    },
    async traefikLog() {
      const res = await fetch(`${url}/traefik-log`);
      return res.text();
    },
    async request(method, path, options = {}) {
      const res = await request(`${world.server}${path}`, {
        method: method,
        dispatcher: agent,
        headers: {
          authorization: `Bearer ${world.token}`,
          accept: options.accept ?? 'application/json',
          ...(options.body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      const text = await res.body.text();
      return { status: res.statusCode, body: text.startsWith('{') ? (JSON.parse(text) as unknown) : text };
    },
    async close() {
      await deleteObjects(kc, [...applied.values()]);
      await agent.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers beforeAll/afterAll for the file's namespace and returns it, usable in tests once beforeAll ran. */
export function useKube(prefix?: string): KubeFixture {
  let fixture: (KubeFixture & { close(): Promise<void> }) | undefined;
  beforeAll(async () => {
    fixture = await joinKubeWorld(prefix);
  }, 180_000);
  afterAll(async () => {
    await fixture?.close();
  });
  return lateBound('the Kubernetes fixture', () => fixture);
}

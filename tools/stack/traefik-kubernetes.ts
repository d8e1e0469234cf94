import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuthenticationV1TokenRequest, CoreV1Api, V1TokenRequestSpec, type KubeConfig } from '@kubernetes/client-node';
import { applyObjects, parseManifests, waitForCrds, type Manifest } from './kube-apply.ts';
import type { KubeCluster } from './kube-cluster.ts';
import { freePort } from './free-port.ts';
import { answers2xx, startProcess, waitUntil, type ManagedProcess } from './process.ts';
import { installLocalPlugin, REQUEST_MIRROR_PLUGIN, traefikBin } from './traefik.ts';
import { scratchDir } from './scratch-dir.ts';

// Traefik outside the cluster with its two Kubernetes providers (kubernetesCRD and kubernetesIngress) reading a real
// API server as a ServiceAccount bound to Traefik's own ClusterRole. Traefik's CRDs and RBAC are the files its
// documentation ships, read from the Traefik module source that building Traefik put in the Go module cache.

export const TRAEFIK_NAMESPACE = 'traefik-system';
export const TRAEFIK_SERVICE_ACCOUNT = 'traefik-ingress-controller';

export interface KubeTraefik {
  /** The `web` entrypoint, e.g. `http://127.0.0.1:21234`: it trusts no proxy's X-Forwarded-* headers. */
  readonly url: string;
  /**
   * The `balanced` entrypoint: like `web`, but its `forwardedHeaders.trustedIPs` lists 127.0.0.1, so a test client
   * plays a load balancer in front of Traefik. Ingress routers without an entrypoint annotation serve both.
   */
  readonly balancedUrl: string;
  /** /ping and /api. */
  readonly adminUrl: string;
  readonly process: ManagedProcess;
  /** Milliseconds from applying Traefik's CRDs to Traefik answering /ping. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

/** The directory of Traefik's reference manifests in the module cache, for the Traefik version tools/go/traefik pins. */
export function traefikManifestDir(root: string): string {
  const out = execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', 'github.com/traefik/traefik/v3'], { cwd: join(root, 'tools/go/traefik'), encoding: 'utf8' });
  return join(out.trim(), 'docs/content/reference/dynamic-configuration');
}

function traefikObjects(root: string): { crds: Manifest[]; rbac: Manifest[] } {
  const dir = traefikManifestDir(root);
  const crds = parseManifests(readFileSync(join(dir, 'kubernetes-crd-definition-v1.yml'), 'utf8'));
  const rbac = parseManifests(readFileSync(join(dir, 'kubernetes-crd-rbac.yml'), 'utf8')).map((o) => {
    // The binding names its ServiceAccount without a namespace (the docs assume `default`); pin it to ours.
    const binding = o as Manifest & { subjects?: { kind: string; namespace?: string }[] };
    binding.subjects?.forEach((s) => { if (s.kind === 'ServiceAccount') s.namespace = TRAEFIK_NAMESPACE; });
    return o;
  });
  return { crds, rbac };
}

export async function startKubeTraefik(
  cluster: Pick<KubeCluster, 'server' | 'ca' | 'caFile'>,
  admin: KubeConfig,
  options: { root: string; logLevel?: 'DEBUG' | 'INFO'; onOutput?: (text: string) => void },
): Promise<KubeTraefik> {
  const started = performance.now();
  const { crds, rbac } = traefikObjects(options.root);
  await applyObjects(admin, crds);
  await waitForCrds(admin, crds.map((c) => c.metadata?.name ?? ''));
  await applyObjects(admin, [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TRAEFIK_NAMESPACE } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: TRAEFIK_SERVICE_ACCOUNT, namespace: TRAEFIK_NAMESPACE } },
    ...rbac,
  ]);
  const core = admin.makeApiClient(CoreV1Api);
  const { status } = await core.createNamespacedServiceAccountToken({
    name: TRAEFIK_SERVICE_ACCOUNT,
    namespace: TRAEFIK_NAMESPACE,
    body: Object.assign(new AuthenticationV1TokenRequest(), { spec: Object.assign(new V1TokenRequestSpec(), { expirationSeconds: 24 * 3600 }) }),
  });
  const token = status?.token ?? '';
  const [webPort, balancedPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  // The Request Mirror plugin, for Middlewares with spec.plugin.requestmirror: Traefik loads local plugins from
  // plugins-local/ under its working directory.
  const scratch = scratchDir('rm-kube-traefik-');
  const workDir = scratch.path;
  installLocalPlugin(workDir, REQUEST_MIRROR_PLUGIN);
  const child = startProcess({
    name: 'traefik',
    command: traefikBin(),
    cwd: workDir,
    args: [
      `--entryPoints.web.address=127.0.0.1:${webPort}`,
      `--entryPoints.balanced.address=127.0.0.1:${balancedPort}`,
      '--entryPoints.balanced.forwardedHeaders.trustedIPs=127.0.0.1/32',
      `--entryPoints.traefik.address=127.0.0.1:${adminPort}`,
      '--ping=true',
      '--api.insecure=true',
      // A build from the Go module has no dashboard assets.
      '--api.dashboard=false',
      ...['kubernetesCRD', 'kubernetesIngress'].flatMap((p) => [
        `--providers.${p}=true`,
        `--providers.${p}.endpoint=${cluster.server}`,
        `--providers.${p}.token=${token}`,
        `--providers.${p}.certAuthFilePath=${cluster.caFile}`,
        // Backends in tests are loopback processes: an ExternalName Service is one way to name them.
        `--providers.${p}.allowExternalNameServices=true`,
      ]),
      '--providers.kubernetesCRD.allowCrossNamespace=false',
      `--log.level=${options.logLevel ?? 'INFO'}`,
      '--global.checkNewVersion=false',
      '--global.sendAnonymousUsage=false',
      `--experimental.localPlugins.requestmirror.moduleName=${REQUEST_MIRROR_PLUGIN.moduleName}`,
    ],
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const stop = async () => {
    await child.stop();
    scratch.remove();
  };
  try {
    await waitUntil('Traefik /ping', () => answers2xx(`${adminUrl}/ping`), { process: child, timeoutMs: 60_000 });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${webPort}`, balancedUrl: `http://127.0.0.1:${balancedPort}`, adminUrl, process: child, startupMs: Math.round(performance.now() - started), stop };
}

/** Waits until Traefik serves a router whose name `match`es, enabled and without error; returns its name. */
export async function waitForRouter(traefik: { adminUrl: string; process?: ManagedProcess }, match: (name: string) => boolean, timeoutMs = 30_000): Promise<string> {
  let found = '';
  await waitUntil(
    'a Traefik router enabled',
    async () => {
      const res = await fetch(`${traefik.adminUrl}/api/http/routers`, { signal: AbortSignal.timeout(2000) });
      const routers = (await res.json()) as { name: string; status: string; error?: string[] }[];
      const router = routers.find((r) => match(r.name));
      if (router?.status === 'enabled' && !router.error?.length) found = router.name;
      return found !== '';
    },
    { ...(traefik.process ? { process: traefik.process } : {}), timeoutMs, intervalMs: 100 },
  );
  return found;
}

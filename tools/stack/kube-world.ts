import { execFileSync } from 'node:child_process';

import { kubeConfigFor } from './kube-apply.ts';
import { startKubeCluster, type KubeCluster } from './kube-cluster.ts';
import { ROOT } from './stack.ts';
import { startKubeTraefik, type KubeTraefik } from './traefik-kubernetes.ts';

// One API server and one Traefik for a whole test run: starting them costs seconds (measured in `startupMs`), a
// namespace per test file costs milliseconds. The binaries come from tools/env.sh's `_rm_k8s_setup`; when the
// environment does not name them (a test run through `tools/run`), that function is called here to find or build them.

/** What a test file needs to reach the shared cluster and Traefik; plain data, so it crosses process boundaries. */
export interface KubeWorldInfo {
  readonly server: string;
  readonly ca: string;
  readonly caFile: string;
  readonly token: string;
  readonly kubeconfigPath: string;
  /** Traefik's `web` entrypoint, which trusts no proxy. */
  readonly traefikUrl: string;
  /** Traefik's `balanced` entrypoint, which trusts X-Forwarded-* headers from 127.0.0.1 (a load balancer). */
  readonly traefikBalancedUrl: string;
  readonly traefikAdminUrl: string;
  readonly clusterStartupMs: number;
  readonly traefikStartupMs: number;
}

export interface KubeWorld {
  readonly info: KubeWorldInfo;
  readonly cluster: KubeCluster;
  readonly traefik: KubeTraefik;
  stop(): Promise<void>;
}

function ensureBinaries(): void {
  if (process.env.ETCD_BIN && process.env.KUBE_APISERVER_BIN && process.env.TRAEFIK_BIN) return;
  const out = execFileSync(
    'bash',
    ['-c', '. tools/env.sh && _rm_k8s_setup >&2 && printf "%s\\n%s\\n%s\\n" "$ETCD_BIN" "$KUBE_APISERVER_BIN" "$TRAEFIK_BIN"'],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [etcd, apiserver, traefik] = out.trim().split('\n');
  process.env.ETCD_BIN = etcd;
  process.env.KUBE_APISERVER_BIN = apiserver;
  process.env.TRAEFIK_BIN = traefik;
}

export async function startKubeWorld(options: { onOutput?: (name: string, text: string) => void } = {}): Promise<KubeWorld> {
  ensureBinaries();
  const cluster = await startKubeCluster(options.onOutput ? { onOutput: options.onOutput } : {});
  let traefik: KubeTraefik;
  try {
    traefik = await startKubeTraefik(cluster, kubeConfigFor(cluster, cluster.token), {
      root: ROOT,
      ...(options.onOutput ? { onOutput: (t: string) => { options.onOutput?.('traefik', t); } } : {}),
    });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return {
    info: {
      server: cluster.server,
      ca: cluster.ca,
      caFile: cluster.caFile,
      token: cluster.token,
      kubeconfigPath: cluster.kubeconfigPath,
      traefikUrl: traefik.url,
      traefikBalancedUrl: traefik.balancedUrl,
      traefikAdminUrl: traefik.adminUrl,
      clusterStartupMs: cluster.startupMs,
      traefikStartupMs: traefik.startupMs,
    },
    cluster,
    traefik,
    stop: async () => {
      await traefik.stop();
      await cluster.stop();
    },
  };
}


import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { Cleanup } from './cleanup.ts';
import { freePort } from './free-port.ts';
import { startProcess, waitUntil, type ManagedProcess } from './process.ts';
import { scratchDir } from './scratch-dir.ts';

// A real Kubernetes control plane on loopback: etcd and kube-apiserver, the pinned builds of tools/env.sh
// (`_rm_k8s_setup` exports ETCD_BIN and KUBE_APISERVER_BIN). No kubelet, scheduler or controller-manager: objects are
// stored and validated, watches and server-side apply work, nothing is run. Flags and pitfalls measured on this kind
// of machine are in the project notes (KUBERNETES.md).

export interface KubeCluster {
  /** `https://127.0.0.1:PORT` */
  readonly server: string;
  /** PEM of the serving certificate, which is its own CA. */
  readonly ca: string;
  readonly caFile: string;
  /** Bearer token of `admin` (group system:masters). */
  readonly token: string;
  readonly tokenFile: string;
  /** A kubeconfig for `admin`, for clients that read `KUBECONFIG`. */
  readonly kubeconfigPath: string;
  /** Milliseconds from launching etcd to kube-apiserver answering /readyz. */
  readonly startupMs: number;
  readonly etcd: ManagedProcess;
  /** The running kube-apiserver process (a new one after `restartApiServer`). */
  readonly apiserver: ManagedProcess;
  /**
   * Kills kube-apiserver (as a crash would: on SIGTERM it took over 20 s to stop here while watches were open) and
   * starts it again on the same port, etcd and keys; resolves once it is ready.
   */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

function binary(env: 'ETCD_BIN' | 'KUBE_APISERVER_BIN'): string {
  const bin = process.env[env];
  if (!bin || !existsSync(bin)) {
    throw new Error(`${env} is not set to a binary: run the tests with \`make test\`, or \`. tools/env.sh && _rm_k8s_setup\` first (it builds them)`);
  }
  return bin;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Writes a kubeconfig for a bearer token; `namespace` becomes the context's default. */
export function writeKubeconfig(path: string, cluster: { server: string; caFile: string }, token: string, namespace = 'default'): void {
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: cluster.server, 'certificate-authority': cluster.caFile } }],
      users: [{ name: 'user', user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'user', namespace } }],
      'current-context': 'test',
    }),
    { mode: 0o600 },
  );
}

export async function startKubeCluster(options: { onOutput?: (name: string, text: string) => void } = {}): Promise<KubeCluster> {
  const etcdBin = binary('ETCD_BIN');
  const apiserverBin = binary('KUBE_APISERVER_BIN');
  const scratch = scratchDir('rm-kube-');
  const dir = scratch.path;
  const cleanup = new Cleanup();
  cleanup.add(() => {
    scratch.remove();
  });
  try {
    const certFile = join(dir, 'apiserver.crt');
    const keyFile = join(dir, 'apiserver.key');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=kube-apiserver',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile]);
    const saKey = join(dir, 'sa.key');
    const saPub = join(dir, 'sa.pub');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', saKey]);
    openssl(['ec', '-in', saKey, '-pubout', '-out', saPub]);
    const token = execFileSync('openssl', ['rand', '-hex', '24'], { encoding: 'utf8' }).trim();
    const tokenFile = join(dir, 'tokens.csv');
    writeFileSync(tokenFile, `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    const adminTokenFile = join(dir, 'admin.token');
    writeFileSync(adminTokenFile, token, { mode: 0o600 });

    const started = performance.now();
    const [clientPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()];
    const etcd = startProcess({
      name: 'etcd',
      command: etcdBin,
      args: [
        '--name', 'test', '--data-dir', join(dir, 'etcd'),
        '--listen-client-urls', `http://127.0.0.1:${clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `test=http://127.0.0.1:${peerPort}`,
        // Tests only: a lost write costs a rerun, and fsync on a shared disk costs seconds.
        '--unsafe-no-fsync', '--log-level', 'warn',
      ],
      ...(options.onOutput ? { onOutput: (t: string) => { options.onOutput?.('etcd', t); } } : {}),
    });
    cleanup.add(() => etcd.stop());
    const launchApiServer = () => startProcess({
      name: 'kube-apiserver',
      command: apiserverBin,
      args: [
        `--etcd-servers=http://127.0.0.1:${clientPort}`,
        '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${securePort}`,
        `--tls-cert-file=${certFile}`, `--tls-private-key-file=${keyFile}`, `--token-auth-file=${tokenFile}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc', `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        // The default range is 10.0.0.0/24, a private range this machine must never send to.
        '--service-cluster-ip-range=127.1.0.0/24',
        `--cert-dir=${join(dir, 'certs')}`,
        '--v=0',
      ],
      ...(options.onOutput ? { onOutput: (t: string) => { options.onOutput?.('kube-apiserver', t); } } : {}),
    });
    let apiserver = launchApiServer();
    // kube-apiserver ignores SIGTERM for over a minute once etcd is gone: it must stop first (cleanups run in reverse).
    cleanup.add(() => apiserver.stop(20_000));

    const server = `https://127.0.0.1:${securePort}`;
    const ca = readFileSync(certFile, 'utf8');
    const dispatcher = new Agent({ connect: { ca } });
    cleanup.add(() => dispatcher.close());
    const probe = (path: string) => async () => {
      const res = await request(`${server}${path}`, { dispatcher, headers: { authorization: `Bearer ${token}` }, headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      return res.statusCode === 200;
    };
    const ready = async () => {
      await waitUntil('kube-apiserver /livez', probe('/livez'), { process: apiserver, timeoutMs: 90_000, intervalMs: 250 });
      await waitUntil('kube-apiserver /readyz', probe('/readyz'), { process: apiserver, timeoutMs: 60_000, intervalMs: 250 });
    };
    await ready();
    const startupMs = Math.round(performance.now() - started);

    const kubeconfigPath = join(dir, 'kubeconfig');
    writeKubeconfig(kubeconfigPath, { server, caFile: certFile }, token);
    return {
      server,
      ca,
      caFile: certFile,
      token,
      tokenFile: adminTokenFile,
      kubeconfigPath,
      startupMs,
      etcd,
      get apiserver() {
        return apiserver;
      },
      restartApiServer: async () => {
        await apiserver.kill();
        apiserver = launchApiServer();
        await ready();
      },
      stop: () => cleanup.run(),
    };
  } catch (error) {
    await cleanup.run().catch(() => undefined);
    throw error;
  }
}

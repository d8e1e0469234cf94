import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ChartValues } from '../../contract/chart-values.ts';
import { Config } from '../../contract/config.ts';
import { parseManifests, waitForCrds, type Manifest } from '../../tools/stack/kube-apply.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { useKube } from '../support/kube.ts';

// The Helm chart with the pinned helm binary and a real API server: lint, the values schema at install time, and
// the rendered manifests accepted by the API server (server-side dry run) for the defaults and for every option.

const CHART = join(ROOT, 'charts/request-mirror');
const ALL_OPTIONS = join(ROOT, 'docs/examples/kubernetes/values-all-options.yaml');
const kube = useKube('chart');
const run = promisify(execFile);
let helmHome: string;

function helmBin(): string {
  const bin = process.env.HELM_BIN;
  if (!bin || !existsSync(bin)) throw new Error('HELM_BIN is not set to a helm binary: run the tests with `make test` (it builds one)');
  return bin;
}

/** Runs helm with its caches in a temporary home; resolves with stdout, or rejects with stderr in the message. */
async function helm(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(helmBin(), args, {
      env: { ...process.env, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string };
    throw new Error(`helm ${args.join(' ')} failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: error });
  }
}

const render = async (...args: string[]): Promise<Manifest[]> =>
  parseManifests(await helm('template', 'request-mirror', CHART, '--namespace', kube.namespace, '--include-crds', ...args));

const kinds = (objects: readonly Manifest[]) => objects.map((o) => `${o.kind ?? ''}/${o.metadata?.name ?? ''}`).sort();

beforeAll(async () => {
  helmHome = mkdtempSync(join(tmpdir(), 'rm-helm-'));
  // The one CRD the chart uses that nobody on this machine installs (the Traefik CRDs come with the test-bed).
  const serviceMonitors = parseManifests(readFileSync(join(ROOT, 'test/fixtures/kubernetes/servicemonitors.monitoring.coreos.com.yaml'), 'utf8'));
  await kube.apply(serviceMonitors);
  await waitForCrds(kube.kc, ['servicemonitors.monitoring.coreos.com']);
});
afterAll(() => {
  rmSync(helmHome, { recursive: true, force: true });
});

describe('request-mirror chart', () => {
  it('has values.yaml holding exactly the defaults of the values schema (contract/chart-values.ts)', () => {
    const values: unknown = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    expect(values).toEqual(ChartValues.parse({}));
  });

  it('passes helm lint --strict, with the defaults and with every option', async () => {
    for (const extra of [[], ['-f', ALL_OPTIONS]]) {
      const out = await helm('lint', '--strict', CHART, ...extra);
      expect(out).toContain('0 chart(s) failed');
      expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  }, 60_000);

  it.each([
    ['a misspelt key', ['--set', 'tap.replica=3'], "at '/tap': additional properties 'replica' not allowed"],
    ['no tap replica', ['--set', 'tap.replicas=0'], "at '/tap/replicas': minimum: got 0, want 1"],
    ['a NATS URL that is not one', ['--set', 'nats.url=localhost:4222'], "at '/nats/url'"],
    ['a file target without methods', ['--set', 'targets[0].name=x', '--set', 'targets[0].watchURL=https://x.example.com/'], "at '/targets/0': missing property 'methods'"],
  ])('refuses %s at install time, naming the value', async (_what, args, message) => {
    await expect(helm('template', 'x', CHART, ...args)).rejects.toThrow(message);
  });

  it('renders defaults the API server accepts: tap (2 replicas, PDB, TLS), dispatcher, RBAC, ConfigMap, Middleware, CRD', async () => {
    const objects = await render();
    expect(kinds(objects)).toEqual([
      'ConfigMap/request-mirror',
      'CustomResourceDefinition/mirrortargets.requestmirror.io',
      'Deployment/request-mirror-dispatcher',
      'Deployment/request-mirror-tap',
      'Middleware/request-mirror',
      'PodDisruptionBudget/request-mirror-tap',
      'Role/request-mirror-dispatcher',
      'Role/request-mirror-tap',
      'RoleBinding/request-mirror-dispatcher',
      'RoleBinding/request-mirror-tap',
      'Secret/request-mirror-tap-tls',
      'Service/request-mirror-dispatcher',
      'Service/request-mirror-tap',
      'ServiceAccount/request-mirror-dispatcher',
      'ServiceAccount/request-mirror-tap',
    ]);
    const stored = await kube.apply(objects, { dryRun: 'All' });
    expect(stored).toHaveLength(objects.length);
    const tap = stored.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'request-mirror-tap') as Manifest & { spec: { replicas: number } };
    expect(tap.spec.replicas).toBe(2);
    const middleware = objects.find((o) => o.kind === 'Middleware') as Manifest & { spec: { forwardAuth: Record<string, unknown> } };
    expect(middleware.spec.forwardAuth).toMatchObject({
      address: `https://request-mirror-tap.${kube.namespace}.svc:8080/`,
      trustForwardHeader: false,
      tls: { caSecret: 'request-mirror-tap-tls' },
    });
  });

  it('renders a ConfigMap both services accept, watching the release namespace and serving forwardAuth over TLS', async () => {
    const objects = await render();
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as Manifest & { data: Record<string, string> };
    const config = Config.parse(parse(configMap.data['request-mirror.yaml'] ?? ''));
    expect(config.kubernetes?.namespaces).toEqual([kube.namespace]);
    expect(config.tap.forwardAuth.tls).toEqual({ certFile: '/etc/request-mirror/tls/tls.crt', keyFile: '/etc/request-mirror/tls/tls.key' });
    expect(config.nats.url).toBe('nats://nats:4222');
  });

  it('renders every option in a form the API server accepts (server-side dry run)', async () => {
    const objects = await render('-f', ALL_OPTIONS);
    expect(kinds(objects)).toEqual(expect.arrayContaining([
      'ClusterRole/request-mirror-dispatcher-' + kube.namespace,
      'ClusterRoleBinding/request-mirror-tap-' + kube.namespace,
      'Middleware/mirror-everything',
      'NetworkPolicy/request-mirror-dispatcher',
      'NetworkPolicy/request-mirror-tap',
      'ServiceMonitor/request-mirror-dispatcher',
      'ServiceMonitor/request-mirror-tap',
    ]));
    // The user supplies the certificate: the chart makes none.
    expect(kinds(objects)).not.toContain('Secret/request-mirror-tap-tls');
    const stored = await kube.apply(objects, { dryRun: 'All' });
    expect(stored).toHaveLength(objects.length);
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as Manifest & { data: Record<string, string> };
    const config = Config.parse(parse(configMap.data['request-mirror.yaml'] ?? ''));
    expect(config.kubernetes).toEqual({ namespaceSelector: 'request-mirror=enabled', namespaces: [], statusIntervalMs: 2000 });
    expect(config.targets.map((t) => t.name)).toEqual(['siem']);
    expect(config.dispatcher.network.allowCIDRs).toEqual(['10.20.0.0/16']);
  });

  it('installs, upgrades keeping its certificate, and uninstalls against the real API server', async () => {
    const common = ['--namespace', kube.namespace, '--kubeconfig', kube.kubeconfigPath];
    const tlsSecret = async () => {
      const res = await kube.request('GET', `/api/v1/namespaces/${kube.namespace}/secrets/request-mirror-tap-tls`);
      return res.status === 200 ? (res.body as { data: Record<string, string> }).data : undefined;
    };
    await helm('install', 'request-mirror', CHART, ...common, '--set', 'nats.url=nats://nats.nats.svc:4222');
    try {
      const installed = await tlsSecret();
      expect(Object.keys(installed ?? {}).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
      const middleware = await kube.request('GET', `/apis/traefik.io/v1alpha1/namespaces/${kube.namespace}/middlewares/request-mirror`);
      expect(middleware.status).toBe(200);

      await helm('upgrade', 'request-mirror', CHART, ...common, '--set', 'nats.url=nats://nats.nats.svc:4222', '--set', 'tap.replicas=3');
      // Traefik's trust (the Middleware's caSecret) must not change under it: the chart looks the Secret up and keeps it.
      expect(await tlsSecret()).toEqual(installed);
      const tap = await kube.request('GET', `/apis/apps/v1/namespaces/${kube.namespace}/deployments/request-mirror-tap`);
      expect((tap.body as { spec: { replicas: number } }).spec.replicas).toBe(3);
    } finally {
      await helm('uninstall', 'request-mirror', ...common);
    }
    expect(await tlsSecret()).toBeUndefined();
  }, 120_000);
});

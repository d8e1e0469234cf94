import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ChartValues } from '../../contract/chart-values.ts';
import { Config } from '../../contract/config.ts';
import { resolveNatsCredentials } from '../../contract/nats-credentials.ts';
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
    ['a NATS user without its password Secret', ['--set', 'nats.auth.user=x'], 'nats.auth: user and passwordSecret.name go together'],
    ['a NATS token beside a user', ['--set', 'nats.auth.tokenSecret.name=t', '--set', 'nats.auth.user=x', '--set', 'nats.auth.passwordSecret.name=p'], 'nats.auth: set one of user with passwordSecret, tokenSecret, credsSecret or nkeySeedSecret'],
    ['a NATS creds file beside an nkey seed', ['--set', 'nats.auth.credsSecret.name=c', '--set', 'nats.auth.nkeySeedSecret.name=n'], 'nats.auth: set one of user'],
    ['a NATS client certificate without its Secret', ['--set', 'nats.tls.enabled=true', '--set', 'nats.tls.clientCertificate=true'], 'nats.tls.clientCertificate: the certificate comes from nats.tls.secretName, which is empty'],
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
      trustForwardHeader: true,
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

  it('gives both services the NATS password or token from an existing Secret as env, and mounts the creds file and the NATS TLS Secret the config names', async () => {
    type Container = { env: { name: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[]; volumeMounts: { name: string; mountPath: string }[] };
    type Deployment = Manifest & { spec: { template: { spec: { containers: Container[]; volumes: { name: string; secret?: { secretName: string } }[] } } } };
    const deployments = (objects: readonly Manifest[]) => objects.filter((o): o is Deployment => o.kind === 'Deployment');
    const configOf = (objects: readonly Manifest[]) =>
      Config.parse(parse((objects.find((o) => o.kind === 'ConfigMap') as Manifest & { data: Record<string, string> }).data['request-mirror.yaml'] ?? ''));

    const withPassword = await render(
      ...['--set', 'nats.auth.user=request-mirror', '--set', 'nats.auth.passwordSecret.name=nats-credentials'],
      ...['--set', 'nats.tls.enabled=true', '--set', 'nats.tls.secretName=nats-client-tls', '--set', 'nats.tls.clientCertificate=true'],
    );
    const config = configOf(withPassword);
    expect(config.nats.auth).toEqual({ user: 'request-mirror', password: { env: 'NATS_PASSWORD' } });
    expect(config.nats.tls).toEqual({ caFile: '/etc/request-mirror/nats-tls/ca.crt', certFile: '/etc/request-mirror/nats-tls/tls.crt', keyFile: '/etc/request-mirror/nats-tls/tls.key' });
    expect(deployments(withPassword)).toHaveLength(2);
    for (const d of deployments(withPassword)) {
      const [container] = d.spec.template.spec.containers;
      expect(container?.env).toContainEqual({ name: 'NATS_PASSWORD', valueFrom: { secretKeyRef: { name: 'nats-credentials', key: 'password' } } });
      expect(container?.volumeMounts).toContainEqual({ name: 'nats-tls', mountPath: '/etc/request-mirror/nats-tls', readOnly: true });
      expect(d.spec.template.spec.volumes).toContainEqual({ name: 'nats-tls', secret: { secretName: 'nats-client-tls' } });
    }
    // What the services do with it at start-up: the password from the variable the Deployments set (the TLS files
    // exist only in the pod).
    expect(resolveNatsCredentials({ ...config.nats, tls: undefined }, { env: { NATS_PASSWORD: 'from-secret' }, readFile: () => '' }).credentials).toEqual({
      user: 'request-mirror',
      pass: 'from-secret',
    });

    const withToken = await render('--set', 'nats.auth.tokenSecret.name=nats-token', '--set', 'nats.auth.tokenSecret.key=t', '--set', 'nats.tls.enabled=true');
    expect(configOf(withToken).nats).toMatchObject({ auth: { token: { env: 'NATS_TOKEN' } }, tls: {} });
    for (const d of deployments(withToken)) {
      const [container] = d.spec.template.spec.containers;
      expect(container?.env).toContainEqual({ name: 'NATS_TOKEN', valueFrom: { secretKeyRef: { name: 'nats-token', key: 't' } } });
      expect(container?.env.map((e) => e.name)).not.toContain('NATS_PASSWORD');
      expect(d.spec.template.spec.volumes.map((v) => v.name)).not.toContain('nats-tls');
    }

    const withCreds = await render('--set', 'nats.auth.credsSecret.name=nats-user-creds');
    expect(configOf(withCreds).nats.auth).toEqual({ credsFile: '/etc/request-mirror/nats-creds/user.creds' });
    for (const d of deployments(withCreds)) {
      expect(d.spec.template.spec.containers[0]?.volumeMounts).toContainEqual({ name: 'nats-creds', mountPath: '/etc/request-mirror/nats-creds', readOnly: true });
      expect(d.spec.template.spec.volumes).toContainEqual({ name: 'nats-creds', secret: { secretName: 'nats-user-creds', items: [{ key: 'user.creds', path: 'user.creds' }] } });
    }

    const withNkey = await render('--set', 'nats.auth.nkeySeedSecret.name=nats-user-nkey', '--set', 'nats.auth.nkeySeedSecret.key=seed');
    expect(configOf(withNkey).nats.auth).toEqual({ nkeySeedFile: '/etc/request-mirror/nats-nkey/user.nk' });
    for (const d of deployments(withNkey)) {
      expect(d.spec.template.spec.containers[0]?.volumeMounts).toContainEqual({ name: 'nats-nkey', mountPath: '/etc/request-mirror/nats-nkey', readOnly: true });
      expect(d.spec.template.spec.volumes).toContainEqual({ name: 'nats-nkey', secret: { secretName: 'nats-user-nkey', items: [{ key: 'seed', path: 'user.nk' }] } });
    }

    // And nothing of it by default.
    const defaults = await render();
    expect(configOf(defaults).nats.auth).toBeUndefined();
    expect(configOf(defaults).nats.tls).toBeUndefined();
    for (const d of deployments(defaults)) expect(d.spec.template.spec.containers[0]?.env.map((e) => e.name)).toEqual(['LOG_LEVEL']);
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
    expect(config.nats.auth).toEqual({ user: 'request-mirror', password: { env: 'NATS_PASSWORD' } });
    expect(config.nats.tls?.certFile).toBe('/etc/request-mirror/nats-tls/tls.crt');
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

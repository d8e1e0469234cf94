import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationV1TokenRequest, CoreV1Api, V1TokenRequestSpec } from '@kubernetes/client-node';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL } from '../../contract/mirror-target.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { parseManifests, waitForCrds } from '../../tools/stack/kube-apply.ts';
import { writeKubeconfig } from '../../tools/stack/kube-cluster.ts';
import { waitUntil } from '../../tools/stack/process.ts';
import { ROOT, startStack, type Stack } from '../../tools/stack/stack.ts';
import { waitForRouter } from '../../tools/stack/traefik-kubernetes.ts';
import { chartMiddleware, renderChart } from '../support/chart.ts';
import { useKube } from '../support/kube.ts';

// The chart's RBAC is enough, and no more than needed: the tap and the dispatcher run as the chart's two
// ServiceAccounts (tokens from the TokenRequest API, RBAC as the chart renders it), and the whole path works —
// the tap reads MirrorTargets, the dispatcher reads the referenced Secret and writes status — while the tap's
// account may not read that Secret.

const kube = useKube('rbac');
const cleanup = new Cleanup();
let stack: Stack;
const KEY = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

async function tokenFor(serviceAccount: string): Promise<string> {
  const core = kube.kc.makeApiClient(CoreV1Api);
  const { status } = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace: kube.namespace,
    body: Object.assign(new AuthenticationV1TokenRequest(), { spec: Object.assign(new V1TokenRequestSpec(), { expirationSeconds: 3600 }) }),
  });
  return status?.token ?? '';
}

beforeAll(async () => {
  await kube.apply(parseManifests(readFileSync(join(ROOT, 'crds/mirrortargets.requestmirror.io.yaml'), 'utf8')));
  await waitForCrds(kube.kc, [`${PLURAL}.${GROUP}`]);
  const dir = mkdtempSync(join(tmpdir(), 'rm-rbac-'));
  cleanup.add(() => { rmSync(dir, { recursive: true, force: true }); });
  // Plain HTTP to the tap here (tap.tls.enabled=false): this file is about RBAC, kubernetes.test.ts covers TLS.
  const chart = await renderChart(kube.namespace, '--set', 'tap.tls.enabled=false');
  const rbac = chart.filter((o) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind ?? ''));
  expect(rbac).toHaveLength(6);
  await kube.apply(rbac);
  const kubeconfigs: Record<string, string> = {};
  for (const [service, account] of [['ingress-tap', 'request-mirror-tap'], ['dispatcher', 'request-mirror-dispatcher']] as const) {
    kubeconfigs[service] = join(dir, service);
    writeKubeconfig(kubeconfigs[service], kube.world, await tokenFor(account), kube.namespace);
  }
  stack = await startStack({
    receivers: ['hook'],
    kubernetes: { namespaces: [kube.namespace], statusIntervalMs: 300 },
    env: (service) => ({ KUBECONFIG: kubeconfigs[service] }),
  });
  cleanup.add(() => stack.close());
  const ns = kube.namespace;
  await kube.apply([chartMiddleware(chart, stack.backends.tapForwardAuthUrl)]);
  await kube.apply(`
apiVersion: v1
kind: Service
metadata: {name: app}
spec: {type: ExternalName, externalName: 127.0.0.1, ports: [{name: http, port: ${stack.upstream.port}}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
  annotations: {traefik.ingress.kubernetes.io/router.middlewares: ${ns}-request-mirror@kubernetescrd}
spec:
  rules:
    - host: app.${ns}.test
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app, port: {number: ${stack.upstream.port}}}}}]}
---
apiVersion: v1
kind: Secret
metadata: {name: hook-key}
stringData: {key: ${KEY}}
---
apiVersion: requestmirror.io/v1alpha1
kind: MirrorTarget
metadata: {name: hook}
spec:
  watchURL: ${stack.receivers.hook?.url ?? ''}/in
  methods: [POST]
  secrets: [{secretRef: {name: hook-key, key: key}}]
`);
  await waitForRouter({ adminUrl: kube.world.traefikAdminUrl }, (n) => n.includes(ns) && n.endsWith('@kubernetes'));
}, 120_000);
afterAll(() => cleanup.run());

describe("the chart's RBAC", () => {
  it('lets the tap read MirrorTargets and the dispatcher read Secrets and write status, end to end', async () => {
    const hook = stack.receivers.hook;
    if (!hook) throw new Error('no receiver');
    let n = 0;
    await waitUntil('a signed delivery', async () => {
      const res = await request(`${kube.world.traefikUrl}/rbac-${n++}`, { method: 'POST', headers: { host: `app.${kube.namespace}.test` }, body: 'x' });
      await res.body.dump();
      return hook.requests.length > 0;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    const first = hook.requests[0];
    if (!first) throw new Error('no delivery');
    expect(() => new Webhook(KEY).verify(first.body.toString(), first.headers as Record<string, string>)).not.toThrow();
    await waitUntil('status written by the dispatcher', async () => {
      const res = await kube.request('GET', `/apis/${GROUP}/v1alpha1/namespaces/${kube.namespace}/${PLURAL}/hook`);
      const status = (res.body as { status?: { conditions?: { type: string; status: string }[] } }).status;
      return status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    for (const p of [stack.tap, stack.dispatcher]) expect(p.output()).not.toMatch(/forbidden/i);
  }, 90_000);

  it("does not let the tap's account read Secrets", async () => {
    const token = await tokenFor('request-mirror-tap');
    const agent = new Agent({ connect: { ca: kube.world.ca } });
    try {
      const res = await request(`${kube.world.server}/api/v1/namespaces/${kube.namespace}/secrets/hook-key`, { headers: { authorization: `Bearer ${token}` }, dispatcher: agent });
      await res.body.dump();
      expect(res.statusCode).toBe(403);
    } finally {
      await agent.close();
    }
  });
});

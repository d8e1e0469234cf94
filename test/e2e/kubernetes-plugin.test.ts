import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { readExample } from '../../tools/stack/examples.ts';
import { eventsOf, startStack, waitForEvent, type Stack } from '../../tools/stack/stack.ts';
import { waitForRouter } from '../../tools/stack/traefik-kubernetes.ts';
import { useKube } from '../support/kube.ts';

// The Traefik plugin from Kubernetes: docs/examples/kubernetes/plugin-middleware.yaml (a Middleware with
// spec.plugin.requestmirror) attached to a plain Ingress by annotation (plugin-ingress.yaml), applied to a real API
// server and served by the run's Traefik, which loads the plugin locally (tools/stack/traefik-kubernetes.ts). Only
// names and addresses are changed, to the test's namespace and loopback processes.

const kube = useKube('plugin');
let stack: Stack;
const cleanup = new Cleanup();
const host = () => `shop.${kube.namespace}.test`;
const hook = () => {
  const r = stack.receivers.hook;
  if (!r) throw new Error('no receiver hook');
  return r;
};

beforeAll(async () => {
  stack = await startStack({
    receivers: ['hook'],
    targets: (r) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], cookieNames: ['session'] }],
  });
  cleanup.add(() => stack.close());
  const ns = kube.namespace;
  const port = String(stack.upstream.port);
  const middleware = readExample('kubernetes/plugin-middleware.yaml')
    .replace('namespace: shop', `namespace: ${ns}`)
    .replace('http://request-mirror-tap.request-mirror.svc:8082', stack.backends.tapPluginUrl);
  const ingress = readExample('kubernetes/plugin-ingress.yaml')
    .replace('namespace: shop', `namespace: ${ns}`)
    .replace('shop-request-mirror@kubernetescrd', `${ns}-request-mirror@kubernetescrd`)
    .replace('host: shop.example.com', `host: ${host()}`)
    .replace('number: 8080', `number: ${port}`);
  await kube.apply(`
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik}
spec: {controller: traefik.io/ingress-controller}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec: {type: ExternalName, externalName: 127.0.0.1, ports: [{name: http, port: ${port}}]}
---
${middleware}
---
${ingress}`);
  await waitForRouter({ adminUrl: kube.world.traefikAdminUrl }, (n) => n.includes(ns) && n.endsWith('@kubernetes'));
}, 120_000);

afterAll(() => cleanup.run());

async function send(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<number> {
  const res = await request(`${kube.world.traefikUrl}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { host: host(), ...init.headers },
    body: init.body ?? null,
  });
  await res.body.dump();
  return res.statusCode;
}

describe('Traefik plugin from Kubernetes', () => {
  it('mirrors through a Middleware with spec.plugin attached to a plain Ingress by annotation', async () => {
    expect(await send('/orders?id=3', { method: 'POST', headers: { cookie: 'session=k8s; theme=dark' }, body: '{"n":3}' })).toBe(201);
    const event = await waitForEvent(hook(), (e) => e.data.path === '/orders');
    expect(event.data).toMatchObject({ attachment: 'plugin', method: 'POST', host: host(), query: 'id=3', cookies: { session: 'k8s' }, body: { data: '{"n":3}' } });
    // methods in the Middleware leave OPTIONS out: served, not mirrored.
    expect(await send('/options', { method: 'OPTIONS' })).toBe(201);
    expect(await send('/after-options')).toBe(201);
    await waitForEvent(hook(), (e) => e.data.path === '/after-options');
    expect(eventsOf(hook().requests).filter((e) => e.data.path === '/options')).toEqual([]);
  });
});

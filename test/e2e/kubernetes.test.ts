import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type Condition } from '../../contract/mirror-target.ts';
import { parseManifests, waitForCrds, type Manifest } from '../../tools/stack/kube-apply.ts';
import { waitUntil } from '../../tools/stack/process.ts';
import { eventsOf, ROOT, startStack, waitForEvent, type Stack } from '../../tools/stack/stack.ts';
import { waitForRouter } from '../../tools/stack/traefik-kubernetes.ts';
import { useKube } from '../support/kube.ts';
import { makeCertificate } from '../support/tls.ts';
import { intoNamespace, kubernetesExample } from '../support/kube-examples.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { writeKubeconfig } from '../../tools/stack/kube-cluster.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { chartMiddleware, renderChart } from '../support/chart.ts';

// The whole product on a real API server and a real Traefik reading it through its Kubernetes providers: a plain
// Ingress whose annotation attaches the chart's forwardAuth Middleware as `helm template` renders it (HTTP/2 over TLS
// to the tap; only its address is pointed at the local tap), the ingress-tap and dispatcher as local processes
// watching MirrorTargets, NATS, and webhook receivers.

const kube = useKube('e2e');
let stack: Stack;
/** Between the services and the API server, so a test can take the API server away from them alone. */
let apiProxy: TcpProxy;
const cleanup = new Cleanup();

const KEY_1 = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const KEY_2 = 'whsec_c2Vjb25kIGtleSBmb3Igcm90YXRpb24=';

const receiver = (name: string) => {
  const r = stack.receivers[name];
  if (!r) throw new Error(`no receiver ${name}`);
  return r;
};
const host = (app: string) => `${app}.${kube.namespace}.test`;
const mirrorTarget = (name: string, spec: Record<string, unknown>): Manifest =>
  ({ apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec });

async function send(app: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<number> {
  const res = await request(`${kube.world.traefikUrl}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { host: host(app), ...init.headers },
    body: init.body ?? null,
  });
  await res.body.dump();
  return res.statusCode;
}

/** Waits until both services hold `count` MirrorTargets (their `request_mirror_kubernetes_targets` gauge). */
async function targetsInForce(count: number): Promise<void> {
  for (const url of [stack.tapAdminUrl, stack.dispatcherAdminUrl]) {
    await waitUntil(`${count} MirrorTargets in force at ${url}`, async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return new RegExp(`^request_mirror_kubernetes_targets ${count}$`, 'm').test(text);
    }, { timeoutMs: 20_000 });
  }
}

async function conditions(name: string): Promise<Record<string, Condition>> {
  const api = kube.kc.makeApiClient(CustomObjectsApi);
  const object = (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: kube.namespace, plural: PLURAL, name })) as {
    status?: { conditions?: Condition[] };
  };
  return Object.fromEntries((object.status?.conditions ?? []).map((c) => [c.type, c]));
}

/** Waits for a condition; `poke` runs before each look (e.g. sends a request so there is a delivery to report on). */
async function waitForCondition(name: string, type: 'Accepted' | 'Ready', status: string, reason: string, poke?: () => Promise<unknown>): Promise<Condition> {
  let last: Condition | undefined;
  await waitUntil(`${name} ${type}=${status} (${reason})`, async () => {
    await poke?.();
    last = (await conditions(name))[type];
    return last?.status === status && last.reason === reason;
  }, { timeoutMs: 30_000, intervalMs: 200 });
  if (!last) throw new Error('unreachable');
  return last;
}

beforeAll(async () => {
  await kube.apply(parseManifests(readFileSync(join(ROOT, 'crds/mirrortargets.requestmirror.io.yaml'), 'utf8')));
  await waitForCrds(kube.kc, [`${PLURAL}.${GROUP}`]);
  const tls = makeCertificate();
  cleanup.add(() => { tls.remove(); });
  apiProxy = await startTcpProxy(Number(new URL(kube.world.server).port));
  cleanup.add(() => apiProxy.close());
  const kubeconfig = join(tls.dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${apiProxy.port}`, caFile: kube.world.caFile }, kube.world.token, kube.namespace);
  stack = await startStack({
    receivers: ['audit', 'marker', 'signed', 'gone', 'docs', 'clientip', 'mirrored'],
    tapForwardAuthTls: { certFile: tls.certFile, keyFile: tls.keyFile },
    kubernetes: { namespaces: [kube.namespace], statusIntervalMs: 300 },
    env: { KUBECONFIG: kubeconfig },
  });
  cleanup.add(() => stack.close());
  const faPort = new URL(stack.backends.tapForwardAuthUrl).port;
  const mirrorPort = new URL(stack.backends.tapMirrorUrl).port;
  const ns = kube.namespace;
  const middleware = chartMiddleware(await renderChart(ns), `https://127.0.0.1:${faPort}/`);
  expect(middleware.metadata?.name).toBe('request-mirror');
  await kube.apply([
    // What the chart's own Secret would hold for Traefik: the CA of the tap's certificate.
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: middleware.spec.forwardAuth.tls?.caSecret ?? '' }, stringData: { 'ca.crt': tls.ca } },
    middleware,
  ]);
  await kube.apply(`
apiVersion: v1
kind: Service
metadata: {name: app}
spec: {type: ExternalName, externalName: 127.0.0.1, ports: [{name: http, port: ${stack.upstream.port}}]}
---
apiVersion: v1
kind: Service
metadata: {name: tap-mirror}
spec: {type: ExternalName, externalName: 127.0.0.1, ports: [{name: http, port: ${mirrorPort}}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
  annotations:
    traefik.ingress.kubernetes.io/router.middlewares: ${ns}-request-mirror@kubernetescrd
spec:
  rules:
    - host: ${host('app')}
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: app, port: {number: ${stack.upstream.port}}}}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: app-mirrored}
spec:
  mirroring:
    name: app
    port: ${stack.upstream.port}
    mirrors:
      - {name: tap-mirror, port: ${mirrorPort}, percent: 100}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: mirrored}
spec:
  entryPoints: [web]
  routes:
    - match: Host(\`${host('mirrored')}\`)
      kind: Rule
      services: [{name: app-mirrored, kind: TraefikService}]
`);
  await waitForRouter({ adminUrl: kube.world.traefikAdminUrl }, (n) => n.includes(ns) && n.endsWith('@kubernetes'));
  await waitForRouter({ adminUrl: kube.world.traefikAdminUrl }, (n) => n.includes(ns) && n.includes('mirrored') && n.endsWith('@kubernetescrd'));
}, 120_000);

afterAll(() => cleanup.run());

describe('Kubernetes end to end', () => {
  it('delivers through the Ingress annotation to the MirrorTarget webhook, honouring its methods and cookieNames', async () => {
    await kube.apply([
      mirrorTarget('audit', { watchURL: `${receiver('audit').url}/audit`, methods: ['POST'], cookieNames: ['session'], concurrency: 1 }),
      mirrorTarget('marker', { watchURL: `${receiver('marker').url}/marker`, methods: ['*'], concurrency: 1 }),
    ]);
    await targetsInForce(2);
    expect(await send('app', '/read-only')).toBe(201);
    expect(await send('app', '/orders', { method: 'POST', headers: { cookie: 'session=abc; theme=dark' }, body: '{"n":1}' })).toBe(201);
    const event = await waitForEvent(receiver('audit'), (e) => e.data.path === '/orders');
    expect(event.data.attachment).toBe('forwardAuth');
    expect(event.data.method).toBe('POST');
    expect(event.data.host).toBe(host('app'));
    expect(event.data.cookies).toEqual({ session: 'abc' });
    await waitForEvent(receiver('marker'), (e) => e.data.path === '/orders');
    expect(eventsOf(receiver('audit').requests).map((e) => e.data.path)).toEqual(['/orders']);
  }, 90_000);

  it('applies an edit of the MirrorTarget within seconds, and stops delivering once it is deleted', async () => {
    await kube.apply([mirrorTarget('audit', { watchURL: `${receiver('audit').url}/audit`, methods: ['GET'], concurrency: 1 })]);
    const edited = performance.now();
    let n = 0;
    await waitUntil('a GET delivered after the edit', async () => {
      await send('app', `/after-edit-${n++}`);
      return eventsOf(receiver('audit').requests).some((e) => e.data.method === 'GET');
    }, { timeoutMs: 20_000, intervalMs: 100 });
    const editMs = Math.round(performance.now() - edited);
    process.stdout.write(`[measured] MirrorTarget edit to first delivery under the new spec: ${editMs} ms\n`);
    expect(editMs).toBeLessThan(10_000);

    await kube.remove([mirrorTarget('audit', {})]);
    await targetsInForce(1);
    const before = receiver('audit').requests.length;
    await send('app', '/after-delete');
    await send('app', '/after-delete-2');
    await waitForEvent(receiver('marker'), (e) => e.data.path === '/after-delete-2');
    expect(receiver('audit').requests.length).toBe(before);
  }, 90_000);

  it('signs with the key in the referenced Secret and follows its rotation', async () => {
    await kube.apply(`
apiVersion: v1
kind: Secret
metadata: {name: signing}
stringData: {current: ${KEY_1}}
`);
    await kube.apply([mirrorTarget('signed', { watchURL: `${receiver('signed').url}/in`, methods: ['PUT'], secrets: [{ secretRef: { name: 'signing', key: 'current' } }] })]);
    await waitForCondition('signed', 'Accepted', 'True', 'Valid');
    await targetsInForce(2);
    await send('app', '/signed-1', { method: 'PUT', body: 'x' });
    await receiver('signed').waitFor(1, 15_000);
    const first = receiver('signed').requests[0];
    if (!first) throw new Error('no delivery');
    expect(() => new Webhook(KEY_1).verify(first.body.toString(), first.headers as Record<string, string>)).not.toThrow();

    await kube.apply(`
apiVersion: v1
kind: Secret
metadata: {name: signing}
stringData: {current: ${KEY_2}}
`);
    const rotated = performance.now();
    let n = 0;
    await waitUntil('a delivery signed with the new key', async () => {
      await send('app', `/signed-rotated-${n++}`, { method: 'PUT', body: 'x' });
      const last = receiver('signed').requests.at(-1);
      if (!last) return false;
      try {
        new Webhook(KEY_2).verify(last.body.toString(), last.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    }, { timeoutMs: 20_000, intervalMs: 200 });
    process.stdout.write(`[measured] Secret rotation to first delivery signed with the new key: ${Math.round(performance.now() - rotated)} ms\n`);
    // Every delivery verifies with one of the keys: none was left unsigned or signed with garbage in between.
    for (const r of receiver('signed').requests) {
      const verifies = [KEY_1, KEY_2].some((k) => {
        try {
          new Webhook(k).verify(r.body.toString(), r.headers as Record<string, string>);
          return true;
        } catch {
          return false;
        }
      });
      expect(verifies).toBe(true);
    }
  }, 90_000);

  it('mirrors through an IngressRoute to a Mirroring TraefikService', async () => {
    expect(await send('mirrored', '/via-mirroring', { method: 'POST', body: 'mirrored body' })).toBe(201);
    const event = await waitForEvent(receiver('marker'), (e) => e.data.path === '/via-mirroring');
    expect(event.data.attachment).toBe('mirror');
    expect(event.data.method).toBe('POST');
  });

  it("makes clientIp the client a trusted balancer names, and the peer otherwise, through the chart's Middleware", async () => {
    await kube.apply([mirrorTarget('client-ip', { watchURL: `${receiver('clientip').url}/in`, methods: ['GET'] })]);
    let n = 0;
    const clientIpVia = async (entrypoint: 'balanced' | 'web', forwardedFor: string): Promise<string | null> => {
      const traefikUrl = entrypoint === 'balanced' ? kube.world.traefikBalancedUrl : kube.world.traefikUrl;
      const seen = () => eventsOf(receiver('clientip').requests).find((e) => e.data.path.startsWith(`/client-ip/${entrypoint}/`));
      // Until the tap holds the new target, a request is not mirrored to it: send one per look.
      await waitUntil(`an event for a request through the ${entrypoint} entrypoint`, async () => {
        const res = await request(`${traefikUrl}/client-ip/${entrypoint}/${n++}`, { headers: { host: host('app'), 'x-forwarded-for': forwardedFor } });
        await res.body.dump();
        return seen() !== undefined;
      }, { timeoutMs: 20_000, intervalMs: 200 });
      return seen()?.data.clientIp ?? null;
    };
    // The balanced entrypoint lists 127.0.0.1 (this test's client) in forwardedHeaders.trustedIPs.
    expect(await clientIpVia('balanced', '198.51.100.7')).toBe('198.51.100.7');
    // The web entrypoint trusts nobody: a client cannot choose the address the event names.
    expect(await clientIpVia('web', '198.51.100.7')).toBe('127.0.0.1');
  }, 60_000);

  it("mirrors through the install guide's Mirroring example, whose ServersTransport ends a call the tap never answers", async () => {
    const ns = kube.namespace;
    // A tap that accepts the mirrored call, reads it and never answers; each connection's life is recorded.
    const connections: { accepted: number; closed?: number }[] = [];
    const sockets = new Set<Socket>();
    const hung = createServer((socket) => {
      const connection: { accepted: number; closed?: number } = { accepted: performance.now() };
      connections.push(connection);
      sockets.add(socket);
      socket.resume();
      socket.on('error', () => undefined);
      socket.on('close', () => { connection.closed = performance.now(); });
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    cleanup.add(() => new Promise<void>((resolve) => {
      // close() waits for open connections: a call Traefik never gave up on must not hold up the teardown.
      for (const socket of sockets) socket.destroy();
      hung.close(() => { resolve(); });
    }));
    const hungPort = (hung.address() as AddressInfo).port;
    const mirrorPort = new URL(stack.backends.tapMirrorUrl).port;
    // Pointed at this test's upstream (Service app), tap (Service tap-mirror, or hung-tap) and hosts; the rest of
    // each copy, the ServersTransport included, is the guide's text.
    const example = (name: string, tapService: string, tapPort: string | number) =>
      intoNamespace(kubernetesExample('mirroring-ingressroute.yaml'), ns)
        .replaceAll('shop-mirrored', name)
        .replace('shop.example.com', host(name))
        .replace('name: shop\n', 'name: app\n')
        .replace('port: 80\n', `port: ${stack.upstream.port}\n`)
        .replace('- name: request-mirror-tap\n', `- name: ${tapService}\n`)
        .replace('port: 8081\n', `port: ${tapPort}\n`);
    await kube.apply(`
apiVersion: v1
kind: Service
metadata: {name: hung-tap}
spec: {type: ExternalName, externalName: 127.0.0.1, ports: [{name: http, port: ${hungPort}}]}
`);
    await kube.apply(example('docs-mirrored', 'tap-mirror', mirrorPort));
    await kube.apply(example('hung-mirrored', 'hung-tap', hungPort));
    await kube.apply([mirrorTarget('docs-mirrored', { watchURL: `${receiver('mirrored').url}/in`, methods: ['POST'], hosts: [host('docs-mirrored')] })]);
    await waitForRouter({ adminUrl: kube.world.traefikAdminUrl }, (n) => n.includes(ns) && n.includes('docs-mirrored') && n.endsWith('@kubernetescrd'));
    await waitForRouter({ adminUrl: kube.world.traefikAdminUrl }, (n) => n.includes(ns) && n.includes('hung-mirrored') && n.endsWith('@kubernetescrd'));

    let n = 0;
    // Until the tap holds the new target, a request is not mirrored to it: send one per look.
    await waitUntil('an event through the Mirroring example', async () => {
      expect(await send('docs-mirrored', `/docs-mirrored/${n++}`, { method: 'POST', body: 'copy me' })).toBe(201);
      return receiver('mirrored').requests.length > 0;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    expect(eventsOf(receiver('mirrored').requests)[0]?.data).toMatchObject({ attachment: 'mirror', method: 'POST', host: host('docs-mirrored') });
    // A body one byte over the example's maxBodySize is served but not copied. Traefik sends each copy as the request
    // is served, so once the copy of a request sent after it has arrived, the big one's would have too.
    expect(await send('docs-mirrored', '/docs-mirrored/over-limit', { method: 'POST', body: Buffer.alloc(1024 * 1024 + 1, 'a') })).toBe(201);
    expect(await send('docs-mirrored', '/docs-mirrored/after', { method: 'POST', body: 'after' })).toBe(201);
    await waitForEvent(receiver('mirrored'), (e) => e.data.path === '/docs-mirrored/after');
    expect(eventsOf(receiver('mirrored').requests).filter((e) => e.data.path === '/docs-mirrored/over-limit')).toEqual([]);

    // The client is served at once; the mirrored call hangs until the ServersTransport's responseHeaderTimeout (5s).
    const sent = performance.now();
    expect(await send('hung-mirrored', '/hung', { method: 'POST', body: 'x' })).toBe(201);
    expect(performance.now() - sent).toBeLessThan(2000);
    await waitUntil('Traefik to give up on the hung mirror call', () => Promise.resolve(connections.length > 0 && connections.every((c) => c.closed !== undefined)), { timeoutMs: 20_000 });
    const lived = connections.map((c) => Math.round((c.closed ?? 0) - c.accepted));
    process.stdout.write(`[measured] mirrored call to a tap that never answers, closed by Traefik after: ${lived.join(', ')} ms\n`);
    for (const ms of lived) expect(ms).toBeGreaterThanOrEqual(4500);
  }, 90_000);

  it('tells in status conditions why a healthy, a refused, a gone and an unreachable target get what they get', async () => {
    receiver('gone').respond = (_req, res) => { res.writeHead(410).end(); };
    const closedPort = await freePort();
    await kube.apply([
      mirrorTarget('marker', { watchURL: `${receiver('marker').url}/marker`, methods: ['*'], concurrency: 1 }),
      // Link-local: refused by the dispatcher's default network policy before any connection is made.
      mirrorTarget('refused', { watchURL: 'http://169.254.169.254/latest', methods: ['PATCH'], retry: { maxAttempts: 1 } }),
      mirrorTarget('dead', { watchURL: `${receiver('gone').url}/gone`, methods: ['PATCH'], retry: { maxAttempts: 1 } }),
      mirrorTarget('unsigned', { watchURL: `${receiver('marker').url}/x`, methods: ['PATCH'], secrets: [{ secretRef: { name: 'no-such-secret', key: 'k' } }] }),
      // Nothing listens there: connection refused, and one failure opens the circuit.
      mirrorTarget('unreachable', {
        watchURL: `http://127.0.0.1:${closedPort}/`,
        methods: ['PATCH'],
        retry: { maxAttempts: 1 },
        circuitBreaker: { failureThreshold: 1, cooldownMs: 600_000 },
      }),
    ]);
    // Until the tap and the dispatcher both hold the new targets a request may not reach them: send one per look.
    const poke = () => send('app', '/status-check', { method: 'PATCH', body: 'x' });
    const healthy = await waitForCondition('marker', 'Ready', 'True', 'Delivering', poke);
    expect(healthy.observedGeneration).toBe(1);
    expect((await waitForCondition('refused', 'Ready', 'False', 'AddressRefused', poke)).message).toContain('network policy');
    expect((await waitForCondition('dead', 'Ready', 'False', 'TargetGone', poke)).message).toContain('410');
    expect((await waitForCondition('unreachable', 'Ready', 'False', 'CircuitOpen', poke)).message).toContain('last: connection');
    const missing = await waitForCondition('unsigned', 'Accepted', 'False', 'SecretMissing');
    expect(missing.message).toBe('Secret no-such-secret does not exist');
    expect((await conditions('unsigned')).Ready).toMatchObject({ status: 'False', reason: 'SecretMissing' });
    expect((await conditions('marker')).Accepted).toMatchObject({ status: 'True', reason: 'Valid' });
  }, 120_000);

  it("mirrors a request with the install guide's Ingress and MirrorTarget as written", async () => {
    const ns = kube.namespace;
    // Pointed at this test's upstream and receiver; the rest of each manifest is the guide's text.
    await kube.apply(intoNamespace(kubernetesExample('app-ingress.yaml'), ns)
      .replace('name: app\n', 'name: docs-app\n')
      .replace('shop.example.com', host('shop'))
      .replace('name: shop\n', 'name: app\n')
      .replace('number: 80', `number: ${stack.upstream.port}`));
    await kube.apply(intoNamespace(kubernetesExample('mirror-target.yaml'), ns)
      .replace('https://audit.example.com/events', `${receiver('docs').url}/events`)
      .replace('[shop.example.com]', `[${host('shop')}]`));
    await waitForRouter({ adminUrl: kube.world.traefikAdminUrl }, (n) => n.includes('docs-app') && n.includes(ns));
    await waitForCondition('audit', 'Accepted', 'True', 'Valid');
    let n = 0;
    await waitUntil('the guide\'s target to receive a POST', async () => {
      await send('shop', `/checkout-${n++}`, { method: 'POST', headers: { cookie: 'session=s1; tracking=t1' }, body: '{}' });
      return receiver('docs').requests.length > 0;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    const delivered = receiver('docs').requests[0];
    if (!delivered) throw new Error('no delivery');
    const event = eventsOf([delivered])[0];
    expect(event?.data).toMatchObject({ method: 'POST', host: host('shop'), cookies: { session: 's1' }, attachment: 'forwardAuth' });
    expect(() => new Webhook(KEY_1).verify(delivered.body.toString(), delivered.headers as Record<string, string>)).not.toThrow();
  }, 90_000);

  it('keeps delivering to the last known targets while the API server is out of reach, and says so in /readyz', async () => {
    await kube.apply([mirrorTarget('marker', { watchURL: `${receiver('marker').url}/marker`, methods: ['*'], concurrency: 1 })]);
    await waitForCondition('marker', 'Accepted', 'True', 'Valid');
    const readyz = async (url: string) => {
      const res = await fetch(`${url}/readyz`);
      return { status: res.status, body: await res.text() };
    };
    await apiProxy.cut();
    try {
      for (const url of [stack.tapAdminUrl, stack.dispatcherAdminUrl]) {
        await waitUntil(`${url}/readyz to report the broken watch`, async () => (await readyz(url)).body.includes('kubernetes: watch broken'), { timeoutMs: 30_000 });
        const { status, body } = await readyz(url);
        // Still ready: taking the taps out of service would make Traefik answer 500 to every request.
        expect(status).toBe(200);
        expect(body).toMatch(/^ready\nkubernetes: watch broken, last known targets stay in force \(\d+\)\nkubernetes: mirrortargets /);
        const metrics = await (await fetch(`${url}/metrics`)).text();
        expect(metrics).toMatch(new RegExp(`request_mirror_kubernetes_watch_up\\{[^}]*namespace="${kube.namespace}"[^}]*\\} 0`));
      }
      expect(stack.tap.output()).toContain('RM_KUBERNETES_WATCH_FAILED');
      await send('app', '/during-outage');
      await waitForEvent(receiver('marker'), (e) => e.data.path === '/during-outage');
    } finally {
      await apiProxy.restore();
    }
    for (const url of [stack.tapAdminUrl, stack.dispatcherAdminUrl]) {
      await waitUntil(`${url}/readyz to recover`, async () => (await readyz(url)).body === 'ready\n', { timeoutMs: 45_000 });
    }
  }, 120_000);
});

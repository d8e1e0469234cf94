import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, GROUP, KIND, PLURAL } from '../../contract/mirror-target.ts';
import { createKubernetesMetrics } from '../../kubernetes/kubernetes-metrics.ts';
import { watchMirrorTargets, type TargetSnapshot, type TargetSource } from '../../kubernetes/target-source.ts';
import { kubeConfigFor, parseManifests, waitForCrds, type Manifest } from '../../tools/stack/kube-apply.ts';
import { eventually } from '../support/eventually.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { useKube } from '../support/kube.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

// The MirrorTarget informers against a real API server: what reaches the services' reload path when objects and
// Secrets are created, edited and deleted, and what happens while the API server is out of reach.

const kube = useKube('source');

const mirrorTarget = (name: string, spec: Record<string, unknown>, namespace?: string): Manifest =>
  ({ apiVersion: API_VERSION, kind: KIND, metadata: { name, ...(namespace ? { namespace } : {}) }, spec });
const secret = (name: string, data: Record<string, string>): Manifest =>
  ({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, stringData: data });

interface Watching {
  readonly source: TargetSource;
  readonly snapshots: TargetSnapshot[];
  readonly logs: string[];
  readonly registry: Registry;
  latest(): TargetSnapshot;
}

const running: TargetSource[] = [];
afterEach(() => {
  for (const s of running.splice(0)) s.stop();
});

function watch(options: { namespaces?: string[]; namespaceSelector?: string; secrets?: boolean; server?: string } = {}): Watching {
  const snapshots: TargetSnapshot[] = [];
  const logs: string[] = [];
  const registry = new Registry();
  const logger = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _enc, done) { logs.push(chunk.toString()); done(); } }));
  const world = kube.world;
  const source = watchMirrorTargets({
    kubeConfig: kubeConfigFor({ server: options.server ?? world.server, ca: world.ca }, world.token, kube.namespace),
    source: {
      namespaces: options.namespaces ?? [],
      ...(options.namespaceSelector ? { namespaceSelector: options.namespaceSelector } : {}),
      statusIntervalMs: 2000,
    },
    defaultNamespace: kube.namespace,
    secrets: options.secrets ?? true,
    logger,
    metrics: createKubernetesMetrics(registry),
    onChange: (s) => snapshots.push(s),
    settleMs: 20,
  });
  running.push(source);
  return { source, snapshots, logs, registry, latest: () => source.snapshot() };
}

const names = (s: TargetSnapshot) => s.targets.map((t) => t.name);

/** `request_mirror_kubernetes_watch_up` of the file's namespace's MirrorTarget watch. */
async function watchUp(w: Watching): Promise<number | undefined> {
  const metric = w.registry.getSingleMetric('request_mirror_kubernetes_watch_up');
  const values = (await metric?.get())?.values ?? [];
  return values.find((v) => v.labels.namespace === kube.namespace && v.labels.resource === PLURAL)?.value;
}

beforeAll(async () => {
  await kube.apply(parseManifests(readFileSync(join(ROOT, 'crds/mirrortargets.requestmirror.io.yaml'), 'utf8')));
  await waitForCrds(kube.kc, [`${PLURAL}.${GROUP}`]);
});

describe('MirrorTarget source', () => {
  it('applies an added, an edited and a deleted MirrorTarget, with the contract defaults', async () => {
    const w = watch();
    await w.source.ready;
    await kube.apply([mirrorTarget('orders', { watchURL: 'https://orders.example.com/in', methods: ['POST'] })]);
    const ns = kube.namespace;
    await eventually('the target', () => names(w.latest()).includes(`${ns}/orders`));
    expect(w.latest().targets[0]).toMatchObject({ name: `${ns}/orders`, methods: ['POST'], concurrency: 8, cookieNames: [] });

    await kube.apply([mirrorTarget('orders', { watchURL: 'https://orders.example.com/in', methods: ['GET'], cookieNames: ['session'] })]);
    await eventually('the edit', () => w.latest().targets[0]?.methods[0] === 'GET');
    expect(w.latest().targets[0]?.cookieNames).toEqual(['session']);

    await kube.remove([mirrorTarget('orders', {})]);
    await eventually('the deletion', () => w.latest().targets.length === 0);
  }, 60_000);

  it('reports its watch up once it has listed, with no failure before, and logs no restoration', async () => {
    const w = watch();
    await w.source.ready;
    expect(await watchUp(w)).toBe(1);
    expect(w.logs.filter((l) => l.includes('kubernetes watch'))).toEqual([]);
  });

  it('refuses a target whose Secret is missing, then signs with it once it exists and follows its rotation', async () => {
    const w = watch();
    await w.source.ready;
    await kube.apply([mirrorTarget('signed', { watchURL: 'https://s.example.com/', methods: ['*'], secrets: [{ secretRef: { name: 'hook-keys', key: 'current' } }] })]);
    await eventually('the refusal', () => w.latest().objects.some((o) => o.name === 'signed'));
    const refused = w.latest().objects.find((o) => o.name === 'signed');
    expect(refused?.refusal).toEqual({ reason: 'SecretMissing', message: 'Secret hook-keys does not exist' });
    expect(w.latest().targets).toEqual([]);

    await kube.apply([secret('hook-keys', { current: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })]);
    await eventually('the acceptance', () => w.latest().targets.length === 1);
    expect(w.latest().objects[0]?.secrets).toEqual(['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw']);

    await kube.apply([secret('hook-keys', { current: 'whsec_c2Vjb25kIGtleSBmb3Igcm90YXRpb24=' })]);
    await eventually('the rotation', () => w.latest().objects[0]?.secrets[0] === 'whsec_c2Vjb25kIGtleSBmb3Igcm90YXRpb24=');
    await kube.remove([mirrorTarget('signed', {}), secret('hook-keys', {})]);
  }, 60_000);

  it('gives the tap its targets without reading any Secret', async () => {
    const w = watch({ secrets: false });
    await kube.apply([mirrorTarget('tap-only', { watchURL: 'https://t.example.com/', methods: ['*'], secrets: [{ secretRef: { name: 'absent', key: 'k' } }] })]);
    await eventually('the target', () => w.latest().targets.length === 1);
    expect(w.latest().objects[0]?.secrets).toEqual([]);
    await kube.remove([mirrorTarget('tap-only', {})]);
  });

  it('follows the namespaces a label selector picks, as labels change', async () => {
    const label = `rm-test-${kube.namespace}`;
    const other = `${kube.namespace}-b`;
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other, labels: { [label]: 'yes' } } }]);
    await kube.apply([mirrorTarget('in-other', { watchURL: 'https://o.example.com/', methods: ['*'] }, other)]);
    const w = watch({ namespaceSelector: `${label}=yes` });
    await eventually('the selected namespace', () => names(w.latest()).includes(`${other}/in-other`));
    await kube.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other, labels: { [label]: 'no' } } }]);
    await eventually('the unselected namespace', () => w.latest().targets.length === 0);
  }, 60_000);

  it('keeps the last known targets while the API server is out of reach, says so, and relists when it is back', async () => {
    const port = Number(new URL(kube.world.server).port);
    const proxy = await startTcpProxy(port);
    try {
      await kube.apply([
        mirrorTarget('stays', { watchURL: 'https://a.example.com/', methods: ['*'] }),
        mirrorTarget('goes', { watchURL: 'https://b.example.com/', methods: ['*'] }),
      ]);
      const w = watch({ server: `https://127.0.0.1:${proxy.port}` });
      await eventually('both targets', () => w.latest().targets.length === 2);

      await proxy.cut();
      await eventually('the watch to notice', () => w.source.problems().length > 0, { timeoutMs: 45_000 });
      expect(names(w.latest())).toEqual([`${kube.namespace}/goes`, `${kube.namespace}/stays`]);
      expect(await watchUp(w)).toBe(0);
      expect(w.logs.some((l) => l.includes('RM_KUBERNETES_WATCH_FAILED'))).toBe(true);

      // Deleted while the watch cannot see it: only a fresh list can tell.
      await kube.remove([mirrorTarget('goes', {})]);
      await proxy.restore();
      await eventually('the relist', () => w.latest().targets.length === 1, { timeoutMs: 45_000 });
      expect(names(w.latest())).toEqual([`${kube.namespace}/stays`]);
      expect(w.source.problems()).toEqual([]);
      expect(await watchUp(w)).toBe(1);
      expect(w.logs.some((l) => l.includes('kubernetes watch restored'))).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});

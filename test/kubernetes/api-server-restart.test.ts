import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, GROUP, KIND, PLURAL } from '../../contract/mirror-target.ts';
import { createKubernetesMetrics } from '../../kubernetes/kubernetes-metrics.ts';
import { watchMirrorTargets, type TargetSource } from '../../kubernetes/target-source.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { applyObjects, deleteObjects, kubeConfigFor, parseManifests, waitForCrds, type Manifest } from '../../tools/stack/kube-apply.ts';
import { startKubeCluster, type KubeCluster } from '../../tools/stack/kube-cluster.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { eventually } from '../support/eventually.ts';

// The informers through a real kube-apiserver crash and restart (same etcd, same port): a cluster of this file's own, since
// restarting the run's shared one would break every other file.

const cleanup = new Cleanup();
let cluster: KubeCluster;
let source: TargetSource;
const target = (name: string): Manifest => ({ apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace: 'default' }, spec: { watchURL: `https://${name}.example.com/`, methods: ['*'] } });
const names = () => source.snapshot().targets.map((t) => t.name);

beforeAll(async () => {
  cluster = await startKubeCluster();
  cleanup.add(() => cluster.stop());
  const kc = kubeConfigFor(cluster, cluster.token);
  await applyObjects(kc, parseManifests(readFileSync(join(ROOT, 'crds/mirrortargets.requestmirror.io.yaml'), 'utf8')));
  await waitForCrds(kc, [`${PLURAL}.${GROUP}`]);
  await applyObjects(kc, [target('before')]);
  source = watchMirrorTargets({
    kubeConfig: kc,
    source: { namespaces: ['default'], statusIntervalMs: 2000 },
    defaultNamespace: 'default',
    secrets: true,
    logger: pino({ level: 'silent' }),
    metrics: createKubernetesMetrics(new Registry()),
    onChange: () => undefined,
    settleMs: 20,
  });
  cleanup.add(() => { source.stop(); });
}, 120_000);
afterAll(() => cleanup.run());

describe('MirrorTarget source across an API server restart', () => {
  it('keeps its targets while kube-apiserver crashes and restarts, then follows changes again', async () => {
    await eventually('the first target', () => names().includes('default/before'));
    const restarted = performance.now();
    await cluster.restartApiServer();
    const ready = performance.now();
    expect(names()).toEqual(['default/before']);
    const kc = kubeConfigFor(cluster, cluster.token);
    await applyObjects(kc, [target('after')]);
    await deleteObjects(kc, [target('before')]);
    await eventually('the changes made after the restart', () => names().join() === 'default/after', { timeoutMs: 60_000, intervalMs: 100 });
    process.stdout.write(
      `[measured] kube-apiserver restart took ${Math.round(ready - restarted)} ms; from ready to the informer applying a change: ${Math.round(performance.now() - ready)} ms\n`,
    );
    expect(source.problems()).toEqual([]);
  }, 120_000);
});

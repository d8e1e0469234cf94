import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL } from '../../contract/mirror-target.ts';
import { parseManifests, waitForCrds } from '../../tools/stack/kube-apply.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { useKube } from '../support/kube.ts';
import { intoNamespace, kubernetesExample as example } from '../support/kube-examples.ts';

// docs/install-kubernetes.md: every YAML block is an example file, embedded verbatim, and every example is accepted
// by the real API server (server-side dry run) once moved into this file's namespace. The Ingress and the
// MirrorTarget are also driven through Traefik in test/e2e/kubernetes.test.ts.

const DOC = readFileSync(join(ROOT, 'docs/install-kubernetes.md'), 'utf8');
const kube = useKube('docs');
let helmHome: string;

beforeAll(async () => {
  helmHome = mkdtempSync(join(tmpdir(), 'rm-helm-'));
  await kube.apply(parseManifests(readFileSync(join(ROOT, 'crds/mirrortargets.requestmirror.io.yaml'), 'utf8')));
  await waitForCrds(kube.kc, [`${PLURAL}.${GROUP}`]);
});
afterAll(() => {
  rmSync(helmHome, { recursive: true, force: true });
});

describe('docs/install-kubernetes.md', () => {
  it('embeds every YAML block verbatim from docs/examples/kubernetes/', () => {
    const blocks = [...DOC.matchAll(/(?:<!-- embed: (\S+) -->\n)?```([a-z]*)\n([\s\S]*?)```/g)];
    const yamlBlocks = blocks.filter(([, , lang]) => lang === 'yaml');
    expect(yamlBlocks.length).toBe(5);
    for (const [, path, , body] of yamlBlocks) {
      expect(path, `a YAML block without an embed marker:\n${body ?? ''}`).toBeDefined();
      expect(body, path).toBe(readFileSync(join(ROOT, path ?? ''), 'utf8'));
    }
  });

  it.each(['app-ingress.yaml', 'mirroring-ingressroute.yaml', 'mirror-target.yaml'])('%s is accepted by the API server', async (name) => {
    const objects = parseManifests(intoNamespace(example(name), kube.namespace));
    const stored = await kube.apply(objects, { dryRun: 'All' });
    expect(stored.map((o) => o.kind)).toEqual(objects.map((o) => o.kind));
  });

  it('the values.yaml example renders a chart the API server accepts', async () => {
    const { stdout } = await promisify(execFile)(
      process.env.HELM_BIN ?? 'helm',
      ['template', 'request-mirror', join(ROOT, 'charts/request-mirror'), '--namespace', kube.namespace, '-f', join(ROOT, 'docs/examples/kubernetes/values.yaml')],
      { env: { ...process.env, HELM_CACHE_HOME: join(helmHome, 'c'), HELM_CONFIG_HOME: join(helmHome, 'g'), HELM_DATA_HOME: join(helmHome, 'd') } },
    );
    const objects = parseManifests(stdout);
    const stored = await kube.apply(objects, { dryRun: 'All' });
    expect(stored).toHaveLength(objects.length);
    expect(stdout).toContain('nats://nats.nats.svc:4222');
  });
});

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseManifests, type Manifest } from '../../tools/stack/kube-apply.ts';
import { ROOT } from '../../tools/stack/stack.ts';

// The Helm chart as `helm template` renders it, for end-to-end tests that apply the chart's own objects (its RBAC,
// its Middleware) rather than hand-written copies that could drift from it.

/** Renders charts/request-mirror as release `request-mirror` in `namespace`; `args` are extra helm flags (`--set`). */
export async function renderChart(namespace: string, ...args: string[]): Promise<Manifest[]> {
  const home = mkdtempSync(join(tmpdir(), 'rm-helm-'));
  try {
    const { stdout } = await promisify(execFile)(
      process.env.HELM_BIN ?? 'helm',
      ['template', 'request-mirror', join(ROOT, 'charts/request-mirror'), '--namespace', namespace, ...args],
      { env: { ...process.env, HELM_CACHE_HOME: join(home, 'c'), HELM_CONFIG_HOME: join(home, 'g'), HELM_DATA_HOME: join(home, 'd') }, maxBuffer: 16 * 1024 * 1024 },
    );
    return parseManifests(stdout);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

export type ForwardAuthMiddleware = Manifest & { spec: { forwardAuth: { address: string; tls?: { caSecret?: string } } & Record<string, unknown> } };

/**
 * The chart's forwardAuth Middleware with only its `address` changed to `address`: the chart names the tap's Service
 * (`<release>-tap.<namespace>.svc`), which nothing resolves outside a cluster, where the tests' tap is a local process.
 */
export function chartMiddleware(objects: readonly Manifest[], address: string): ForwardAuthMiddleware {
  const middleware = objects.find((o) => o.kind === 'Middleware') as ForwardAuthMiddleware | undefined;
  if (!middleware) throw new Error('the chart rendered no Middleware');
  return { ...middleware, spec: { ...middleware.spec, forwardAuth: { ...middleware.spec.forwardAuth, address } } };
}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, GROUP, KIND, MirrorTargetSpec, PLURAL, VERSION } from '../../contract/mirror-target.ts';
import { parseManifests, waitForCrds, type Manifest } from '../../tools/stack/kube-apply.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { useKube } from '../support/kube.ts';

// The generated CRD on a real kube-apiserver: what it stores, what it refuses at apply time and how `kubectl get`
// shows it. The API server's answers are the ones `kubectl apply` prints.

const kube = useKube('crd');
const collection = () => `/apis/${GROUP}/${VERSION}/namespaces/${kube.namespace}/${PLURAL}`;
const crd = parseManifests(readFileSync(join(ROOT, 'crds/mirrortargets.requestmirror.io.yaml'), 'utf8'));

const target = (name: string, spec: Record<string, unknown>): Manifest & { spec: Record<string, unknown> } => ({
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name },
  spec,
});

/** The API server's refusal message for applying `object`; fails the test if it was accepted. */
async function refusal(object: Manifest): Promise<string> {
  try {
    await kube.apply([object]);
  } catch (error) {
    const e = error as { code?: number; body?: string };
    expect(e.code).toBe(422);
    return (JSON.parse(e.body ?? '{}') as { message?: string }).message ?? '';
  }
  throw new Error(`${object.metadata?.name ?? ''} was accepted`);
}

beforeAll(async () => {
  await kube.apply(crd);
  await waitForCrds(kube.kc, [`${PLURAL}.${GROUP}`]);
});

describe('MirrorTarget CRD', () => {
  it('stores a minimal object with exactly the defaults of the zod contract', async () => {
    const minimal = { watchURL: 'https://hooks.example.com/in', methods: ['POST'] };
    const [stored] = await kube.apply([target('minimal', minimal)]);
    expect((stored as { spec: unknown }).spec).toEqual(MirrorTargetSpec.parse(minimal));
  });

  it('stores every field the contract allows, Secret references included', async () => {
    const spec = {
      watchURL: 'http://audit.example.com:8080/events?x=1',
      methods: ['GET', 'POST'],
      hosts: ['*.example.com'],
      pathPrefixes: ['/api/'],
      cookieNames: ['session'],
      revealHeaders: ['authorization'],
      maxBodyBytes: 0,
      timeoutMs: 3000,
      connectTimeoutMs: 500,
      headersTimeoutMs: 1000,
      concurrency: 2,
      queue: { maxEvents: 10, maxBytes: 1024 },
      retry: { maxAttempts: 1, initialBackoffMs: 0, maxBackoffMs: 0, maxRetryAfterMs: 0 },
      circuitBreaker: { failureThreshold: 1, cooldownMs: 1 },
      secrets: [{ secretRef: { name: 'audit-signing', key: 'current' } }, { secretRef: { name: 'audit-signing', key: 'next' } }],
    };
    const [stored] = await kube.apply([target('everything', spec)]);
    expect((stored as { spec: unknown }).spec).toEqual(MirrorTargetSpec.parse(spec));
  });

  it.each([
    ['a lower-case method', { watchURL: 'https://h.example.com/', methods: ['post'] }, 'spec.methods[0]'],
    ['no method', { watchURL: 'https://h.example.com/', methods: [] }, 'spec.methods'],
    ['a zero concurrency', { watchURL: 'https://h.example.com/', methods: ['*'], concurrency: 0 }, 'spec.concurrency'],
    ['a path prefix without /', { watchURL: 'https://h.example.com/', methods: ['*'], pathPrefixes: ['api'] }, 'spec.pathPrefixes[0]'],
    ['a secret reference without key', { watchURL: 'https://h.example.com/', methods: ['*'], secrets: [{ secretRef: { name: 's' } }] }, 'spec.secrets[0].secretRef.key'],
    ['no watchURL', { methods: ['*'] }, 'spec.watchURL'],
  ])('refuses %s at apply time, naming the field', async (_what, spec, field) => {
    const message = await refusal(target('bad', spec));
    expect(message).toContain(field);
  });

  it('refuses a watchURL that is not http or https with the CEL rule message', async () => {
    const message = await refusal(target('bad-scheme', { watchURL: 'ftp://files.example.com/drop', methods: ['*'] }));
    expect(message).toContain('spec.watchURL: Invalid value');
    expect(message).toContain('must be an absolute http or https URL');
  });

  it('refuses a name that cannot label metrics (not a DNS label)', async () => {
    const message = await refusal(target('audit.v2', { watchURL: 'https://h.example.com/', methods: ['*'] }));
    expect(message).toContain('metadata.name');
    expect(message).toContain('must be a DNS label');
  });

  it('refuses a misspelt field, naming it: always with server-side apply, on create with strict validation', async () => {
    const typo = target('typo', { watchURL: 'https://h.example.com/', methods: ['*'], method: ['GET'] });
    // Server-side apply must build a typed patch, so it refuses any field the schema lacks (with a 500, not a 422).
    const applied = await kube.request('PATCH', `${collection()}/typo?fieldManager=test`, { body: typo, contentType: 'application/apply-patch+yaml' });
    expect(applied.status).toBe(500);
    expect((applied.body as { message: string }).message).toContain('.spec.method: field not declared in schema');
    // A plain create prunes it with a warning unless strict validation is asked for (kubectl's default since 1.27).
    const created = await kube.request('POST', `${collection()}?fieldValidation=Strict`, { body: typo });
    expect(created.status).toBe(400);
    expect((created.body as { message: string }).message).toContain('unknown field "spec.method"');
  });

  it('shows URL, methods, readiness and the last delivery outcome in `kubectl get` columns', async () => {
    await kube.apply([target('columns', { watchURL: 'https://columns.example.com/in', methods: ['GET', 'POST'] })]);
    const api = kube.kc.makeApiClient(CustomObjectsApi);
    await api.patchNamespacedCustomObjectStatus(
      {
        group: GROUP, version: VERSION, namespace: kube.namespace, plural: PLURAL, name: 'columns', fieldManager: 'test', force: true,
        body: {
          apiVersion: API_VERSION, kind: KIND, metadata: { name: 'columns' },
          status: {
            conditions: [{ type: 'Ready', status: 'False', reason: 'CircuitOpen', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z' }],
            lastDelivery: { outcome: 'timeout', time: '2026-01-01T00:00:00Z' },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    // What kubectl asks for: the server renders the printer columns as a Table.
    const res = await kube.request('GET', `${collection()}/columns`, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    const table = res.body as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(['Name', 'URL', 'Methods', 'Ready', 'Reason', 'Last delivery', 'Age']);
    expect(table.rows[0]?.cells.slice(0, 6)).toEqual(['columns', 'https://columns.example.com/in', '["GET","POST"]', 'False', 'CircuitOpen', 'timeout']);
  });
});

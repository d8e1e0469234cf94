import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../tools/stack/stack.ts';

// The install guide's manifests (docs/examples/kubernetes/) as tests apply them: the same text, moved into the test
// file's namespace. Nothing else is changed here; a test that must point a manifest elsewhere says so itself.

export function kubernetesExample(name: string): string {
  return readFileSync(join(ROOT, 'docs/examples/kubernetes', name), 'utf8');
}

/** The example with its namespaces (`shop`, `request-mirror`) and the Middleware reference moved to `namespace`. */
export function intoNamespace(yaml: string, namespace: string): string {
  return yaml
    .replaceAll('namespace: shop', `namespace: ${namespace}`)
    .replaceAll('namespace: request-mirror', `namespace: ${namespace}`)
    .replaceAll('request-mirror-request-mirror@kubernetescrd', `${namespace}-request-mirror@kubernetescrd`);
}

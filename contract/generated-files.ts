import { stringify } from 'yaml';
import { z } from 'zod';
import { RELOAD_BOUND_MS } from './config-file.ts';
import { ChartValues } from './chart-values.ts';
import { Config } from './config.ts';
import { mirrorTargetCrd } from './crd.ts';
import { MirrorEvent } from './event.ts';

// Files derived from the zod contract. `make generate` writes them; test/contract/generated-files.test.ts fails when
// a committed copy is stale.

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
};

const SCHEMA_BASE = 'https://request-mirror.dev/schemas';

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(Config, { io: 'input', target: 'draft-2020-12' }),
    $id: `${SCHEMA_BASE}/config.schema.json`,
    title: 'Request Mirror configuration',
  };
}

export function eventJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(MirrorEvent, { io: 'output', target: 'draft-2020-12' }),
    $id: `${SCHEMA_BASE}/event.schema.json`,
    title: 'Request Mirror event',
  };
}

export function generatedFiles(): Map<string, string> {
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return new Map([
    ['contract/schemas/config.schema.json', json(configJsonSchema())],
    ['contract/schemas/event.schema.json', json(eventJsonSchema())],
    ['docs/configuration.md', configurationDoc(configJsonSchema())],
    ['crds/mirrortargets.requestmirror.io.yaml', crdYaml()],
    // Helm installs a chart's crds/ before its templates (and never upgrades or deletes them).
    ['charts/request-mirror/crds/mirrortargets.requestmirror.io.yaml', crdYaml()],
    ['charts/request-mirror/values.schema.json', json(chartValuesSchema())],
    ['charts/request-mirror/README.md', chartReadme(chartValuesSchema())],
  ]);
}

export const CRD_HEADER = '# Generated from contract/mirror-target.ts by `make generate`; do not edit.\n';

function crdYaml(): string {
  return `${CRD_HEADER}${stringify(mirrorTargetCrd(), { lineWidth: 0 })}`;
}

export function chartValuesSchema(): Record<string, unknown> {
  // Helm validates values.schema.json as JSON Schema draft-07.
  return { ...z.toJSONSchema(ChartValues, { io: 'input', target: 'draft-7' }), title: 'request-mirror chart values' };
}

function chartReadme(schema: JsonSchema): string {
  const rows: string[] = [];
  walk(schema, '', rows);
  return [
    '# request-mirror Helm chart',
    '',
    '<!-- Generated from contract/chart-values.ts by `make generate`; do not edit. -->',
    '',
    'Installs the ingress-tap and the dispatcher, the `MirrorTarget` CRD, least-privilege RBAC, the services\' config as',
    'a ConfigMap and a Traefik forwardAuth `Middleware` (HTTP/2 over TLS to the tap by default). NATS is yours:',
    'point `nats.url` at it. How to install, attach and create targets: [docs/install-kubernetes.md](../../docs/install-kubernetes.md).',
    '`values.schema.json` (generated from the same source) refuses unknown keys and wrong types at `helm install`.',
    '',
    '| Value | Type | Default | Description |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

function configurationDoc(schema: JsonSchema): string {
  const rows: string[] = [];
  walk(schema, '', rows);
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from contract/config.ts by `make generate`; do not edit. -->',
    '',
    'Both services read one YAML file, given as `--config FILE` or `REQUEST_MIRROR_CONFIG`. It is validated at',
    'start-up, and on every change while running: a file that does not validate is reported and the previous',
    'configuration stays in force. A change is applied, or reported, within',
    `${RELOAD_BOUND_MS} ms, whatever else is written in the file's directory: only the file counts (what its path resolves`,
    "to and that file's contents), so a Kubernetes ConfigMap update (the `..data` symlink swapped to a new directory) is",
    'seen like an edit in place or an editor saving by rename. `make validate CONFIG=FILE` checks a file as both services do at start-up without',
    'starting anything; inside the image, `node dist/ingress-tap/main.js validate --config FILE` and',
    '`node dist/dispatcher/main.js validate --config FILE` check what each service checks.',
    'Environment: `NATS_URL` overrides `nats.url`; secrets are read from the env variables or files a target names.',
    '',
    'JSON Schema: [`contract/schemas/config.schema.json`](../contract/schemas/config.schema.json).',
    '',
    '| Field | Type | Default | Description |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

function walk(node: JsonSchema, path: string, rows: string[], required = false): void {
  if (path) {
    const note = required ? '**Required.** ' : '';
    rows.push(`| \`${path}\` | ${typeOf(node)} | ${defaultOf(node)} | ${note}${(node.description ?? '').replaceAll('|', '\\|')} |`);
  }
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    walk(child, path ? `${path}.${key}` : key, rows, node.required?.includes(key) === true && child.default === undefined);
  }
  for (const [key, child] of Object.entries(node.items?.properties ?? {})) {
    walk(child, `${path}[].${key}`, rows, node.items?.required?.includes(key) === true && child.default === undefined);
  }
}

function typeOf(node: JsonSchema): string {
  if (node.anyOf) return node.anyOf.map(typeOf).join(' or ');
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((e) => `\`${JSON.stringify(e)}\``).join(', ');
  if (node.type === 'array') return `list of ${node.items ? typeOf(node.items) : 'any'}`;
  if (node.type === 'object' && node.properties) return `object {${Object.keys(node.properties).join(', ')}}`;
  const t = Array.isArray(node.type) ? node.type.join(' or ') : (node.type ?? 'any');
  const range = node.minimum !== undefined ? ` ≥ ${node.minimum}` : '';
  return `${node.format === 'uri' ? 'URL' : t}${range}`;
}

function defaultOf(node: JsonSchema): string {
  if (node.default === undefined) return '';
  if (typeof node.default === 'object' && node.default !== null && Object.keys(node.default).length === 0 && !Array.isArray(node.default)) {
    return '';
  }
  return `\`${JSON.stringify(node.default)}\``;
}

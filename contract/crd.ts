import { z } from 'zod';
import { API_VERSION, GROUP, KIND, MirrorTargetSpec, MirrorTargetStatus, PLURAL, TARGET_NAME_PATTERN, VERSION } from './mirror-target.ts';

// The MirrorTarget CustomResourceDefinition, generated from the zod schemas. A CRD's openAPIV3Schema must be
// "structural" (every node typed, no additionalProperties next to properties, no $schema), so zod's OpenAPI 3.0
// output is trimmed to the keywords Kubernetes accepts. What a schema cannot say is written as CEL rules
// (x-kubernetes-validations), which the API server checks at apply time and reports with the field's path.

type Schema = Record<string, unknown>;

/** Keywords Kubernetes' structural schemas accept, among those zod emits. */
const KEPT = new Set(['type', 'description', 'default', 'properties', 'required', 'items', 'minimum', 'maximum', 'minItems',
  'maxItems', 'minLength', 'maxLength', 'pattern', 'format', 'enum']);
/** Formats the API server validates; zod's others (e.g. `starts_with`, beside an equivalent `pattern`) are dropped. */
const FORMATS = new Set(['uri', 'date-time']);

function structural(node: Schema): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (!KEPT.has(key)) continue;
    if (key === 'format' && !FORMATS.has(value as string)) continue;
    // int64 bounds are the API server's own; zod's ±2^53 bound says nothing more for a Kubernetes integer.
    if ((key === 'maximum' || key === 'minimum') && Math.abs(value as number) >= Number.MAX_SAFE_INTEGER) continue;
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as Record<string, Schema>).map(([k, v]) => [k, structural(v)]));
    } else if (key === 'items') {
      out[key] = structural(value as Schema);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function openApi(schema: z.ZodType, io: 'input' | 'output'): Schema {
  return structural(z.toJSONSchema(schema, { io, target: 'openapi-3.0' }));
}

export function mirrorTargetCrd(): Schema {
  const spec = openApi(MirrorTargetSpec, 'input');
  spec['x-kubernetes-validations'] = [
    {
      rule: "isURL(self.watchURL) && url(self.watchURL).getScheme() in ['http', 'https']",
      message: 'must be an absolute http or https URL',
      fieldPath: '.watchURL',
      reason: 'FieldValueInvalid',
    },
  ];
  const specFields = spec.properties as Record<string, Schema>;
  // CEL's cost budget needs a bound on the string it parses.
  specFields.watchURL = { ...specFields.watchURL, maxLength: 2048 };
  const status = openApi(MirrorTargetStatus, 'output');
  const statusFields = status.properties as Record<string, Schema>;
  // A default of [] on conditions would make every new object carry an empty status.
  const conditions = Object.fromEntries(Object.entries(statusFields.conditions ?? {}).filter(([key]) => key !== 'default'));
  // Conditions are a map keyed by type, as in every built-in status, so server-side apply merges them per type.
  statusFields.conditions = { ...conditions, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] };

  const ready = '.status.conditions[?(@.type=="Ready")]';
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      annotations: { 'requestmirror.io/generated-from': 'contract/mirror-target.ts (make generate); do not edit' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: KIND.toLowerCase(), shortNames: ['mt'], categories: ['request-mirror'] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'URL', type: 'string', jsonPath: '.spec.watchURL' },
            { name: 'Methods', type: 'string', jsonPath: '.spec.methods' },
            { name: 'Ready', type: 'string', jsonPath: `${ready}.status` },
            { name: 'Reason', type: 'string', jsonPath: `${ready}.reason` },
            { name: 'Last delivery', type: 'string', jsonPath: '.status.lastDelivery.outcome' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `${KIND} (${API_VERSION}): one webhook that receives the mirrored requests matching its filters.`,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status,
              },
              'x-kubernetes-validations': [
                {
                  rule: `self.metadata.name.matches('${TARGET_NAME_PATTERN}')`,
                  message: 'metadata.name must be a DNS label (at most 63 lower-case letters, digits and -): it names the target in metrics and logs',
                },
              ],
            },
          },
        },
      ],
    },
  };
}

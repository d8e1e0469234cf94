import { z } from 'zod';
import { Target } from './config.ts';

// The MirrorTarget custom resource: one webhook target per object, `metadata.name` its name, `spec` the config file's
// target with signing secrets taken from Kubernetes Secrets. crds/ and the chart's CRD are generated from these
// schemas (`make generate`), so the API server refuses at `kubectl apply` time what the services would refuse.

export const GROUP = 'requestmirror.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'MirrorTarget';
export const PLURAL = 'mirrortargets';

/** A DNS label, as Kubernetes names objects; a target's name labels metrics, so it must fit one. */
export const TARGET_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

export const SecretKeyRef = z
  .strictObject({
    secretRef: z
      .strictObject({
        name: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a Kubernetes object name')
          .max(253)
          .describe('Name of a Secret in the MirrorTarget\'s namespace.'),
        key: z
          .string()
          .regex(/^[-._a-zA-Z0-9]+$/, 'a Secret data key')
          .max(253)
          .describe('Key in that Secret whose value is the signing secret (`whsec_<base64>`).'),
      })
      .describe('A key of a Secret in the same namespace.'),
  })
  .describe('Where a signing secret comes from.');

export const MirrorTargetSpec = Target.omit({ name: true, secrets: true })
  .extend({
    secrets: z
      .array(SecretKeyRef)
      .default([])
      .describe(
        'Signing secrets; every one signs each delivery, so a receiver can rotate without a gap. A Secret update applies ' +
          'within seconds. Empty: unsigned.',
      ),
  })
  .describe('One webhook: the config file\'s target without `name` (the object\'s name) and with Secret references.');

export const ConditionType = z.enum(['Accepted', 'Ready']);

export const Condition = z.strictObject({
  type: ConditionType.describe('`Accepted`: spec and Secrets resolved. `Ready`: deliveries can succeed.'),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/).max(1024).describe('CamelCase reason, stable for automation.'),
  message: z.string().max(32_768).describe('What a person should know.'),
  observedGeneration: z.int().min(0).optional().describe('The `metadata.generation` this condition was computed for.'),
  lastTransitionTime: z.iso.datetime().describe('When `status` last changed.'),
});

export const MirrorTargetStatus = z
  .strictObject({
    observedGeneration: z.int().min(0).optional().describe('The `metadata.generation` the dispatcher last applied.'),
    conditions: z.array(Condition).default([]),
    lastDelivery: z
      .strictObject({
        outcome: z.string().max(64).describe('`delivered`, or the reason of the last failed attempt (`timeout`, `http_5xx`, `address_refused`, …).'),
        time: z.iso.datetime(),
      })
      .optional()
      .describe('The outcome of the most recent delivery attempt a dispatcher made.'),
  })
  .describe('Written by the dispatcher with server-side apply.');

export type MirrorTargetSpec = z.infer<typeof MirrorTargetSpec>;
export type MirrorTargetStatus = z.infer<typeof MirrorTargetStatus>;
export type Condition = z.infer<typeof Condition>;
export type SecretKeyRef = z.infer<typeof SecretKeyRef>;

/** The parts of a MirrorTarget object the services read. */
export interface MirrorTargetObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly generation?: number; readonly resourceVersion?: string };
  readonly spec?: unknown;
  readonly status?: unknown;
}

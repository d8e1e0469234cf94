import { z } from 'zod';
import { NetworkPolicy, Target } from './config.ts';

// The Helm chart's values (charts/request-mirror). The chart's values.schema.json and the values table in
// docs/install-kubernetes.md are generated from this schema (`make generate`); a test checks that values.yaml holds
// exactly these defaults. Resource figures come from `make bench` (docs/benchmarks.md): at 2,000 requests/s the tap
// used up to ~0.5 core and 265 MiB, 469 MiB with 256 concurrent 1 MiB uploads; the dispatcher up to 365 MiB, and it
// may hold `dispatcher.maxQueuedBytes` (256 MiB by default) of queued events on top of its baseline.

const quantity = z.union([z.string().regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/, 'a Kubernetes quantity such as 250m or 512Mi'), z.number()]);
const resourceList = z.strictObject({ cpu: quantity.optional(), memory: quantity.optional() });
const resources = (requests: { cpu: string; memory: string }, limits: { memory: string }) =>
  z
    .strictObject({ requests: resourceList.default(requests), limits: resourceList.default(limits) })
    .prefault({})
    .describe('Requests and limits. No CPU limit by default: throttling a process in the request path adds latency.');

const labels = z.record(z.string(), z.string());
/** A key of an existing Secret in the release namespace; `name` empty: not used. */
const secretKey = (key: string, what: string) =>
  z
    .strictObject({
      name: z.string().default('').describe('Name of an existing Secret in the release namespace; empty: none.'),
      key: z.string().min(1).default(key).describe('Key of the Secret holding it.'),
    })
    .prefault({})
    .describe(what);
const namespaceName = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a namespace name');

export const ChartValues = z
  .strictObject({
    image: z
      .strictObject({
        repository: z.string().min(1).default('request-mirror').describe('Image with both services (the repository\'s Dockerfile).'),
        tag: z.string().min(1).default('0.1.0').describe('Image tag.'),
        pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
      })
      .prefault({}),
    imagePullSecrets: z.array(z.strictObject({ name: z.string().min(1) })).default([]).describe('Secrets for pulling the image.'),
    nats: z
      .strictObject({
        url: z
          .string()
          .regex(/^(nats|tls):\/\/[^,\s]+(,\s*(nats|tls):\/\/[^,\s]+)*$/, 'nats://host:port, comma-separated for several')
          .default('nats://nats:4222')
          .describe('An existing NATS (e.g. the official NATS chart\'s `nats` Service); several URLs comma-separated.'),
        auth: z
          .strictObject({
            user: z.string().default('').describe('NATS user name (config `nats.auth.user`); its password comes from `passwordSecret`.'),
            passwordSecret: secretKey('password', 'The password of `user`, given to both services as env `NATS_PASSWORD`.'),
            tokenSecret: secretKey('token', 'A NATS token instead of a user, given to both services as env `NATS_TOKEN`.'),
            credsSecret: secretKey(
              'user.creds',
              'A user\'s `.creds` file (decentralized JWT auth) instead, mounted in both services at /etc/request-mirror/nats-creds/user.creds.',
            ),
            nkeySeedSecret: secretKey('user.nk', 'A user nkey seed instead, mounted in both services at /etc/request-mirror/nats-nkey/user.nk.'),
          })
          .prefault({})
          .describe(
            'Credentials for a NATS server that requires them (docs/scaling.md, "Connecting to a secured NATS"): `user` with `passwordSecret`, `tokenSecret`, `credsSecret` or `nkeySeedSecret`.',
          ),
        tls: z
          .strictObject({
            enabled: z.boolean().default(false).describe('Connect to NATS over TLS (config `nats.tls`); without `secretName`, verified against the system CAs.'),
            secretName: z
              .string()
              .default('')
              .describe('A Secret mounted at /etc/request-mirror/nats-tls in both services: `ca.crt`, the CA that issued the server\'s certificate, and with `clientCertificate` also `tls.crt` and `tls.key`.'),
            clientCertificate: z.boolean().default(false).describe('Present `tls.crt` and `tls.key` of `secretName` to a server that verifies clients (mutual TLS).'),
          })
          .prefault({})
          .describe('TLS to NATS (config `nats.tls`); a changed Secret is read when the pods restart.'),
      })
      .prefault({}),
    tap: z
      .strictObject({
        replicas: z.int().min(1).default(2).describe('ingress-tap pods. forwardAuth fails closed (Traefik answers 500 when no tap answers): keep at least 2.'),
        podDisruptionBudget: z
          .strictObject({ enabled: z.boolean().default(true), minAvailable: z.int().min(0).default(1) })
          .prefault({})
          .describe('Keeps `minAvailable` taps up through voluntary disruptions (node drains).'),
        tls: z
          .strictObject({
            enabled: z.boolean().default(true).describe('Serve forwardAuth over HTTPS so Traefik speaks HTTP/2 to the tap (see docs/install-traefik.md).'),
            secretName: z
              .string()
              .default('')
              .describe('A `kubernetes.io/tls` Secret with `tls.crt`, `tls.key` and `ca.crt`; empty: the chart creates a self-signed one (kept across upgrades).'),
          })
          .prefault({}),
        resources: resources({ cpu: '500m', memory: '320Mi' }, { memory: '640Mi' }),
        nodeSelector: labels.default({}),
        tolerations: z.array(z.record(z.string(), z.unknown())).default([]),
        topologySpread: z.boolean().default(true).describe('Spread the taps across nodes (maxSkew 1, best effort).'),
      })
      .prefault({}),
    dispatcher: z
      .strictObject({
        replicas: z.int().min(1).default(1).describe('Dispatcher pods; they share the events through a NATS queue group.'),
        resources: resources({ cpu: '250m', memory: '384Mi' }, { memory: '768Mi' }),
        nodeSelector: labels.default({}),
        tolerations: z.array(z.record(z.string(), z.unknown())).default([]),
        network: NetworkPolicy.describe('The dispatcher\'s address policy (config `dispatcher.network`).'),
      })
      .prefault({}),
    watch: z
      .strictObject({
        namespaces: z.array(namespaceName).default([]).describe('Namespaces whose MirrorTargets are read; empty: the release namespace. A Role is created in each.'),
        namespaceSelector: z
          .string()
          .default('')
          .describe('Label selector choosing namespaces instead (e.g. `request-mirror=enabled`); uses a ClusterRole.'),
      })
      .prefault({}),
    targets: z.array(Target).default([]).describe('Targets in the config file, besides MirrorTargets (secrets from env or files you mount).'),
    middleware: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Create the Traefik forwardAuth `Middleware` that Ingresses reference. It sets `trustForwardHeader: true`, so an event\'s `clientIp` is the client Traefik\'s entrypoint believes in: list your load balancer\'s addresses in the entrypoint\'s `forwardedHeaders.trustedIPs`, or every event names the balancer (docs/install-kubernetes.md, "Client addresses").',
          ),
        name: z.string().default('request-mirror').describe('Its name; reference it as `<release namespace>-<name>@kubernetescrd`.'),
        forwardBody: z.boolean().default(false).describe('Send request bodies to the tap (Traefik answers 401 above `maxBodySize`).'),
        maxBodySize: z.int().min(-1).default(1048576).describe('With `forwardBody`, the largest body Traefik forwards.'),
      })
      .prefault({}),
    serviceMonitor: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Create Prometheus Operator ServiceMonitors for both services\' /metrics.'),
        interval: z.string().default('30s'),
        labels: labels.default({}).describe('Labels your Prometheus selects ServiceMonitors by.'),
      })
      .prefault({}),
    networkPolicy: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Allow only Traefik into the tap and Prometheus into the admin ports.'),
        traefikNamespaceSelector: labels
          .default({ 'kubernetes.io/metadata.name': 'traefik' })
          .describe('Labels of the namespace Traefik runs in.'),
        traefikPodSelector: labels.default({ 'app.kubernetes.io/name': 'traefik' }).describe('Labels of the Traefik pods.'),
        metricsNamespaceSelector: labels.default({}).describe('Namespaces allowed to scrape the admin ports; empty: any.'),
      })
      .prefault({}),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  })
  .describe('Values of the request-mirror Helm chart.');

export type ChartValues = z.infer<typeof ChartValues>;

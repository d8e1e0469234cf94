import { z } from 'zod';
import { portClashes } from './listener-ports.ts';

// The one configuration file both services read. Defaults live here and nowhere else; docs/configuration.md and
// contract/schemas/config.schema.json are generated from this file (`make generate`) and checked for drift by a test.

const KiB = 1024;
const MiB = 1024 * KiB;

const port = z.int().min(0).max(65535);

const address = (defaultPort: number) => ({
  host: z.string().min(1).default('0.0.0.0').describe('Interface to bind.'),
  port: port.default(defaultPort).describe('TCP port; 0 picks a free one.'),
});

const listen = (defaultPort: number, what: string) => z.strictObject(address(defaultPort)).prefault({}).describe(what);

export const ListenerTls = z
  .strictObject({
    certFile: z.string().min(1).describe('PEM certificate (chain) the listener presents; its SAN must name the address Traefik dials.'),
    keyFile: z.string().min(1).describe('PEM private key of that certificate.'),
  })
  .describe('Serve HTTPS, HTTP/2 or HTTP/1.1 by ALPN, instead of plain HTTP/1.1. Read at start-up only.');

/**
 * A listener Traefik calls: plain HTTP/1.1, or HTTPS with HTTP/2 when `tls` is set. `whyTls` says why this
 * listener would want TLS (the reasons differ: connection reuse for forwardAuth, any method for Mirroring).
 */
const tapListen = (defaultPort: number, what: string, whyTls: string) =>
  z
    .strictObject({ ...address(defaultPort), tls: ListenerTls.describe(`${ListenerTls.description ?? ''} ${whyTls}`).optional() })
    .prefault({})
    .describe(what);

/** An HTTP method token, or `*` for every method. */
const method = z
  .string()
  .regex(/^(\*|[A-Z][A-Z0-9_-]*)$/, 'an upper-case HTTP method such as GET, or * for every method');

/** `example.com` matches that host exactly; `*.example.com` matches any subdomain of it. */
const hostPattern = z
  .string()
  .regex(/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'a lower-case host name, optionally starting with *.');

const headerName = z
  .string()
  .regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, 'a lower-case HTTP header name');

/** The entries of a comma-separated `nats.url`, trimmed, empty ones left out. */
export function natsServerList(url: string): string[] {
  return url
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Why a `nats.url` value (or `NATS_URL`) names no server the NATS client can dial: one message per bad entry, or
 * `name at least one server`; empty when every entry is good. The client drops any scheme, reads `host[:port]`
 * (port 4222 by default) and ignores the rest, so `http//nats:4222` would be dialled as the host `http`, and
 * `nats:99999` or `a b` make it throw only once the service runs.
 */
export function natsUrlProblems(url: string): string[] {
  const servers = natsServerList(url);
  if (servers.length === 0) return ['name at least one server'];
  return servers.filter((entry) => !isServerAddress(entry)).map((entry) => `${JSON.stringify(entry)} is not a server address: write [nats://]host[:port], e.g. nats://nats:4222`);
}

function isServerAddress(entry: string): boolean {
  try {
    const url = new URL(entry.includes('://') ? entry : `nats://${entry}`);
    return url.hostname !== '' && (url.pathname === '' || url.pathname === '/') && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

/** Headers that never leave the tap unless a target names them in `revealHeaders`. */
export const REDACTED_BY_DEFAULT: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];

/** `{ env }` or `{ file }`: where one secret comes from; `what` names it in the description and the error. */
const secretSource = (what: string, note = '') =>
  z
    .union([
      z.strictObject({ env: z.string().min(1).describe('Name of an environment variable holding the secret.') }),
      z.strictObject({ file: z.string().min(1).describe('Path of a file holding the secret (trailing newline ignored).') }),
    ], { error: `${what} source: { env: VARIABLE } or { file: PATH }, exactly one of them` })
    .describe(`Where ${what} comes from.${note}`);

export const SecretSource = secretSource('a signing secret', ' Standard Webhooks secrets look like `whsec_<base64>`.');

// The names are nats-server's own (`authorization { user, password }`, `authorization { token }`), so a user can copy
// them from the server's config; the secret itself never sits in this file.
export const NatsAuth = z
  .union([
    z.strictObject({
      user: z.string().min(1).describe('User name, as in the server\'s `authorization { user }` or one of its `users`.'),
      password: secretSource('the password of `user`'),
    }),
    z.strictObject({ token: secretSource('the token, as in the server\'s `authorization { token }`') }),
    z.strictObject({
      credsFile: z
        .string()
        .min(1)
        .describe('Path of a user\'s `.creds` file (its JWT and nkey seed, as `nsc generate creds` writes it), for a server in operator (JWT) mode.'),
    }),
    z.strictObject({
      nkeySeedFile: z
        .string()
        .min(1)
        .describe('Path of a file holding a user nkey seed (`SU...`), for a server that lists the user\'s public key: `authorization { users: [ { nkey: U... } ] }`.'),
    }),
  ], {
    error: 'NATS credentials: { user: NAME, password: { env | file } }, { token: { env | file } }, { credsFile: PATH } or { nkeySeedFile: PATH }, exactly one of them',
  })
  .describe(
    'Credentials for a NATS server that requires them: `{ user: NAME, password: SECRET }`, `{ token: SECRET }`, ' +
      '`{ credsFile: PATH }` (decentralized JWT auth) or `{ nkeySeedFile: PATH }`, where a ' +
      'SECRET is `{ env: VARIABLE }` or `{ file: PATH }` (a trailing newline is ignored). Read once at start-up (a ' +
      'missing variable or file, or a creds or seed file that is not one, stops the service with RM_SECRET_UNAVAILABLE); like every `nats` setting, a change ' +
      'takes effect at the next restart. Credentials in `nats.url` (`nats://user:pass@host`) are not used by the client.',
  );

export const NatsTls = z
  .strictObject({
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe('PEM certificate(s) of the CA that signed the server\'s certificate (a private CA); absent: the system CAs.'),
    certFile: z
      .string()
      .min(1)
      .optional()
      .describe('PEM client certificate, for a server that verifies clients (`tls { verify: true }`, mutual TLS); needs `keyFile`.'),
    keyFile: z.string().min(1).optional().describe('PEM private key of `certFile`.'),
  })
  .check((ctx) => {
    if ((ctx.value.certFile === undefined) !== (ctx.value.keyFile === undefined)) {
      ctx.issues.push({ code: 'custom', message: 'set certFile and keyFile together', path: [ctx.value.certFile === undefined ? 'certFile' : 'keyFile'], input: ctx.value });
    }
  })
  .describe(
    'Connect to NATS over TLS and verify the server\'s certificate against the host name in `nats.url`; a server without ' +
      'TLS is refused. The files are read once at start-up (a missing or non-PEM file stops the service with ' +
      'RM_NATS_TLS_UNUSABLE). Absent: TLS only when the server offers or requires it, verified against the system CAs.',
  );

export const RetryPolicy = z
  .strictObject({
    maxAttempts: z.int().min(1).max(10).default(3).describe('Attempts in all, the first included; 1 disables retries.'),
    initialBackoffMs: z.int().min(0).default(200).describe('Backoff before the second attempt; doubles each time, with full jitter.'),
    maxBackoffMs: z.int().min(0).default(5000).describe('Cap on one backoff.'),
    maxRetryAfterMs: z.int().min(0).default(30_000).describe('A `Retry-After` longer than this is cut to it.'),
  })
  .prefault({});

export const Target = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a DNS-label-like name: lower-case letters, digits and -')
      .describe('Unique name; it labels metrics and logs.'),
    watchURL: z.url({ protocol: /^https?$/, error: 'an absolute http:// or https:// URL' }).describe('Where events are POSTed.'),
    methods: z
      .array(method)
      .min(1)
      .describe('Request methods to mirror to this target, upper-case as HTTP spells them (`GET`, `POST`; `get` is refused); `*` for all.'),
    hosts: z
      .array(hostPattern)
      .default([])
      .describe(
        'Only requests to these hosts, written lower-case without a port (the request\'s host is compared lower-cased, without its port). ' +
          '`shop.example.com` matches that host only; `*.example.com` matches its subdomains at any depth (`a.example.com`, `a.b.example.com`) ' +
          'but not `example.com` itself: list both to get both. Empty means every host.',
      ),
    pathPrefixes: z
      .array(z.string().startsWith('/'))
      .default([])
      .describe('Only requests whose path starts with one of these; empty means every path.'),
    cookieNames: z
      .array(z.string().min(1))
      .default([])
      .describe('Cookies this target may receive. All other cookies never leave the tap.'),
    revealHeaders: z
      .array(headerName)
      .default([])
      .describe(
        `Redacted-by-default headers (${REDACTED_BY_DEFAULT.map((h) => `\`${h}\``).join(', ')}) this target may receive verbatim.`,
      ),
    maxBodyBytes: z
      .int()
      .min(0)
      .default(MiB)
      .describe('Body bytes sent to this target (at most what the tap captured); 0 leaves the body out.'),
    timeoutMs: z.int().min(1).default(10_000).describe('Total time for one delivery attempt.'),
    connectTimeoutMs: z.int().min(1).default(2000).describe('Time to establish the TCP (and TLS) connection.'),
    headersTimeoutMs: z.int().min(1).default(5000).describe('Time from sending the request to the response headers.'),
    concurrency: z.int().min(1).max(1024).default(8).describe('Deliveries in flight to this target at once.'),
    queue: z
      .strictObject({
        maxEvents: z.int().min(1).default(1000).describe('Events waiting for this target; when full, new ones are dropped.'),
        maxBytes: z.int().min(1).default(64 * MiB).describe('Bytes of events waiting for this target.'),
      })
      .prefault({}),
    retry: RetryPolicy,
    circuitBreaker: z
      .strictObject({
        failureThreshold: z.int().min(1).default(5).describe('Consecutive failed deliveries that open the circuit.'),
        cooldownMs: z.int().min(1).default(10_000).describe('Time the circuit stays open before one trial delivery.'),
      })
      .prefault({}),
    secrets: z
      .array(SecretSource)
      .default([])
      .describe('Signing secrets; every one signs each delivery, so a receiver can rotate without a gap. Empty: unsigned.'),
  })
  .describe('One webhook.');

export const NetworkPolicy = z
  .strictObject({
    allowLoopback: z
      .boolean()
      .default(false)
      .describe(
        "Allow targets that resolve to this host: 127.0.0.0/8, ::1, 0.0.0.0/8, ::, the host's own interface addresses, in any spelling (IPv4-mapped, NAT64, 6to4...).",
      ),
    allowLinkLocal: z
      .boolean()
      .default(false)
      .describe('Allow targets that resolve to link-local addresses, 169.254.0.0/16 (cloud metadata) and fe80::/10, in any spelling.'),
    allowCIDRs: z
      .array(z.string())
      .default([])
      .describe('Addresses always allowed, checked before the deny list; the IPv4 address an IPv6 form carries is checked too.'),
    denyCIDRs: z.array(z.string()).default([]).describe('Addresses never dialled, nor any IPv6 form carrying them.'),
  })
  .prefault({})
  .describe('Which addresses the dispatcher may connect to, checked against the address actually dialled.');

export const Config = z
  .strictObject({
    nats: z
      .strictObject({
        url: z
          .string()
          .min(1)
          .default('nats://127.0.0.1:4222')
          .check((ctx) => {
            for (const message of natsUrlProblems(ctx.value)) ctx.issues.push({ code: 'custom', message, input: ctx.value });
          })
          .describe(
            'NATS server URL(s), comma-separated (`nats://a:4222,nats://b:4222`): the seeds of a cluster. Once connected, the ' +
              'servers the cluster announces are used as well, so one reachable seed is enough. Env `NATS_URL` overrides.',
          ),
        pingIntervalMs: z
          .int()
          .min(100)
          .default(2000)
          .describe(
            'How often the client pings its server. A server that stops answering (hung, or cut off by the network, where TCP ' +
              'says nothing) is given up when `maxPingsOutstanding` pings are still unanswered as the next one falls due, about ' +
              '(maxPingsOutstanding + 1) x pingIntervalMs after it went silent, and the client moves to another one.',
          ),
        maxPingsOutstanding: z.int().min(1).default(2).describe('Unanswered pings after which the server is given up.'),
        connectTimeoutMs: z
          .int()
          .min(100)
          .default(2000)
          .describe(
            'Time allowed to connect to a server and get its greeting. A frozen server still accepts TCP connections (the ' +
              'kernel answers for it) but never greets; without this bound a reconnect could wait on it for 20 s.',
          ),
        reconnectTimeWaitMs: z
          .int()
          .min(0)
          .default(500)
          .describe('Least time between two connection attempts to the same server; a server not tried yet is dialled at once.'),
        subjectPrefix: z
          .string()
          .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'dot-separated NATS subject tokens')
          .default('request-mirror')
          .describe('Events are published to `<subjectPrefix>.requests.<METHOD>`.'),
        queueGroup: z.string().min(1).default('request-mirror-dispatchers').describe('Queue group the dispatchers share.'),
        auth: NatsAuth.optional(),
        tls: NatsTls.optional(),
      })
      .prefault({}),
    tap: z
      .strictObject({
        forwardAuth: tapListen(
          8080,
          'Listener for Traefik forwardAuth.',
          'Recommended: Traefik keeps only 2 idle HTTP/1.1 connections per host, but multiplexes every call over one ' +
            'HTTP/2 connection.',
        ),
        mirror: tapListen(
          8081,
          'Listener for Traefik Mirroring (the request it receives is the original).',
          'Recommended when clients send methods outside Node.js\'s `http.METHODS` (`BREW`, ...): over HTTP/1.1 the ' +
            'tap answers 200 but cannot parse such a request, so publishes nothing (counted as rejected input); over ' +
            'HTTP/2 it publishes any method token (docs/install-traefik.md, "HTTPS to the tap (any method)").',
        ),
        plugin: z
          .strictObject({
            ...address(8082),
            maxBatchBytes: z
              .int()
              .min(1)
              .default(64 * MiB)
              .describe('Largest batch a plugin may POST; a larger one is refused with 413 and counted by the plugin as rejected.'),
          })
          .prefault({})
          .describe('Listener for the Request Mirror Traefik plugin, which POSTs batches of request snapshots to `/v1/snapshots`.'),
        admin: listen(9080, 'Listener for /healthz, /readyz and /metrics.'),
        maxBodyBytes: z
          .int()
          .min(0)
          .default(MiB)
          .describe('Body bytes captured per request; the rest is counted, not kept, and the event marked truncated.'),
        keepAliveTimeoutMs: z
          .int()
          .min(1)
          .default(95_000)
          .describe("Idle keep-alive; above Traefik's 90 s idle pool so Traefik never reuses a connection the tap closed."),
        maxPendingPublishBytes: z
          .int()
          .min(1)
          .default(64 * MiB)
          .describe('Bytes of events waiting to be flushed to NATS; beyond this events are dropped and counted.'),
        shutdownTimeoutMs: z
          .int()
          .min(1)
          .default(10_000)
          .describe('Bound on graceful shutdown, in ms. Past it the tap exits 1, and logs as in doubt the events NATS had not yet confirmed.'),
      })
      .check((ctx) => {
        const tap = ctx.value;
        const listeners = (['forwardAuth', 'mirror', 'plugin', 'admin'] as const).map((name) => [name, tap[name]] as const);
        for (const { name, listener, takenBy, takenByHost } of portClashes(listeners)) {
          ctx.issues.push({
            code: 'custom',
            message: `port ${listener.port} on host ${listener.host} is also tap.${takenBy}'s (host ${takenByHost}); the tap could not open both: give each listener its own port`,
            path: [name, 'port'],
            input: listener.port,
          });
        }
      })
      .prefault({})
      .describe(
        'The ingress-tap. Its four listeners need a port each, unless their hosts do not overlap (`0.0.0.0` and `::` ' +
          'take the port on every address; port 0 picks a free one).',
      ),
    dispatcher: z
      .strictObject({
        admin: listen(9081, 'Listener for /healthz, /readyz and /metrics.'),
        maxQueuedBytes: z
          .int()
          .min(1)
          .default(256 * MiB)
          .describe('Ceiling on bytes queued across all targets; beyond it new events are dropped and counted.'),
        responseBodyLimitBytes: z.int().min(0).default(4 * KiB).describe('Bytes of a webhook response read (for logs).'),
        network: NetworkPolicy,
        shutdownTimeoutMs: z.int().min(1).default(15_000).describe('Bound on draining in-flight deliveries at SIGTERM.'),
      })
      .prefault({}),
    kubernetes: z
      .strictObject({
        namespaces: z
          .array(z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a namespace name'))
          .default([])
          .describe(
            'Namespaces whose `MirrorTarget`s are targets. Empty, with no `namespaceSelector`: the namespace the pod runs in ' +
              "(outside a cluster, the kubeconfig context's).",
          ),
        namespaceSelector: z
          .string()
          .min(1)
          .optional()
          .describe('Label selector (e.g. `request-mirror=enabled`) choosing the namespaces instead; needs a ClusterRole.'),
        statusIntervalMs: z
          .int()
          .min(100)
          .default(2000)
          .describe("How often the dispatcher compares each target's state with its `status` and writes what changed."),
      })
      .check((ctx) => {
        if (ctx.value.namespaceSelector !== undefined && ctx.value.namespaces.length > 0) {
          ctx.issues.push({ code: 'custom', message: 'set namespaces or namespaceSelector, not both', path: ['namespaceSelector'], input: ctx.value });
        }
      })
      .optional()
      .describe(
        'Also take targets from `MirrorTarget` custom resources (requestmirror.io/v1alpha1), watched through the Kubernetes ' +
          'API: in cluster with the pod\'s service account, outside with `KUBECONFIG`. Absent: no Kubernetes API access.',
      ),
    targets: z
      .array(Target)
      .default([])
      .describe('Webhooks; each event goes to every target whose filters match.')
      .check((ctx) => {
        const seen = new Set<string>();
        ctx.value.forEach((t, i) => {
          if (seen.has(t.name)) {
            ctx.issues.push({ code: 'custom', message: `duplicate target name "${t.name}"`, path: [i, 'name'], input: t.name });
          }
          seen.add(t.name);
        });
      }),
  })
  .describe('Request Mirror configuration, read by the ingress-tap and the dispatcher.');

export type Config = z.infer<typeof Config>;
export type ConfigInput = z.input<typeof Config>;
export type Target = z.infer<typeof Target>;
export type SecretSource = z.infer<typeof SecretSource>;
export type RetryPolicy = z.infer<typeof RetryPolicy>;
export type NetworkPolicy = z.infer<typeof NetworkPolicy>;
export type ListenerTls = z.infer<typeof ListenerTls>;
export type NatsAuth = z.infer<typeof NatsAuth>;
export type NatsTls = z.infer<typeof NatsTls>;
export type KubernetesSource = NonNullable<Config['kubernetes']>;

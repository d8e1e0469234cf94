import { constants } from 'node:http2';
import { connect as natsConnect } from '@nats-io/transport-node';
import { makeCertificate } from '../../test/support/tls.ts';
import { localizeExample, readExample } from '../stack/examples.ts';
import { startHttpReceiver } from '../stack/http-receiver.ts';
import { waitUntil } from '../stack/process.ts';
import { startStack, type Stack } from '../stack/stack.ts';
import { startCountingUpstream, type CountingUpstream } from './upstream.ts';
import { describeCase, draw, eventCase, requestCase, type EventCase, type HttpCase, type RequestCase } from './inputs.ts';
import { memoryFigures, watchMemory, type MemoryFigures } from './memory.ts';
import { byLabel, readMetrics, sum } from './metrics.ts';
import { createSenders, type Outcome } from './senders.ts';

// One fuzz run: the whole product on loopback (NATS, the tap with its forwardAuth listener on TLS, the dispatcher,
// Traefik with the documented forwardAuth-over-HTTP/2 and Mirroring routers, an upstream and one webhook), generated
// requests on six routes plus raw bytes, and generated events published next to the tap's. At the end the services'
// own counters are read and every figure is checked.

export interface FuzzOptions {
  readonly requests: number;
  readonly events: number;
  readonly seed: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** The whole run (start-up excluded) must finish within this. */
  readonly maxSeconds: number;
  /** RSS of the last third may exceed the first third's by this fraction at most (both after the warm-up). */
  readonly rssTolerance: number;
  /** Share of the requests sent before memory is judged (it is still sampled and printed). */
  readonly warmUpFraction: number;
  /** Runs shorter than this report RSS but do not judge it (too few samples past warm-up). */
  readonly rssMinSeconds: number;
  readonly log: (line: string) => void;
}

export interface Failure {
  readonly what: string;
  /** Case index and its input, when one case caused it. */
  readonly index?: number;
  readonly input?: string;
}

export interface FuzzReport {
  readonly seed: number;
  readonly seconds: number;
  readonly requests: {
    readonly sent: number;
    readonly byRoute: Record<string, number>;
    readonly refusedByClient: number;
    /** Answers from the tap (straight to its listeners) that were not 2xx: must be 0. */
    readonly tapNon2xx: number;
    /** Traefik's answers by status, for requests through its routers. */
    readonly traefikStatuses: Record<string, number>;
    /** Non-2xx answers through Traefik that came from the tap, or a 5xx (Traefik's answer when the tap fails it). */
    readonly traefikNon2xxFromTap: number;
    /** 200s straight from the tap without an event id: requests Node's parser refused before the tap saw them. */
    readonly answeredWithoutEvent: number;
    readonly rawExchanges: number;
    readonly rawNon200: number;
    /** forwardAuth-router requests the upstream got, and those Node's parser refused there. */
    readonly upstreamLetThrough: number;
    readonly upstreamRefused: number;
  };
  readonly crashes: Record<string, number | string>;
  readonly rss: Record<string, MemoryFigures>;
  readonly tap: {
    readonly received: Record<string, number>;
    readonly published: number;
    readonly dropped: Record<string, number>;
    readonly skipped: number;
    readonly rejectedInput: Record<string, number>;
    /** Connections the tap accepted, by `listener protocol` (Traefik's forwardAuth calls arrive as `forwardAuth h2`). */
    readonly connections: Record<string, number>;
    /** received − published − dropped − skipped: must be 0. */
    readonly unaccounted: number;
    /** forwardAuth calls the tap answered − (its answers seen straight + requests Traefik let through to the upstream). */
    readonly forwardAuthNotLetThrough: number;
  };
  readonly dispatcher: {
    readonly messages: number;
    readonly received: number;
    readonly delivered: number;
    readonly dropped: Record<string, number>;
    readonly pending: number;
    readonly invalid: number;
    readonly invalidExpected: number;
    readonly webhookReceived: number;
    /** messages − received − invalid: events that reached NATS and the dispatcher never counted. */
    readonly unaccountedMessages: number;
    /** received − delivered − dropped − pending. */
    readonly unaccountedEvents: number;
  };
  readonly failures: readonly Failure[];
}

const FORWARD_AUTH_HOST = 'app.localhost';
const MIRROR_HOST = 'shop.localhost';
const TARGET = 'fuzz';
const MAX_FAILURES_KEPT = 20;
const EVENT_BATCH = 100;

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const cert = makeCertificate(['DNS:ingress-tap']);
  let webhookReceived = 0;
  const webhook = await startHttpReceiver((_req, res) => {
    webhookReceived++;
    res.writeHead(204).end();
  });
  const upstream = await startCountingUpstream(FORWARD_AUTH_HOST);
  let stack: Stack | undefined;
  try {
    stack = await startStack({
      tapForwardAuthTls: { certFile: cert.certFile, keyFile: cert.keyFile },
      // A catch-all target: every event the tap publishes is one the dispatcher must account for.
      targets: () => [{ name: TARGET, watchURL: `${webhook.url}/events`, methods: ['*'], cookieNames: ['session', 'a', '__proto__'], revealHeaders: ['authorization'], concurrency: 32 }],
      traefik: (b) => {
        const local = (name: string) => localizeExample(readExample(name), b).replaceAll(b.upstreamUrl, upstream.url);
        return {
          files: { 'forward-auth-h2.yml': local('traefik/forward-auth-h2.yml').replace('/etc/traefik/request-mirror/ca.pem', cert.certFile), 'mirroring.yml': local('traefik/mirroring.yml') },
          routers: ['app', 'shop'],
        };
      },
    });
    // The webhook records every request it gets; only the count matters here.
    const trim = setInterval(() => webhook.requests.splice(0), 1000);
    try {
      return await fuzz(stack, o, cert.ca, upstream, () => webhookReceived);
    } finally {
      clearInterval(trim);
    }
  } finally {
    await stack?.close();
    await upstream.close();
    await webhook.close();
    cert.remove();
  }
}

async function fuzz(stack: Stack, o: FuzzOptions, ca: string, upstream: CountingUpstream, webhookReceived: () => number): Promise<FuzzReport> {
  const traefik = stack.traefik;
  if (!traefik) throw new Error('no Traefik');
  const failures: Failure[] = [];
  const fail = (f: Failure) => {
    if (failures.length < MAX_FAILURES_KEPT) failures.push(f);
    if (failures.length <= 3) o.log(`FAILURE ${f.what}${f.index === undefined ? '' : ` (case ${f.index}, seed ${o.seed})`}${f.input ? `\n  input: ${f.input.slice(0, 4000)}` : ''}`);
  };
  const senders = createSenders(
    {
      traefikUrl: traefik.url,
      tapForwardAuthTlsUrl: stack.backends.tapForwardAuthUrl.replace(/\/$/, ''),
      tapMirrorUrl: stack.backends.tapMirrorUrl,
      tapMirrorPort: Number(new URL(stack.backends.tapMirrorUrl).port),
      ca,
      forwardAuthHost: FORWARD_AUTH_HOST,
      mirrorHost: MIRROR_HOST,
    },
    o.concurrency,
  );
  const nc = await natsConnect({ servers: stack.nats.url });
  const started = performance.now();
  const deadline = Date.now() + o.maxSeconds * 1000;

  const byRoute: Record<string, number> = {};
  const traefikStatuses: Record<string, number> = {};
  let sent = 0;
  let refusedByClient = 0;
  let tapNon2xx = 0;
  let traefikNon2xxFromTap = 0;
  let rawExchanges = 0;
  let rawNon200 = 0;
  let directForwardAuthAnswers = 0;
  let answeredWithoutEvent = 0;
  let next = 0;
  let done = 0;
  let lastProgress = Date.now();
  const memory = watchMemory([
    { name: 'ingress-tap', pid: () => stack.tap.pid, adminUrl: stack.tapAdminUrl },
    { name: 'dispatcher', pid: () => stack.dispatcher.pid, adminUrl: stack.dispatcherAdminUrl },
  ], () => done >= o.requests * o.warmUpFraction);

  const judge = (index: number, c: HttpCase, outcome: Outcome) => {
    if ('refused' in outcome) {
      refusedByClient++;
      return;
    }
    if ('reset' in outcome) {
      const fromTap = c.route.startsWith('tap-');
      if (!fromTap) {
        const key = `RST_STREAM ${outcome.reset}`;
        traefikStatuses[key] = (traefikStatuses[key] ?? 0) + 1;
      }
      // PROTOCOL_ERROR from Traefik is Go's HTTP/2 server refusing the request before any handler; a reset from the
      // tap, or any other code, is a failure.
      if (fromTap || outcome.reset !== constants.NGHTTP2_PROTOCOL_ERROR) {
        if (fromTap) tapNon2xx++;
        else traefikNon2xxFromTap++;
        fail({ what: `stream reset (code ${outcome.reset}) on ${c.route}`, index, input: describeCase(c) });
      }
      return;
    }
    if (c.route.startsWith('tap-')) {
      // With a catch-all target every request the tap handles is answered with its event id. A 200 without one is
      // the answer to a request Node's parser refused first (a method it does not know over HTTP/1.1): counted as
      // rejected input, with no event.
      if (!outcome.tapId) answeredWithoutEvent++;
      else if (c.route.startsWith('tap-forwardauth')) directForwardAuthAnswers++;
      if (outcome.status < 200 || outcome.status > 299) {
        tapNon2xx++;
        fail({ what: `the tap answered ${outcome.status} on ${c.route}`, index, input: describeCase(c) });
      }
      return;
    }
    traefikStatuses[outcome.status] = (traefikStatuses[outcome.status] ?? 0) + 1;
    // Traefik hands the tap's non-2xx to the client with the tap's headers; when its call to the tap fails it
    // answers 5xx itself. Its own 4xx (a request it refuses before any middleware) carry neither.
    if (outcome.status !== 201 && (outcome.tapId || outcome.status >= 500)) {
      traefikNon2xxFromTap++;
      fail({ what: `Traefik answered ${outcome.status} on ${c.route}${outcome.tapId ? ' with the tap\'s X-Request-Mirror-Id' : ''}`, index, input: describeCase(c) });
    }
  };

  const worker = async () => {
    while (next < o.requests && Date.now() < deadline) {
      const index = next++;
      const c: RequestCase = draw(requestCase, o.seed, index);
      try {
        if (c.kind === 'raw') {
          const key = `raw-${c.to}`;
          byRoute[key] = (byRoute[key] ?? 0) + 1;
          const answer = await senders.raw(c);
          rawExchanges++;
          // HTTP/2 frames carry no request (see inputs.ts): the tap must only survive them and close, never hang.
          // Node answers `Expect: 100-continue` with an interim 100 before the tap's 200; only final answers count.
          const final = c.to === 'mirror' ? answer.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '') : '';
          const statuses = [...final.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
          if (statuses.some((s) => s !== 200) || (final !== '' && !final.startsWith('HTTP/1.1 200 OK\r\n'))) {
            rawNon200++;
            fail({ what: `the tap answered raw bytes with ${JSON.stringify(answer.slice(0, 200))}`, index, input: describeCase(c) });
          }
        } else {
          byRoute[c.route] = (byRoute[c.route] ?? 0) + 1;
          judge(index, c, await senders.send(c));
        }
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        // Go's server answers 400 and closes at once on a request line it refuses (an invalid percent-escape),
        // while a body may still be on its way: the client then fails its write. Traefik's refusal, not the tap's.
        if (c.kind === 'http' && c.route.startsWith('traefik-') && (code === 'EPIPE' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET')) {
          const key = `closed (${code})`;
          traefikStatuses[key] = (traefikStatuses[key] ?? 0) + 1;
        } else fail({ what: `no answer: ${(error as Error).message}`, index, input: describeCase(c) });
      }
      sent++;
      done++;
      if (Date.now() - lastProgress > 10_000) {
        lastProgress = Date.now();
        o.log(`${done}/${o.requests} requests, ${published}/${o.events} events, ${((performance.now() - started) / 1000).toFixed(0)} s`);
      }
    }
  };

  // Events go out in step with the requests, in batches each flushed before the next, so that a burst from the
  // harness never outruns the dispatcher's socket buffer (NATS would then cut it off as a slow consumer).
  let published = 0;
  let invalidExpected = 0;
  const publisher = async () => {
    while (published < o.events && Date.now() < deadline) {
      const due = o.requests === 0 ? o.events : Math.ceil((o.events * (done + 1)) / o.requests);
      if (published >= due) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const end = Math.min(o.events, published + EVENT_BATCH);
      for (let index = published; index < end; index++) {
        const e: EventCase = draw(eventCase, o.seed + 0x5eed, index);
        if (!e.valid) invalidExpected++;
        nc.publish(`request-mirror.requests.${e.subjectToken}`, e.payload);
      }
      published = end;
      await nc.flush();
    }
  };

  const crashed = () => [stack.tap, stack.dispatcher, traefik.process].filter((p) => p.exited());
  const crashWatch = setInterval(() => {
    for (const p of crashed()) fail({ what: `${p.name} exited during the run` });
  }, 1000);
  try {
    await Promise.all([...Array.from({ length: o.concurrency }, worker), publisher()]);
  } finally {
    clearInterval(crashWatch);
  }
  if (Date.now() >= deadline) fail({ what: `the run did not finish within ${o.maxSeconds} s (${done} requests, ${published} events)` });
  o.log(`sent ${done} requests and ${published} events; waiting for the counters to settle`);

  // Mirroring calls the tap after the upstream has answered, and events are built and delivered after the 200:
  // the figures are read once the counters have stopped moving and nothing is pending.
  let last = '';
  let stableSince = Date.now();
  await waitUntil(
    'the tap and dispatcher counters to settle',
    async () => {
      const [t, d] = await Promise.all([readMetrics(stack.tapAdminUrl), readMetrics(stack.dispatcherAdminUrl)]);
      const key = JSON.stringify([sum(t, 'request_mirror_tap_requests_received_total'), sum(t, 'request_mirror_tap_events_published_total'), sum(d, 'request_mirror_dispatcher_events_received_total'), sum(d, 'request_mirror_dispatcher_invalid_events_total'), sum(d, 'request_mirror_dispatcher_events_pending')]);
      if (key !== last) {
        last = key;
        stableSince = Date.now();
      }
      return sum(d, 'request_mirror_dispatcher_events_pending') === 0 && Date.now() - stableSince > 2000;
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
  const seconds = (performance.now() - started) / 1000;
  const memorySeries = memory.stop();
  await nc.drain();
  await senders.close();

  const t = await readMetrics(stack.tapAdminUrl);
  const d = await readMetrics(stack.dispatcherAdminUrl);
  const received = byLabel(t, 'request_mirror_tap_requests_received_total', 'attachment');
  const tapPublished = sum(t, 'request_mirror_tap_events_published_total');
  const tapDropped = byLabel(t, 'request_mirror_tap_events_dropped_total', 'reason');
  const skipped = sum(t, 'request_mirror_tap_requests_skipped_total');
  const unaccounted = sum(t, 'request_mirror_tap_requests_received_total') - tapPublished - total(tapDropped) - skipped;
  const forwardAuthNotLetThrough = (received.forwardAuth ?? 0) - directForwardAuthAnswers - upstream.letThrough() - upstream.refusedByNode();
  if (unaccounted !== 0) fail({ what: `tap: received − published − dropped − skipped = ${unaccounted}` });
  // docs/errors.md: a rising handler_error is a tap bug (client input has reasons of its own).
  const handlerErrors = sum(t, 'request_mirror_tap_rejected_input_total', { reason: 'handler_error' });
  if (handlerErrors !== 0) fail({ what: `tap: ${handlerErrors} requests reached fastify's error handler (rejected input reason handler_error)` });
  if (forwardAuthNotLetThrough !== 0) fail({ what: `tap: ${forwardAuthNotLetThrough} forwardAuth calls neither answered straight nor let through by Traefik` });

  const dispatcherReceived = sum(d, 'request_mirror_dispatcher_events_received_total', { target: TARGET });
  const delivered = sum(d, 'request_mirror_dispatcher_events_delivered_total', { target: TARGET });
  const dispatcherDropped = byLabel(d, 'request_mirror_dispatcher_events_dropped_total', 'reason');
  const pending = sum(d, 'request_mirror_dispatcher_events_pending', { target: TARGET });
  const invalid = sum(d, 'request_mirror_dispatcher_invalid_events_total');
  const messages = tapPublished + published;
  const unaccountedMessages = messages - dispatcherReceived - invalid;
  const unaccountedEvents = dispatcherReceived - delivered - total(dispatcherDropped) - pending;
  if (unaccountedMessages !== 0) fail({ what: `dispatcher: ${unaccountedMessages} of ${messages} messages on NATS neither received nor counted invalid` });
  if (unaccountedEvents !== 0) fail({ what: `dispatcher: received − delivered − dropped − pending = ${unaccountedEvents}` });
  if (invalid !== invalidExpected) fail({ what: `dispatcher: ${invalid} events counted invalid, the contract refuses ${invalidExpected} of those published` });
  if (webhookReceived() < delivered) fail({ what: `webhook: ${webhookReceived()} requests, the dispatcher counts ${delivered} delivered` });

  const crashes: Record<string, number | string> = {};
  for (const p of [stack.tap, stack.dispatcher, traefik.process, ...crashed()]) crashes[p.name] = p.exited() ? 'exited' : 0;
  const rss: FuzzReport['rss'] = {};
  for (const [name, series] of Object.entries(memorySeries)) {
    const figures = memoryFigures(series, o.rssTolerance, seconds >= o.rssMinSeconds);
    rss[name] = figures;
    if (figures.judged && !figures.flat) fail({ what: `${name}: RSS grew ${(figures.growth * 100).toFixed(1)}% from the first third of the run after its warm-up to the last (tolerance ${(o.rssTolerance * 100).toFixed(0)}%)` });
  }

  return {
    seed: o.seed,
    seconds,
    requests: { sent, byRoute, refusedByClient, tapNon2xx, answeredWithoutEvent, traefikStatuses, traefikNon2xxFromTap, rawExchanges, rawNon200, upstreamLetThrough: upstream.letThrough(), upstreamRefused: upstream.refusedByNode() },
    crashes,
    rss,
    tap: {
      received,
      published: tapPublished,
      dropped: tapDropped,
      skipped,
      rejectedInput: byLabel(t, 'request_mirror_tap_rejected_input_total', 'reason'),
      connections: Object.fromEntries(
        t.filter((m) => m.name === 'request_mirror_tap_connections_total').map((m) => [`${m.labels.listener ?? ''} ${m.labels.protocol ?? ''}`, m.value]),
      ),
      unaccounted,
      forwardAuthNotLetThrough,
    },
    dispatcher: {
      messages,
      received: dispatcherReceived,
      delivered,
      dropped: dispatcherDropped,
      pending,
      invalid,
      invalidExpected,
      webhookReceived: webhookReceived(),
      unaccountedMessages,
      unaccountedEvents,
    },
    failures,
  };
}

function total(values: Record<string, number>): number {
  return Object.values(values).reduce((a, b) => a + b, 0);
}

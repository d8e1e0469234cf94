import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { CloudEvent } from 'cloudevents';
import { pino, type Logger } from 'pino';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { Config, type ConfigInput, type ListenerTls } from '../../contract/config.ts';
import type { MirrorEvent } from '../../contract/event.ts';
import type { PLUGIN_DROP_REASONS } from '../../contract/plugin-batch.ts';
import { allRequestsSubject } from '../../contract/subjects.ts';
import { buildTap, type Tap, type TapDeps } from '../../ingress-tap/app.ts';
import type { Attachment } from '../../ingress-tap/forwarded-request.ts';
import { createMetrics, type DropReason, type TapMetrics, type TruncationReason } from '../../ingress-tap/metrics.ts';
import { startPublisher, type Publisher } from '../../ingress-tap/publisher.ts';
import type { ConnectionProtocol } from '../../ingress-tap/tap-server.ts';
import { lateBound } from '../support/late-bound.ts';
import { startNatsServer, type NatsServer, type NatsServerOptions } from '../../tools/stack/nats-server.ts';

// A real tap on port 0, publishing to a real nats-server, with a subscriber that validates every event it
// receives against the generated JSON Schema and the CloudEvents SDK before handing it to the test.

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const schema = JSON.parse(readFileSync(join(import.meta.dirname, '../../contract/schemas/event.schema.json'), 'utf8')) as object;
const ajv = addFormats(new Ajv2020({ allErrors: true, strict: false }));
const validateSchema = ajv.compile(schema);

export function assertValidEvent(event: unknown): asserts event is MirrorEvent {
  if (!validateSchema(event)) {
    throw new Error(`event does not match event.schema.json: ${ajv.errorsText(validateSchema.errors)}\n${JSON.stringify(event)}`);
  }
  // The SDK's own validation of the CloudEvents attributes (spec version, id, source, type, time…).
  new CloudEvent({ ...(event as object) }, true).validate();
}

export interface Received {
  readonly subject: string;
  readonly size: number;
  readonly event: MirrorEvent;
}

export interface TapHarness {
  readonly tap: Tap;
  readonly metrics: TapMetrics;
  readonly publisher: Publisher;
  readonly config: Config;
  readonly forwardAuthUrl: string;
  readonly mirrorUrl: string;
  /** Base URL of the plugin ingest listener (plain HTTP). */
  readonly pluginUrl: string;
  readonly adminUrl: string;
  readonly forwardAuthPort: number;
  readonly mirrorPort: number;
  readonly received: Received[];
  /** Events that failed validation; a test's afterEach expects none. */
  readonly invalid: Error[];
  /** Resolves with the first `count` events received in all. */
  waitForEvents(count: number, timeoutMs?: number): Promise<Received[]>;
  /**
   * Sum of a counter's series that carry `labels` (all of them without labels); 0 when none exists yet. Throws for a
   * metric name the tap does not register or a label name the metric does not have, so an "is zero" check cannot
   * pass because of a rename.
   */
  metric<N extends keyof TapMetricLabels>(name: N, labels?: Partial<TapMetricLabels[N]>): Promise<number>;
  close(): Promise<void>;
}

/**
 * The tap's counters and their labels. Label values come from the source's own types where it has them, so a renamed
 * drop or truncation reason fails the type-check of the tests that count it instead of reading a series that no longer
 * exists as 0.
 */
export interface TapMetricLabels {
  request_mirror_tap_requests_received_total: { attachment: MirrorEvent['data']['attachment'] };
  request_mirror_tap_requests_skipped_total: { attachment: MirrorEvent['data']['attachment'] };
  request_mirror_tap_events_published_total: Record<string, never>;
  request_mirror_tap_publish_errors_total: Record<string, never>;
  request_mirror_tap_events_dropped_total: { reason: DropReason };
  request_mirror_tap_bodies_truncated_total: { reason: TruncationReason };
  request_mirror_tap_rejected_input_total: { reason: string };
  request_mirror_tap_connections_total: { listener: Attachment; protocol: ConnectionProtocol };
  request_mirror_plugin_snapshots_total: { outcome: 'queued' | 'sent' };
  request_mirror_plugin_snapshots_dropped_total: { reason: (typeof PLUGIN_DROP_REASONS)[number] };
  request_mirror_plugin_body_bytes_sent_total: Record<string, never>;
  request_mirror_plugin_bodies_cut_total: Record<string, never>;
  request_mirror_plugin_reporters: Record<string, never>;
  request_mirror_tap_events_in_doubt_total: Record<string, never>;
}

export interface TapHarnessOptions {
  readonly natsUrl: string;
  readonly config?: ConfigInput;
  readonly deps?: Partial<Pick<TapDeps, 'newId' | 'now' | 'source' | 'readinessDetail'>>;
  /** Subscribe to the events (default true); a test that keeps NATS down at start subscribes later itself. */
  readonly subscribe?: boolean;
  /** Serve the forwardAuth and mirror listeners over TLS (HTTP/2 and HTTP/1.1); their URLs are then https. */
  readonly tls?: ListenerTls;
  /** Wraps the real NATS publisher the tap is given, e.g. to observe when the tap calls it. */
  readonly wrapPublisher?: (publisher: Publisher) => Publisher;
  /** The tap's logger (default: silent, or LOG_LEVEL), for a test that checks what the tap logs. */
  readonly logger?: Logger;
}

export const agent = new Agent({ keepAliveTimeout: 1000 });

export async function startTap(options: TapHarnessOptions): Promise<TapHarness> {
  const config = Config.parse({
    ...options.config,
    nats: { ...options.config?.nats, url: options.natsUrl },
    tap: {
      ...options.config?.tap,
      forwardAuth: { host: '127.0.0.1', port: 0, ...(options.tls ? { tls: options.tls } : {}) },
      mirror: { host: '127.0.0.1', port: 0, ...(options.tls ? { tls: options.tls } : {}) },
      plugin: { ...options.config?.tap?.plugin, host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
    },
  });
  const logger = options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  const metrics = createMetrics();
  const publisher = startPublisher({ nats: config.nats, maxPendingBytes: config.tap.maxPendingPublishBytes, metrics, logger });
  let tap: Tap;
  try {
    const given = options.wrapPublisher ? options.wrapPublisher(publisher) : publisher;
    tap = buildTap({ config, publisher: given, metrics, logger, source: '/request-mirror/ingress-tap/test', ...options.deps });
  } catch (error) {
    await publisher.close();
    throw error;
  }
  const cleanups: (() => Promise<unknown>)[] = [() => publisher.close(), () => tap.close()];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    await tap.forwardAuth.listen({ host: '127.0.0.1', port: 0 });
    await tap.mirror.listen({ host: '127.0.0.1', port: 0 });
    await tap.plugin.listen({ host: '127.0.0.1', port: 0 });
    await tap.admin.listen({ host: '127.0.0.1', port: 0 });
    const collector = options.subscribe === false ? undefined : await collectEvents(config.nats.url, config.nats.subjectPrefix);
    if (collector) {
      cleanups.push(() => collector.close());
      // The publisher connects in the background (the tap serves, and drops, while NATS is down): a test that reads
      // events starts once it is connected, or a loaded machine drops its first ones as nats_disconnected.
      await eventually(`the tap's publisher connected to ${config.nats.url}`, () => publisher.isConnected(), 10_000);
    }
    const port = (app: { server: { address(): unknown } }) => (app.server.address() as { port: number }).port;
    const scheme = options.tls ? 'https' : 'http';
    return {
      tap,
      metrics,
      publisher,
      config,
      forwardAuthPort: port(tap.forwardAuth),
      mirrorPort: port(tap.mirror),
      forwardAuthUrl: `${scheme}://127.0.0.1:${port(tap.forwardAuth)}`,
      mirrorUrl: `${scheme}://127.0.0.1:${port(tap.mirror)}`,
      pluginUrl: `http://127.0.0.1:${port(tap.plugin)}`,
      adminUrl: `http://127.0.0.1:${port(tap.admin)}`,
      received: collector?.received ?? [],
      invalid: collector?.invalid ?? [],
      waitForEvents: (count, timeoutMs) => {
        if (!collector) throw new Error('this harness does not subscribe');
        return collector.waitForEvents(count, timeoutMs);
      },
      async metric(name, labels = {}) {
        const metric = metrics.registry.getSingleMetric(name);
        if (!metric) throw new Error(`no metric ${name}`);
        const known = (metric as unknown as { labelNames: readonly string[] }).labelNames;
        const wanted = Object.entries(labels as Record<string, string>);
        for (const [k] of wanted) {
          if (!known.includes(k)) throw new Error(`metric ${name} has no label ${k} (it has: ${known.join(', ') || 'none'})`);
        }
        const { values } = await metric.get();
        return values
          .filter((v) => wanted.every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
          .reduce((sum, v) => sum + v.value, 0);
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

export interface TapFixtureOptions extends Omit<TapHarnessOptions, 'natsUrl'> {
  readonly nats?: NatsServerOptions;
  /** After each test, expect no invalid event and forget the events received (default true). */
  readonly checkEachTest?: boolean;
}

/** Registers the file's hooks: one nats-server and one tap for the whole file, started in beforeAll. */
export function useTap(options: TapFixtureOptions = {}): { readonly nats: NatsServer; readonly tap: TapHarness } {
  const { nats: natsOptions, checkEachTest = true, ...tapOptions } = options;
  let nats: NatsServer | undefined;
  let tap: TapHarness | undefined;
  beforeAll(async () => {
    nats = await startNatsServer(natsOptions);
    tap = await startTap({ ...tapOptions, natsUrl: nats.url });
  });
  afterAll(async () => {
    await tap?.close();
    await nats?.stop();
  });
  const fixture = { nats: lateBound('nats-server', () => nats), tap: lateBound('tap', () => tap) };
  if (checkEachTest) {
    afterEach(() => {
      expect(fixture.tap.invalid).toEqual([]);
      fixture.tap.received.length = 0;
    });
  }
  return fixture;
}

export interface EventCollector {
  readonly received: Received[];
  readonly invalid: Error[];
  waitForEvents(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** Subscribes to every request subject under `prefix`, validating each event; ready once the server has the SUB. */
export async function collectEvents(natsUrl: string, prefix: string): Promise<EventCollector> {
  const received: Received[] = [];
  const invalid: Error[] = [];
  const waiters = new Set<() => void>();
  const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const sub = nc.subscribe(allRequestsSubject(prefix));
  await nc.flush();
  void (async () => {
    for await (const m of sub) {
      try {
        const event: unknown = m.json();
        assertValidEvent(event);
        received.push({ subject: m.subject, size: m.data.length, event });
      } catch (error) {
        invalid.push(error as Error);
      }
      for (const w of [...waiters]) w();
    }
  })();
  return {
    received,
    invalid,
    waitForEvents(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(received.slice(0, count));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} events, received ${received.length} (${invalid.length} invalid: ${invalid[0]?.message ?? ''})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => nc.close(),
  };
}

export interface TapResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A real HTTP request through undici, which (unlike fetch) sends bodies with GET. */
export async function send(
  url: string,
  options: { method?: string; headers?: Record<string, string | string[]> | string[]; body?: string | Buffer | Iterable<Buffer> } = {},
): Promise<TapResponse> {
  const res = await request(url, {
    dispatcher: agent,
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
  } as Parameters<typeof request>[1]);
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/**
 * Writes raw bytes to the port, half-closes, and returns everything the server wrote before closing. For
 * requests undici would refuse to send.
 */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.end(bytes);
  });
}

/** Status codes of every response in a raw exchange, in order. */
export function statusCodes(raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}

/** Minimal valid target for a config. */
export function target(name: string, extra: Partial<NonNullable<ConfigInput['targets']>[number]> = {}): NonNullable<ConfigInput['targets']>[number] {
  return { name, watchURL: `http://127.0.0.1:9/${name}`, methods: ['*'], ...extra };
}

/** Polls `probe` until it returns true; the tap counts some outcomes just after its answer has gone out. */
export async function eventually(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The real publisher, with `onPublish` called with each event's request path as the tap hands it over, before the
 * event goes on to NATS (an exception from `onPublish` is the publish's own).
 */
export function observePublishes(publisher: Publisher, onPublish: (path: string) => void): Publisher {
  return {
    isConnected: () => publisher.isConnected(),
    problems: () => publisher.problems(),
    maxPayload: () => publisher.maxPayload(),
    close: () => publisher.close(),
    abandon: () => {
      publisher.abandon();
    },
    publish(subject, payload) {
      const { data } = JSON.parse(Buffer.from(payload).toString('utf8')) as { data: { path: string } };
      onPublish(data.path);
      return publisher.publish(subject, payload);
    },
  };
}

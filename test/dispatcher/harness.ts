import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { ulid } from 'ulid';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Config, type ConfigInput } from '../../contract/config.ts';
import { natsConnectionOptions } from '../../contract/nats-connection.ts';
import { EVENT_TYPE, type MirrorEvent, type RequestSnapshot } from '../../contract/event.ts';
import { requestSubject } from '../../contract/subjects.ts';
import { createDispatcher, type Dispatcher } from '../../dispatcher/dispatcher.ts';
import { createMetrics, type DispatcherMetrics } from '../../dispatcher/metrics.ts';
import { resolveSecrets } from '../../dispatcher/secrets.ts';
import { watchConnection } from '../../dispatcher/nats-status.ts';
import { subscribeEvents } from '../../dispatcher/subscription.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { startHttpReceiver, type HttpReceiver, type Responder } from '../../tools/stack/http-receiver.ts';
import { lateBound } from '../support/late-bound.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';

// Builds a dispatcher the way main.ts does, against a real nats-server, with a NATS client to publish real events.

export const PREFIX = 'rm-test';

export interface DispatcherFixture {
  /** One nats-server for the whole file, started in beforeAll and stopped in afterAll. */
  readonly nats: NatsServer;
  /** Runs `cleanup` after the current test whether it passed or not, before anything deferred earlier. */
  readonly defer: (cleanup: () => Promise<void> | void) => void;
  /** A webhook receiver on a free port of `host` (default 127.0.0.1), closed after the current test. */
  readonly receiver: (respond?: Responder, host?: string) => Promise<HttpReceiver>;
}

/** Registers the file's hooks: a nats-server per file, and per-test cleanups run in reverse order after each test. */
export function useDispatcherFixture(): DispatcherFixture {
  let nats: NatsServer | undefined;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
  });
  afterEach(() => cleanup.run());
  const defer = (fn: () => Promise<void> | void) => {
    cleanup.add(fn);
  };
  return {
    nats: lateBound('nats-server', () => nats),
    defer,
    receiver: async (respond, host) => {
      const r = await startHttpReceiver(respond, 0, host);
      defer(() => r.close());
      return r;
    },
  };
}

type EventOverrides = Partial<Omit<RequestSnapshot, 'body'>> & { body?: string | Buffer | null };

export function makeEvent(overrides: EventOverrides = {}): MirrorEvent {
  const { body, ...rest } = overrides;
  const bytes = body === null ? null : typeof body === 'string' ? Buffer.from(body) : (body ?? Buffer.alloc(0));
  const utf8 = bytes !== null && Buffer.from(bytes.toString('utf8')).equals(bytes);
  return {
    specversion: '1.0',
    id: ulid(),
    source: '/ingress-tap/test',
    type: EVENT_TYPE,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    subject: `${rest.host ?? 'example.com'}${rest.path ?? '/'}`,
    data: {
      attachment: 'mirror',
      method: 'POST',
      scheme: 'http',
      host: 'example.com',
      path: '/',
      query: '',
      clientIp: '192.0.2.1',
      headers: { 'content-type': ['application/json'] },
      redactedHeaders: [],
      cookies: {},
      body:
        bytes === null
          ? null
          : {
              encoding: utf8 ? 'utf8' : 'base64',
              data: bytes.toString(utf8 ? 'utf8' : 'base64'),
              capturedBytes: bytes.length,
              declaredLength: bytes.length,
              receivedBytes: bytes.length,
              truncated: false,
              interrupted: false,
              sha256: createHash('sha256').update(bytes).digest('hex'),
            },
      ...rest,
    },
  };
}

export function testConfig(input: ConfigInput): Config {
  return Config.parse({
    ...input,
    nats: { subjectPrefix: PREFIX, ...input.nats },
    dispatcher: { ...input.dispatcher, network: { allowLoopback: true, ...input.dispatcher?.network } },
  });
}

export interface RunningDispatcher {
  readonly dispatcher: Dispatcher;
  readonly metrics: DispatcherMetrics;
  readonly nc: NatsConnection;
  close(): Promise<void>;
}

/** A dispatcher subscribed through its own NATS connection, as one replica would be. */
export async function startDispatcher(
  natsUrl: string,
  config: Config,
  env: Record<string, string> = {},
  options: { now?: () => number; random?: () => number; logger?: Logger; name?: string } = {},
): Promise<RunningDispatcher> {
  const { name = 'request-mirror-dispatcher', ...deps } = options;
  const metrics = createMetrics();
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const dispatcher = createDispatcher({
    config,
    secrets: resolveSecrets(config, { env, readFile: () => '' }),
    metrics,
    ...deps,
    logger,
  });
  const nc = await connect(natsConnectionOptions({ ...config.nats, url: natsUrl }, name));
  const sub = subscribeEvents(nc, config.nats, dispatcher, logger, { metrics, onProblem: () => undefined });
  const watch = watchConnection(nc, { logger, metrics, onChange: () => undefined });
  await nc.flush();
  return {
    dispatcher,
    metrics,
    nc,
    async close() {
      watch.stop();
      await sub.drain().catch(() => undefined);
      await nc.close();
      await dispatcher.drain(0);
    },
  };
}

export async function publish(nc: NatsConnection, ...events: MirrorEvent[]): Promise<void> {
  for (const event of events) nc.publish(requestSubject(PREFIX, event.data.method), JSON.stringify(event));
  await nc.flush();
}

/**
 * Sum of the series of metric `name` that carry `labels`; 0 when none exists yet. Throws for a name the dispatcher
 * does not register or a label the metric does not have, so an "is zero" check cannot pass because of a rename.
 */
export async function metric(metrics: DispatcherMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const registered = metrics.registry.getSingleMetric(name);
  if (!registered) throw new Error(`no metric ${name}`);
  const known = (registered as unknown as { labelNames: readonly string[] }).labelNames;
  for (const label of Object.keys(labels)) {
    if (!known.includes(label)) throw new Error(`metric ${name} has no label ${label} (it has: ${known.join(', ') || 'none'})`);
  }
  const found = (await registered.get()).values;
  const want = Object.entries(labels);
  return found
    .filter((v) => want.every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * received = delivered + dropped + pending. The four reads form one consistent snapshot: prom-client's get() builds
 * its values before its first await, and each metric() call reaches get() synchronously inside Promise.all.
 */
export async function accounting(metrics: DispatcherMetrics, target: string) {
  const [received, delivered, dropped, pending] = await Promise.all([
    metric(metrics, 'request_mirror_dispatcher_events_received_total', { target }),
    metric(metrics, 'request_mirror_dispatcher_events_delivered_total', { target }),
    metric(metrics, 'request_mirror_dispatcher_events_dropped_total', { target }),
    metric(metrics, 'request_mirror_dispatcher_events_pending', { target }),
  ]);
  return { received, delivered, dropped, pending };
}

/** A TCP server that accepts connections and never answers: the worst kind of dead webhook. */
export async function startBlackhole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A loopback port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

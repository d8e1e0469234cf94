import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { NatsDisconnectedError, PendingBytesExceededError, PublishFailedError } from './errors.ts';
import type { DropReason, TapMetrics } from './metrics.ts';

// Publishes events to NATS core without ever blocking or failing the request path. nats.js buffers publishes in
// memory while disconnected and flushes them on reconnect; with Traefik calling on every request that buffer
// would grow without bound during an outage, so the tap drops (and counts) instead. While connected, bytes handed
// to the client but not yet confirmed by a PING/PONG round trip are bounded by `maxPendingBytes` for the same reason.

export interface Publisher {
  isConnected(): boolean;
  /** The server's max_payload; 0 while not connected. */
  maxPayload(): number;
  /** Returns 'published' or why the event was dropped. Never throws. */
  publish(subject: string, payload: Uint8Array): 'published' | DropReason;
  /** Flushes what was published and closes the connection. */
  close(): Promise<void>;
}

export interface PublisherOptions {
  /** NATS server URL(s), comma-separated as in `nats.url`. */
  readonly servers: string;
  readonly maxPendingBytes: number;
  readonly metrics: TapMetrics;
  readonly logger: Logger;
  readonly name?: string;
}

/** Starts connecting in the background and returns at once: the tap serves (and drops) while NATS is down. */
export function startPublisher(options: PublisherOptions): Publisher {
  const { metrics, logger, maxPendingBytes } = options;
  let nc: NatsConnection | undefined;
  let connected = false;
  let closing = false;
  let dropLogged = false;
  // Bytes published and not yet confirmed flushed; `batch` is what the next flush will confirm.
  let pending = 0;
  let batch = 0;
  let flushing = false;
  let generation = 0;

  void connect({
    servers: options.servers.split(',').map((s) => s.trim()),
    name: options.name ?? 'request-mirror-ingress-tap',
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
  }).then(
    (conn) => {
      nc = conn;
      if (closing) {
        void conn.close();
        return;
      }
      connected = true;
      dropLogged = false;
      logger.info({ server: conn.getServer() }, 'connected to NATS');
      void watchStatus(conn);
    },
    (error: unknown) => {
      logger.error({ err: error }, 'NATS connection gave up');
    },
  );

  async function watchStatus(conn: NatsConnection): Promise<void> {
    for await (const s of conn.status()) {
      switch (s.type) {
        case 'disconnect':
          connected = false;
          resetPending();
          logger.warn({ server: s.server }, 'disconnected from NATS; dropping events until reconnected');
          break;
        case 'reconnect':
          connected = true;
          dropLogged = false;
          resetPending();
          logger.info({ server: s.server }, 'reconnected to NATS');
          break;
        case 'error':
          logger.warn({ err: s.error }, 'NATS error');
          break;
        case 'close':
          connected = false;
          break;
        default:
          break;
      }
    }
  }

  function resetPending(): void {
    generation++;
    pending = 0;
    batch = 0;
    flushing = false;
  }

  function flushBatch(conn: NatsConnection): void {
    flushing = true;
    const confirming = batch;
    const gen = generation;
    batch = 0;
    conn.flush().then(
      () => {
        if (gen !== generation) return;
        pending -= confirming;
        if (batch > 0) flushBatch(conn);
        else flushing = false;
      },
      (error: unknown) => {
        if (gen !== generation) return;
        metrics.publishErrors.inc();
        logger.warn({ err: new PublishFailedError('NATS flush failed', { cause: error }) }, 'NATS flush failed');
        resetPending();
      },
    );
  }

  return {
    isConnected: () => connected,
    maxPayload: () => (connected ? (nc?.info?.max_payload ?? 0) : 0),
    publish(subject, payload) {
      const conn = nc;
      if (!connected || conn === undefined) {
        if (!dropLogged) {
          dropLogged = true;
          logger.warn({ err: new NatsDisconnectedError('no NATS connection; dropping events') }, 'dropping events');
        }
        return 'nats_disconnected';
      }
      if (pending + payload.length > maxPendingBytes) {
        logger.debug({ err: new PendingBytesExceededError(`${pending} bytes already pending`) }, 'event dropped');
        return 'pending_bytes_exceeded';
      }
      try {
        conn.publish(subject, payload);
      } catch (error) {
        metrics.publishErrors.inc();
        logger.warn({ err: new PublishFailedError('NATS publish refused', { cause: error }) }, 'publish failed');
        return 'publish_error';
      }
      pending += payload.length;
      batch += payload.length;
      if (!flushing) flushBatch(conn);
      return 'published';
    },
    async close() {
      closing = true;
      connected = false;
      // Still waiting for a first connection: the pending connect closes itself when it succeeds.
      if (nc === undefined || nc.isClosed()) return;
      try {
        await nc.drain();
      } catch {
        await nc.close();
      }
    },
  };
}

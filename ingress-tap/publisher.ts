import { PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { NatsPermissionDeniedError } from '../contract/errors.ts';
import { connectWhenUp, followOutages, natsConnectionOptions } from '../contract/nats-connection.ts';
import type { NatsCredentials } from '../contract/nats-credentials.ts';
import { NatsDisconnectedError, PendingBytesExceededError, PublishFailedError } from './errors.ts';
import type { DropReason, TapMetrics } from './metrics.ts';

// Publishes events to NATS core without ever blocking or failing the request path. nats.js takes publishes while it
// reconnects without a word, but keeps them only until its next connection attempt: every attempt starts by emptying
// its outbound buffer and rejecting the flushes still waiting for their PONG (@nats-io/nats-core 3.4.0,
// lib/protocol.js: dial() calls prepare(), l. 470 and 400-410, which calls resetOutbound(), l. 381-394). Only what
// is published during the attempt that succeeds goes out (dial(), l. 489-498). Events handed over while disconnected
// would be lost without a trace, after piling up in memory with every request Traefik sends until the next attempt;
// so while the status reports say the connection is down (followOutages) the tap drops and counts them instead. While
// connected, bytes handed to the client but not yet confirmed by a PING/PONG round trip are bounded by
// `maxPendingBytes` for the same reason. A flush cannot stay pending and hold those bytes for good: the server's PONGs
// settle flushes in order (processPong(), l. 720-725), and a connection that stops answering is dropped after
// `maxPingsOutstanding` unanswered pings (lib/heartbeats.js), whereupon the next attempt rejects what was waiting. Only
// close() leaves flushes pending (close(), l. 938-967), and nothing is published after it.
// An event is counted as published only once its fate is known: the server answered the PING after it (it took the
// event), or the connection dropped first (in doubt). A server that refuses a publish for lack of permission says so
// with -ERR and nothing else, so those events are counted as dropped (permission_denied) and never as published.

export interface Publisher {
  isConnected(): boolean;
  /** Why the publisher cannot publish, beyond being disconnected: refused credentials, subjects refused since it connected. */
  problems(): readonly string[];
  /** The server's max_payload; 0 while not connected. */
  maxPayload(): number;
  /**
   * Queues the event for the next batch ('queued') or says why it was dropped. Never throws, never waits. The
   * publisher counts published events and publish errors itself; the caller counts the drops it is told about.
   */
  publish(subject: string, payload: Uint8Array): 'queued' | DropReason;
  /**
   * Flushes what was published and closes the connection. A connection that drops under the drain fails its flushes
   * (nats.js's next connection attempt rejects them), which counts their events as in doubt.
   */
  close(): Promise<void>;
  /**
   * Counts the events handed to NATS and not yet confirmed as published and in doubt, with one warning, and forgets
   * them, so that a confirmation arriving later counts nothing twice. For an exit that cannot wait for close():
   * main.ts calls it when the shutdown outlives `tap.shutdownTimeoutMs`, typically on a NATS server that stopped
   * answering during the final drain.
   */
  abandon(): void;
}

export interface PublisherOptions {
  /** The servers to connect to and how (`nats` of the config). */
  readonly nats: Config['nats'];
  /** `nats.auth` and `nats.tls`, resolved at start-up; none by default. */
  readonly credentials?: NatsCredentials;
  readonly maxPendingBytes: number;
  readonly metrics: TapMetrics;
  readonly logger: Logger;
  readonly name?: string;
}

const BATCH_MS = 10;

interface Queued {
  readonly subject: string;
  readonly payload: Uint8Array;
}

/** Starts connecting in the background and returns at once: the tap serves (and drops) while NATS is down. */
export function startPublisher(options: PublisherOptions): Publisher {
  const { metrics, logger, maxPendingBytes } = options;
  let nc: NatsConnection | undefined;
  let connected = false;
  let closing = false;
  let dropLogged = false;
  // Events are handed to nats.js in batches, at most one per BATCH_MS: nats.js then writes to its socket once per
  // batch, and the batch's PING/PONG confirmation (flushBatch) costs one more wake-up. Handed over one by one (even
  // once per event-loop turn, which under load holds about one request) each event cost its own socket write, as
  // much CPU as the rest of the event's handling. At moderate rates a 1 ms batch held one or two events, so each
  // request or two still cost a timer, a socket write and a PONG; 10 ms keeps those to 100 a second whatever the
  // rate. Ten milliseconds more before a mirror sees an event is nothing; the user's request never waits for it.
  let queue: Queued[] = [];
  let queuedBytes = 0;
  let scheduled = false;
  // Bytes (and events) handed to nats.js and not yet confirmed by a PING/PONG; `batch` is what the next flush
  // will confirm. The server's PONG says it has processed every PUB before the PING; what is unconfirmed when the
  // connection drops may or may not have reached it, and is counted as in doubt.
  let unconfirmed = 0;
  let unconfirmedEvents = 0;
  let batch = 0;
  let batchEvents = 0;
  let flushing = false;
  let generation = 0;
  // Refused publishes (-ERR Permissions Violation) not yet set against the events of a settled batch.
  let refusedUnsettled = 0;
  // Subjects the server has refused publishes to on this connection (logged once each).
  const refusedSubjects = new Set<string>();

  // Why the last connection attempt failed, while that is the reason the tap is not connected.
  let failure: string | undefined;
  const first = connectWhenUp(
    natsConnectionOptions(options.nats, options.name ?? 'request-mirror-ingress-tap', options.credentials),
    options.nats.reconnectTimeWaitMs,
    (error) => {
      failure = error.message;
      logger.error({ err: error }, 'cannot connect to NATS; retrying');
    },
  );
  void first.connection.then((conn) => {
    if (conn === undefined) return;
    nc = conn;
    if (closing) {
      void conn.close();
      return;
    }
    connected = true;
    dropLogged = false;
    failure = undefined;
    logger.info({ server: conn.getServer() }, 'connected to NATS');
    void watchStatus(conn);
  });

  function watchStatus(conn: NatsConnection): Promise<void> {
    // After close() the outcome of what was handed over is settled by its flushes, and nothing is published again.
    return followOutages(conn, {
      lost: (server) => {
        if (closing) return;
        connected = false;
        const inDoubt = settle(unconfirmedEvents);
        metrics.inDoubt.inc(inDoubt);
        logger.warn({ server, inDoubt }, 'events handed to NATS but not confirmed when the connection dropped');
        resetUnconfirmed();
        logger.warn({ server }, 'disconnected from NATS; dropping events until reconnected');
      },
      back: (server) => {
        if (closing) return;
        connected = true;
        dropLogged = false;
        failure = undefined;
        refusedSubjects.clear();
        resetUnconfirmed();
        logger.info({ server }, 'reconnected to NATS');
      },
      refused: (error) => {
        failure = error.message;
        logger.error({ err: error }, 'cannot connect to NATS; retrying');
      },
      other: (s) => {
        if (s.type === 'error') {
          if (s.error instanceof PermissionViolationError && s.error.operation === 'publish') refused(s.error);
          else logger.warn({ err: s.error }, 'NATS error');
        } else if (s.type === 'close') {
          connected = false;
        }
      },
    });
  }

  function refused(error: PermissionViolationError): void {
    refusedUnsettled++;
    metrics.dropped.inc({ reason: 'permission_denied' });
    if (refusedSubjects.has(error.subject)) return;
    refusedSubjects.add(error.subject);
    const denied = new NatsPermissionDeniedError(`the NATS server refused a publish to ${error.subject}: ${error.message}`, { cause: error });
    logger.error({ err: denied, subject: error.subject }, 'NATS refused a publish; its events are dropped (permission_denied)');
  }

  /**
   * Counts `events` handed to NATS whose fate is now known as published, less the refusals received for them;
   * returns how many that is.
   */
  function settle(events: number): number {
    const refusedNow = Math.min(events, refusedUnsettled);
    refusedUnsettled -= refusedNow;
    const taken = events - refusedNow;
    if (taken > 0) metrics.published.inc(taken);
    return taken;
  }

  function resetUnconfirmed(): void {
    generation++;
    unconfirmed = 0;
    unconfirmedEvents = 0;
    batch = 0;
    batchEvents = 0;
    flushing = false;
  }

  function abandon(): void {
    if (unconfirmedEvents > 0) {
      const inDoubt = settle(unconfirmedEvents);
      metrics.inDoubt.inc(inDoubt);
      logger.warn({ inDoubt }, 'events handed to NATS but not confirmed when the publisher stopped');
    }
    resetUnconfirmed();
  }

  function logDrop(): void {
    if (dropLogged) return;
    dropLogged = true;
    logger.warn({ err: new NatsDisconnectedError('no NATS connection; dropping events') }, 'dropping events');
  }

  function drain(): void {
    scheduled = false;
    const items = queue;
    if (items.length === 0) return;
    queue = [];
    queuedBytes = 0;
    const conn = nc;
    if (!connected || conn === undefined) {
      logDrop();
      metrics.dropped.inc({ reason: 'nats_disconnected' }, items.length);
      return;
    }
    for (const item of items) {
      try {
        conn.publish(item.subject, item.payload);
        unconfirmed += item.payload.length;
        batch += item.payload.length;
        unconfirmedEvents++;
        batchEvents++;
      } catch (error) {
        metrics.publishErrors.inc();
        metrics.dropped.inc({ reason: 'publish_error' });
        logger.warn({ err: new PublishFailedError('NATS publish refused', { cause: error }) }, 'publish failed');
      }
    }
    if (!flushing && batch > 0) flushBatch(conn);
  }

  function flushBatch(conn: NatsConnection): void {
    flushing = true;
    const confirming = batch;
    const confirmingEvents = batchEvents;
    const gen = generation;
    batch = 0;
    batchEvents = 0;
    conn.flush().then(
      () => {
        if (gen !== generation) return;
        unconfirmed -= confirming;
        unconfirmedEvents -= confirmingEvents;
        // The server's refusals of this batch came before its PONG, but reach the status loop a few promise turns
        // after this callback: settle once those have run.
        setImmediate(() => settle(confirmingEvents));
        if (batch > 0) flushBatch(conn);
        else flushing = false;
      },
      (error: unknown) => {
        if (gen !== generation) return;
        // nats.js rejects the flush at its first connection attempt after the drop (resetOutbound(), see above), which
        // can come before the 'disconnect' status reaches followOutages.
        metrics.publishErrors.inc();
        const inDoubt = settle(unconfirmedEvents);
        metrics.inDoubt.inc(inDoubt);
        logger.warn({ err: new PublishFailedError('NATS flush failed', { cause: error }), inDoubt }, 'NATS flush failed');
        resetUnconfirmed();
      },
    );
  }

  return {
    isConnected: () => connected,
    problems: () => [
      ...(failure === undefined ? [] : [`nats: ${failure}`]),
      ...[...refusedSubjects].map((subject) => `nats: the server refuses publishes to ${subject}; their events are dropped (permission_denied)`),
    ],
    maxPayload: () => (connected ? (nc?.info?.max_payload ?? 0) : 0),
    publish(subject, payload) {
      if (!connected || nc === undefined) {
        logDrop();
        return 'nats_disconnected';
      }
      if (queuedBytes + unconfirmed + payload.length > maxPendingBytes) {
        if (logger.isLevelEnabled('debug')) {
          logger.debug({ err: new PendingBytesExceededError(`${queuedBytes + unconfirmed} bytes already pending`) }, 'event dropped');
        }
        return 'pending_bytes_exceeded';
      }
      queue.push({ subject, payload });
      queuedBytes += payload.length;
      if (!scheduled) {
        scheduled = true;
        setTimeout(drain, BATCH_MS);
      }
      return 'queued';
    },
    async close() {
      // What is queued goes out with the drain below.
      if (scheduled) drain();
      closing = true;
      connected = false;
      first.stop();
      if (nc === undefined || nc.isClosed()) return;
      try {
        await nc.drain();
      } catch {
        await nc.close();
      }
    },
    abandon,
  };
}

import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { followOutages } from '../contract/nats-connection.ts';
import { NatsConnectionLostError } from './errors.ts';
import type { DispatcherMetrics } from './metrics.ts';

// Follows the dispatcher's NATS connection: readiness, and why each loss happened, because NATS core keeps nothing
// for a client that is away and nats-server never tells a client why it closed its connection.
//
// A loss has one of three causes, each counted in request_mirror_dispatcher_nats_disconnects_total{cause}:
// - `stale`: our pings went unanswered (a frozen or cut-off server); nats.js gave the server up.
// - `slow_consumer`: the server closed the connection right after this process stalled (its event loop did not run
//   for at least `stallMs`). nats-server closes a client it cannot write to for `write_deadline` or whose unsent
//   bytes pass `max_pending` (server/client.go, "Slow Consumer Detected") and says nothing to the client; a stall is
//   the only way this side can see it coming. What the server held for us then is lost.
// - `closed`: anything else (the server died, restarted or dropped us otherwise).

export type DisconnectCause = 'stale' | 'slow_consumer' | 'closed';

export interface ConnectionWatchOptions {
  readonly logger: Logger;
  readonly metrics: Pick<DispatcherMetrics, 'natsDisconnects'>;
  readonly onChange: (connected: boolean) => void;
  /** Told why reconnecting fails (refused credentials), and undefined once reconnected. */
  readonly onProblem?: (problem: string | undefined) => void;
  /** An event-loop stall at least this long before a disconnect marks it `slow_consumer`. Default 500 ms. */
  readonly stallMs?: number;
}

const TICK_MS = 100;
/** How long a stall counts as recent. */
const STALL_MEMORY_MS = 10_000;

export interface ConnectionWatch {
  stop(): void;
}

export function watchConnection(nc: NatsConnection, options: ConnectionWatchOptions): ConnectionWatch {
  const { logger, metrics, onChange } = options;
  // Garbage collection and busy moments stay well below it; a slow-consumer cut needs the client to fall behind by
  // max_pending (64 MiB by default) or not to read for write_deadline (10 s by default).
  const stallMs = options.stallMs ?? 500;
  let lastTick = Date.now();
  let stall = { ms: 0, at: 0 };
  const noteStall = (now: number) => {
    const ms = now - lastTick - TICK_MS;
    if (ms >= stall.ms || now - stall.at > STALL_MEMORY_MS) stall = { ms, at: now };
  };
  const ticker = setInterval(() => {
    const now = Date.now();
    noteStall(now);
    lastTick = now;
  }, TICK_MS);
  ticker.unref();

  let stale = false;
  void followOutages(nc, {
    lost: (server) => {
      // After a stall the ticker has not run yet: the time since its last tick is the stall itself.
      noteStall(Date.now());
      const recent = Date.now() - stall.at <= STALL_MEMORY_MS ? stall.ms : 0;
      const cause: DisconnectCause = stale ? 'stale' : recent >= stallMs ? 'slow_consumer' : 'closed';
      stale = false;
      metrics.natsDisconnects.inc({ cause });
      const message =
        cause === 'slow_consumer'
          ? `NATS closed the connection after this dispatcher stalled for ${recent} ms: most likely nats-server flagged it as a slow consumer; what the server held for it is lost`
          : cause === 'stale'
            ? 'NATS server stopped answering pings; reconnecting to another one'
            : 'NATS connection closed; reconnecting';
      logger.warn({ err: new NatsConnectionLostError(message), server, cause, stallMs: recent }, message);
      onChange(false);
    },
    back: (server) => {
      logger.info({ server }, 'NATS reconnected');
      options.onProblem?.(undefined);
      onChange(true);
    },
    refused: (error) => {
      options.onProblem?.(error.message);
      logger.error({ err: error }, 'cannot connect to NATS; retrying');
    },
    other: (status) => {
      if (status.type === 'staleConnection') stale = true;
    },
  });
  return {
    stop() {
      clearInterval(ticker);
    },
  };
}

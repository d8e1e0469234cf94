import { connect, credsAuthenticator, errors, nkeyAuthenticator, type ConnectionOptions, type NatsConnection, type Status } from '@nats-io/transport-node';
import { natsServerList, type Config } from './config.ts';
import { NatsAuthFailedError, NatsConnectFailedError, type RequestMirrorError } from './errors.ts';
import { NO_NATS_CREDENTIALS, type NatsCredentials } from './nats-credentials.ts';

// The one set of NATS client options the tap, the dispatcher and their tests use, so what the cluster tests prove is
// what the services do. Cluster updates stay on (nats.js's default; `ignoreClusterUpdates` is never set): the
// servers a cluster gossips in INFO join the seeds, so a client told about one node can fail over to the others.

/**
 * Client options for `connect()`: the seeds of `nats.url`, reconnect forever, `nats.pingIntervalMs` liveness, and
 * the credentials and TLS material of `nats.auth` / `nats.tls` (resolved by resolveNatsCredentials).
 */
export function natsConnectionOptions(nats: Config['nats'], name: string, credentials: NatsCredentials = NO_NATS_CREDENTIALS): ConnectionOptions {
  return {
    servers: natsServerList(nats.url),
    name,
    // NATS core keeps nothing for a client while it is away, so never give up: every second away is events lost.
    maxReconnectAttempts: -1,
    // nats.js closes the connection for good at the second authorization error in a row; credentials fixed on the
    // server side (a user added, a password rotated back) must be picked up without a restart.
    ignoreAuthErrorAbort: true,
    reconnectTimeWait: nats.reconnectTimeWaitMs,
    // A hung or partitioned server keeps its TCP connections open; only unanswered pings reveal it.
    pingInterval: nats.pingIntervalMs,
    maxPingOut: nats.maxPingsOutstanding,
    timeout: nats.connectTimeoutMs,
    ...(credentials.user !== undefined && { user: credentials.user, pass: credentials.pass }),
    ...(credentials.token !== undefined && { token: credentials.token }),
    ...(credentials.creds !== undefined && { authenticator: credsAuthenticator(new TextEncoder().encode(credentials.creds)) }),
    ...(credentials.nkeySeed !== undefined && { authenticator: nkeyAuthenticator(new TextEncoder().encode(credentials.nkeySeed)) }),
    ...(credentials.tls && { tls: { ...credentials.tls } }),
  };
}

/** nats.js's errors for credentials the server refuses: at login, or when a user JWT expires on a live connection. */
function isRefusal(error: unknown): boolean {
  return error instanceof errors.AuthorizationError || error instanceof errors.UserAuthenticationExpiredError;
}

/** Our typed error for what nats.js reports when a connection attempt fails: RM_NATS_AUTH_FAILED or RM_NATS_CONNECT_FAILED. */
export function connectFailure(error: unknown): RequestMirrorError {
  const cause = error instanceof Error ? error : new Error(String(error));
  if (isRefusal(cause)) {
    return new NatsAuthFailedError(`the NATS server refused the credentials: ${cause.message}`, { cause });
  }
  return new NatsConnectFailedError(`cannot connect to NATS: ${cause.message}`, { cause });
}

export interface FirstConnection {
  /** The connection once one attempt succeeded; undefined if stopped before. */
  readonly connection: Promise<NatsConnection | undefined>;
  stop(): void;
}

/**
 * Connects, trying every seed, again `nats.reconnectTimeWaitMs` after each failed round, until one succeeds. Unlike
 * nats.js's `waitOnFirstConnect`, which retries without a word, every round's failure is reported, so a wrong
 * password or an untrusted certificate is visible at once. `onFailure` is called when the reason changes (the
 * first failure included), not at every retry. From the first connection on, nats.js reconnects by itself.
 */
export function connectWhenUp(options: ConnectionOptions, retryMs: number, onFailure: (error: RequestMirrorError) => void): FirstConnection {
  let stopRequested = false;
  // A function, so the checks after an await read what stop() set meanwhile.
  const stopped = () => stopRequested;
  let wake: (() => void) | undefined;
  let lastReason: string | undefined;
  const connection = (async () => {
    while (!stopped()) {
      try {
        const nc = await connect({ ...options, waitOnFirstConnect: false });
        if (!stopped()) return nc;
        await nc.close();
        return undefined;
      } catch (error) {
        const failure = connectFailure(error);
        if (failure.message !== lastReason) onFailure(failure);
        lastReason = failure.message;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, retryMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return undefined;
  })();
  return {
    connection,
    stop() {
      stopRequested = true;
      wake?.();
    },
  };
}

/** What `followOutages` tells about a connection: each outage once, however many attempts nats.js reports in it. */
export interface OutageListener {
  /** The connection is lost: the first `disconnect` of an outage. `server` is the one nats.js names in it. */
  readonly lost: (server: string) => void;
  /** The connection is back: the first `reconnect` after `lost`. */
  readonly back: (server: string) => void;
  /** The server refused the credentials (RM_NATS_AUTH_FAILED): its first refusal since the last `back` (or start). */
  readonly refused: (error: RequestMirrorError) => void;
  /** Every other status as nats.js reports it: errors other than refused credentials, staleConnection, close, ... */
  readonly other?: (status: Status) => void;
}

/**
 * Follows `nc`'s status reports until it is closed, folding nats.js's reports of each reconnect attempt into one
 * `lost`, one `back` and at most one `refused` per outage. Resolves once nats.js has reported the close.
 *
 * nats.js (@nats-io/nats-core 3.4.0, lib/protocol.js) reports a `disconnect` whenever a transport that got as far as
 * the server's greeting closes (prepare(), l. 415-424, then disconnected(), l. 440-444): once when the connection is
 * lost, then again at every reconnect attempt the server ends, such as a refused login (-ERR 'Authorization
 * Violation', reported as an `error` first: processError(), l. 673-694). A dial refused at TCP reports nothing
 * (@nats-io/transport-node lib/node_transport.js, _closed(), l. 398-401). Each of those disconnected() calls awaits
 * the same dial loop (dialLoop(), l. 532-543), so the one that succeeds is reported as one `reconnect` per
 * `disconnect`, all at once (l. 446-451). A live connection the server ends for its credentials (a user JWT that
 * expired: -ERR 'User Authentication Expired') is dropped through the path nats.js uses for unanswered pings, which
 * reports a `staleConnection` (handleAuthError(), l. 704-716, then disconnect(), l. 427-430) although every ping
 * was answered: that one is not passed on. Nor is one reported during an outage: nats.js's ping timer runs on after a
 * disconnect until a redial rejects its pending ping (lib/heartbeats.js, _schedule() and cancel()), and with pings
 * more frequent than redials it reports a stale connection where there is none.
 */
export async function followOutages(nc: NatsConnection, listener: OutageListener): Promise<void> {
  let up = true;
  let refusalReported = false;
  let refusedNow = false;
  for await (const status of nc.status()) {
    const afterRefusal = refusedNow;
    refusedNow = status.type === 'error' && isRefusal(status.error);
    switch (status.type) {
      case 'disconnect':
        if (!up) break;
        up = false;
        listener.lost(status.server);
        break;
      case 'reconnect':
        if (up) break;
        up = true;
        refusalReported = false;
        listener.back(status.server);
        break;
      case 'error':
        if (refusedNow) {
          if (refusalReported) break;
          refusalReported = true;
          listener.refused(connectFailure(status.error));
        } else {
          listener.other?.(status);
        }
        break;
      case 'staleConnection':
        if (up && !afterRefusal) listener.other?.(status);
        break;
      default:
        listener.other?.(status);
    }
  }
}

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { allRequestsSubject } from '../contract/subjects.ts';
import type { Dispatcher } from './dispatcher.ts';

// The queue-group subscription: replicas in one group share the events (each goes to one of them), while a plain
// `nats sub '<prefix>.requests.>'` outside the group still sees every one.

export function subscribeEvents(
  nc: NatsConnection,
  nats: Pick<Config['nats'], 'subjectPrefix' | 'queueGroup'>,
  dispatcher: Pick<Dispatcher, 'handle'>,
  logger: Logger,
): Subscription {
  const subject = allRequestsSubject(nats.subjectPrefix);
  const sub = nc.subscribe(subject, {
    queue: nats.queueGroup,
    // A callback rather than an async iterator: no promise per message on the hot path.
    callback: (error, msg) => {
      if (error) {
        logger.warn({ err: error, subject }, 'subscription error');
        return;
      }
      dispatcher.handle(msg.data);
    },
  });
  logger.info({ subject, queueGroup: nats.queueGroup }, 'subscribed');
  return sub;
}

/** Follows the connection state; `/readyz` is 200 only while connected and subscribed. */
export function watchConnection(nc: NatsConnection, logger: Logger, onChange: (connected: boolean) => void): void {
  void (async () => {
    for await (const status of nc.status()) {
      switch (status.type) {
        case 'disconnect':
          logger.warn({ server: status.server }, 'NATS disconnected; reconnecting');
          onChange(false);
          break;
        case 'reconnect':
          logger.info({ server: status.server }, 'NATS reconnected');
          onChange(true);
          break;
        default:
          break;
      }
    }
  })();
}

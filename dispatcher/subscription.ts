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
    // A callback rather than an async iterator: no promise per message on the hot path, and no buffer in this
    // process (nats.js hands each message over as it parses it; `slow` pending limits exist only for iterators).
    // Memory stays within the target queues' bounds; a dispatcher that falls behind leaves its backlog in the
    // server, which cuts it off as a slow consumer past max_pending (nats-status.ts counts that).
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

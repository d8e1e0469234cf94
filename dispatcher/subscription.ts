import { PermissionViolationError, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { NatsPermissionDeniedError } from '../contract/errors.ts';
import { allRequestsSubject } from '../contract/subjects.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { DispatcherMetrics } from './metrics.ts';

export interface SubscriptionWatch {
  readonly metrics: Pick<DispatcherMetrics, 'natsPermissionDenied'>;
  /** Told why the subscription is gone (a refused permission). */
  readonly onProblem: (problem: string) => void;
}

// The queue-group subscription: replicas in one group share the events (each goes to one of them), while a plain
// `nats sub '<prefix>.requests.>'` outside the group still sees every one. It is made once and outlives outages:
// nats.js sends every subscription it holds again at each successful reconnection, one made while it was
// reconnecting included (@nats-io/nats-core 3.4.0, lib/protocol.js: dial() l. 494, sendSubscriptions() l. 923-937).
// Only a refused permission (below) or a drain ends it.

export function subscribeEvents(
  nc: NatsConnection,
  nats: Pick<Config['nats'], 'subjectPrefix' | 'queueGroup'>,
  dispatcher: Pick<Dispatcher, 'handle'>,
  logger: Logger,
  watch: SubscriptionWatch,
): Subscription {
  const subject = allRequestsSubject(nats.subjectPrefix);
  const sub = nc.subscribe(subject, {
    queue: nats.queueGroup,
    // A callback rather than an async iterator: no promise per message on the hot path, and no buffer in this
    // process (nats.js hands each message over as it parses it; `slow` pending limits exist only for iterators).
    // Memory stays within the target queues' bounds; a dispatcher that falls behind leaves its backlog in the
    // server, which cuts it off as a slow consumer past max_pending (nats-status.ts counts that).
    callback: (error, msg) => {
      if (error instanceof PermissionViolationError) {
        // nats.js has closed the subscription: nothing arrives any more, and the server will not say so again.
        const denied = new NatsPermissionDeniedError(`the NATS server refused the subscription to ${subject} (queue group ${nats.queueGroup}): ${error.message}`, {
          cause: error,
        });
        watch.metrics.natsPermissionDenied.inc();
        watch.onProblem(denied.message);
        logger.error({ err: denied, subject }, 'subscription refused; receiving nothing');
        return;
      }
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

import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PLUGIN_BATCH_CONTENT_TYPE, PLUGIN_BATCH_PATH } from '../contract/plugin-batch.ts';
import { requestSubject } from '../contract/subjects.ts';
import type { CapturePolicy } from './capture-policy.ts';
import { PluginBatchInvalidError } from './errors.ts';
import { publishEvent } from './event-output.ts';
import { captureHeaders } from './header-capture.ts';
import type { TapMetrics } from './metrics.ts';
import { decodePluginBatch, type FramedSnapshot } from './plugin-frames.ts';
import { originalOfSnapshot } from './plugin-request.ts';
import { createPluginReports } from './plugin-reports.ts';
import type { Publisher } from './publisher.ts';

// The listener the Traefik plugin POSTs batches of snapshots to. Each snapshot becomes the same CloudEvent the
// forwardAuth and mirror listeners publish, through the same capture policy, header capture and event builder;
// only `attachment` says "plugin". This listener is off the user's path (the plugin never waits for it), so it
// answers honestly: 204 when the batch was taken, 400 when it is malformed, 413 when it is too large. A batch is
// taken whatever NATS does: events that cannot be published are dropped and counted here as for the other listeners.

export interface PluginIngestDeps {
  readonly policy: () => CapturePolicy;
  readonly publisher: Publisher;
  readonly metrics: TapMetrics;
  readonly logger: Logger;
  readonly source: string;
  readonly newId: (time: number) => string;
  readonly maxBatchBytes: number;
  readonly keepAliveTimeoutMs: number;
}

export function createPluginIngest(deps: PluginIngestDeps): FastifyInstance {
  const { metrics, logger, source, newId } = deps;
  const reports = createPluginReports(metrics.registry);
  const received = metrics.received.labels('plugin');
  const skipped = metrics.skipped.labels('plugin');
  const app = Fastify({ logger: false, bodyLimit: deps.maxBatchBytes, keepAliveTimeout: deps.keepAliveTimeoutMs });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(PLUGIN_BATCH_CONTENT_TYPE, { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });

  function publishSnapshot({ snapshot, body }: FramedSnapshot): void {
    const original = originalOfSnapshot(snapshot);
    const decision = deps.policy().decide(original);
    received.inc();
    if (decision === null) {
      skipped.inc();
      return;
    }
    const headers = captureHeaders(snapshot.headers, decision, 'plugin');
    if (headers.malformedCookie) metrics.rejectedInput.inc({ reason: 'malformed_cookie' });
    const captured =
      decision.bodyLimit === 0
        ? null
        : {
            bytes: body.length > decision.bodyLimit ? body.subarray(0, decision.bodyLimit) : body,
            receivedBytes: Math.max(snapshot.receivedBytes, body.length),
            declaredLength: snapshot.declaredLength < 0 ? null : snapshot.declaredLength,
            // A body the upstream never read to its end: what arrived is all there is.
            interrupted: !snapshot.complete,
          };
    if (captured?.interrupted === true) metrics.truncated.inc({ reason: 'unread' });
    const subject = requestSubject(deps.policy().subjectPrefix, original.method);
    publishEvent(deps, subject, { id: newId(snapshot.timeMs), time: snapshot.timeMs, source, attachment: 'plugin', original, headers, body: captured });
  }

  app.post(PLUGIN_BATCH_PATH, (request, reply) => {
    let batch;
    try {
      batch = decodePluginBatch(request.body as Buffer);
    } catch (error) {
      if (!(error instanceof PluginBatchInvalidError)) throw error;
      metrics.rejectedInput.inc({ reason: 'plugin_batch_invalid' });
      logger.warn({ err: error }, 'plugin batch refused');
      return reply.code(400).type('text/plain').send(`${error.message}\n`);
    }
    reports.record(batch.header);
    for (const framed of batch.snapshots) {
      try {
        publishSnapshot(framed);
      } catch (error) {
        metrics.publishErrors.inc();
        metrics.dropped.inc({ reason: 'publish_error' });
        logger.error({ err: error }, 'building or publishing a plugin event failed');
      }
    }
    return reply.code(204).send();
  });
  return app;
}

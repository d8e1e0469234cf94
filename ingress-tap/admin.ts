import Fastify, { type FastifyInstance } from 'fastify';
import type { TapMetrics } from './metrics.ts';
import type { Publisher } from './publisher.ts';

// The operator's listener. It is not on Traefik's path, so plain HTTP status codes are right here: /readyz says
// 503 while the tap cannot publish, for a Kubernetes readiness probe or an alert, without affecting users.
// `detail` adds lines that do not change readiness (a broken Kubernetes watch: the last known targets still apply).

export function createAdminServer(publisher: Publisher, metrics: TapMetrics, detail: () => readonly string[] = () => []): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/healthz', (_request, reply) => {
    void reply.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_request, reply) => {
    const ready = publisher.isConnected();
    void reply
      .code(ready ? 200 : 503)
      .type('text/plain')
      .send([ready ? 'ready' : 'not ready: no NATS connection', ...detail()].join('\n') + '\n');
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
  return app;
}

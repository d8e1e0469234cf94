import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseCommandLine } from '../../../contract/command-line.ts';
import Fastify from 'fastify';

// The ceiling for any fastify-based tap: a fastify app that answers 200 with an empty body and does nothing else.
// With --tls-cert/--tls-key it serves HTTP/2 over TLS (HTTP/1.1 still allowed), which is what Traefik's forwardAuth
// negotiates when its `tls` option is set. Prints `listening on HOST:PORT` once bound.

const { values } = parseCommandLine({
  name: 'node tools/bench/peers/bare-fastify.ts',
  usage: `
usage: node tools/bench/peers/bare-fastify.ts [--tls-cert FILE --tls-key FILE]
A fastify app that answers 200 and nothing else (a benchmark peer); prints "listening on HOST:PORT".`,
  options: {
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
  },
});

const cert = values['tls-cert'];
const key = values['tls-key'];
const handler = (_req: unknown, reply: { code(status: number): { send(): unknown } }) => {
  reply.code(200).send();
};
let port: number;
if (cert && key) {
  const app = Fastify({
    logger: false,
    http2: true,
    https: { allowHTTP1: true, cert: readFileSync(cert), key: readFileSync(key) },
    keepAliveTimeout: 95_000,
  });
  app.all('/*', handler);
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
} else {
  const app = Fastify({ logger: false, keepAliveTimeout: 95_000 });
  app.all('/*', handler);
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
}
process.stdout.write(`listening on 127.0.0.1:${port}\n`);

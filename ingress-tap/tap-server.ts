import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Attachment } from './forwarded-request.ts';
import type { RequestHandler } from './request-handler.ts';

// A fastify instance for one of Traefik's two paths into the tap. Traefik hands any non-2xx from forwardAuth to the
// user, so every way fastify or Node would answer an error (no route, unsupported method or content type, body
// limit, bad URL, parse errors, oversized headers, Expect, CONNECT, closing) is turned into a 200 here.

// Go's http.Server (Traefik's) accepts 1 MiB of headers plus 4 KiB of slack; the tap must take whatever Traefik took.
const MAX_HEADER_BYTES = 1024 * 1024 + 64 * 1024;
const HALF_OPEN_GRACE_MS = 5000;
const RAW_OK = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

export interface TapServerOptions {
  readonly attachment: Attachment;
  readonly handler: RequestHandler;
  readonly keepAliveTimeoutMs: number;
}

export function createTapServer(options: TapServerOptions): FastifyInstance {
  const { attachment, handler } = options;
  const failedSockets = new WeakSet<Socket>();
  const app = Fastify({
    logger: false,
    http: { maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false },
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // Headers and the whole request may take as long as an idle keep-alive connection may wait, so neither cuts
    // a Traefik connection short before keepAliveTimeout would; Traefik's own client gives up after 30 s anyway.
    requestTimeout: options.keepAliveTimeoutMs + 30_000,
    // A connection closing during shutdown must still get 200s for what is already in flight on it.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: MAX_HEADER_BYTES },
    frameworkErrors(error, request, reply) {
      handler.rejected(error.code.toLowerCase(), error);
      reply.hijack();
      handler.handle(request.raw, reply.raw, attachment);
    },
    clientErrorHandler(error: Error & { code?: string }, socket: Socket) {
      // A socket errs once as far as we are concerned: the parser may report more once it has failed.
      if (failedSockets.has(socket)) return;
      failedSockets.add(socket);
      handler.rejected((error.code ?? 'client_error').toLowerCase(), error);
      // Node's own handler makes the same check: never write a second status line into a response under way.
      // A request already answered whose body then breaks off has had its 200; a second one would be unsolicited.
      const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
      if (error.code !== 'ECONNRESET' && socket.writable && inFlight?.headersSent !== true && !handler.answeredMidBody(socket)) {
        socket.end(RAW_OK);
        // The parser is dead but the socket still reads (HTTP servers allow half-open sockets): a client that
        // neither closes nor sends must not hold it for ever.
        socket.setTimeout(HALF_OPEN_GRACE_MS, () => socket.destroy());
      } else {
        socket.destroy();
      }
    },
  });
  app.server.headersTimeout = options.keepAliveTimeoutMs + 1000;

  // All the work happens in onRequest, before fastify looks at content types or body limits.
  app.addHook('onRequest', (request, reply, done) => {
    reply.hijack();
    handler.handle(request.raw, reply.raw, attachment);
    done();
  });
  app.setErrorHandler((error, request, reply) => {
    handler.rejected('handler_error', error);
    if (!reply.sent && !reply.raw.headersSent) {
      reply.hijack();
      handler.handle(request.raw, reply.raw, attachment);
    }
  });
  for (const method of ['MKCALENDAR', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'ACL', 'BIND', 'UNBIND', 'REBIND', 'LINK', 'UNLINK', 'CHECKOUT', 'MERGE', 'MKACTIVITY', 'NOTIFY', 'PURGE', 'SOURCE', 'SUBSCRIBE', 'UNSUBSCRIBE', 'M-SEARCH']) {
    app.addHttpMethod(method, { hasBody: true });
  }
  app.all('*', unreachable);
  app.setNotFoundHandler(unreachable);

  // Node answers an Expect other than 100-continue with 417 unless someone listens for it.
  app.server.on('checkExpectation', (req, res) => {
    handler.rejected('unsupported_expect', req.headers.expect);
    app.server.emit('request', req, res);
  });
  // Node closes a CONNECT without a listener; there is no tunnel to give, so answer and close.
  app.server.on('connect', (_req, socket: Socket) => {
    handler.rejected('connect_method', undefined);
    socket.end(RAW_OK);
  });
  return app;
}

// onRequest has always answered by the time fastify would call a route handler.
function unreachable(): void {}

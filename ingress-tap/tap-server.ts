import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyHttp2SecureOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Attachment } from './forwarded-request.ts';
import { serveH2Streams } from './h2-stream.ts';
import type { TlsMaterial } from './listener-tls.ts';
import type { RequestHandler } from './request-handler.ts';

// A fastify instance for one of Traefik's two paths into the tap. Traefik hands any non-2xx from forwardAuth to the
// user, so every way fastify or Node would answer an error (no route, unsupported method or content type, body
// limit, bad URL, parse errors, oversized headers, Expect, CONNECT, closing) is turned into a 200 here.
//
// With TLS the listener speaks HTTP/2 and HTTP/1.1, chosen by ALPN. Traefik's forwardAuth client keeps only 2 idle
// HTTP/1.1 connections per host and closes every other one after its call, so under concurrency it dials a new
// connection for most calls; over HTTP/2 it multiplexes them all on one connection. Its HTTP/2 streams are served
// without fastify (h2-stream.ts); fastify serves HTTP/1.1, on either listener.

// Go's http.Server (Traefik's) accepts 1 MiB of headers plus 4 KiB of slack; the tap must take whatever Traefik took.
const MAX_HEADER_BYTES = 1024 * 1024 + 64 * 1024;
const HALF_OPEN_GRACE_MS = 5000;
const RAW_OK = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
// Node's HTTP/2 server (nghttp2) fails the whole session, every stream on the connection with it, on one header
// field over 64 KiB after HPACK (GOAWAY COMPRESSION_ERROR; nghttp2's NGHTTP2_HD_MAX_NV) and on a header block
// spread over more CONTINUATION frames than it allows (GOAWAY INTERNAL_ERROR), whatever
// SETTINGS_MAX_HEADER_LIST_SIZE says (seen with Node 24.22 and Go's client). Advertising 64 KiB makes Go's client
// (Traefik's) refuse a larger request locally, so it fails alone (Traefik answers it 500) instead of taking the
// requests in flight on the same connection down with it, which any client could then cause at will.
const MAX_H2_HEADER_LIST_BYTES = 65_535;
// Node's default is 128 header fields per HTTP/2 request, past which it resets the stream (ENHANCE_YOUR_CALM) and
// Traefik answers 500. Go counts 32 bytes per field towards the list size above, so 64 KiB holds at most 2048.
const MAX_H2_HEADER_FIELDS = 4096;
// Per HTTP/2 session; Node's default (10 MB) is below what Traefik's hundreds of concurrent streams may hold.
const MAX_SESSION_MEMORY_MB = 64;

export type TapServer = FastifyInstance<Server | Http2SecureServer, IncomingMessage, ServerResponse>;
export type ConnectionProtocol = 'http/1.1' | 'h2';

export interface TapServerOptions {
  readonly attachment: Attachment;
  readonly handler: RequestHandler;
  readonly keepAliveTimeoutMs: number;
  /** Serve HTTPS with HTTP/2 and HTTP/1.1 by ALPN; plain HTTP/1.1 when absent. */
  readonly tls?: TlsMaterial | undefined;
  /** Called once per accepted connection (after the TLS handshake, with TLS), with its protocol. */
  readonly onConnection: (protocol: ConnectionProtocol) => void;
}

export function createTapServer(options: TapServerOptions): TapServer {
  const { attachment, handler, keepAliveTimeoutMs, tls } = options;
  const failedSockets = new WeakSet<Socket>();
  // Headers and the whole request may take as long as an idle keep-alive connection may wait, so neither cuts
  // a Traefik connection short before keepAliveTimeout would; Traefik's own client gives up after 30 s anyway.
  const requestTimeout = keepAliveTimeoutMs + 30_000;
  const headersTimeout = keepAliveTimeoutMs + 1000;
  const common: FastifyServerOptions<Server | Http2SecureServer> = {
    logger: false,
    keepAliveTimeout: keepAliveTimeoutMs,
    requestTimeout,
    // A connection closing during shutdown must still get 200s for what is already in flight on it.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    frameworkErrors(error, request, reply) {
      handler.rejected(error.code.toLowerCase(), error);
      reply.hijack();
      // fastify only sees HTTP/1.1 (serveH2Streams), whatever the options' raw types say.
      handler.handle(request.raw as IncomingMessage, reply.raw as ServerResponse, attachment);
    },
    clientErrorHandler(error: Error & { code?: string }, socket: Socket) {
      // With TLS, Node reports a failed handshake here too: there is no HTTP yet to answer, only a socket to drop.
      if ((socket as Partial<TLSSocket>).alpnProtocol === null) {
        handler.rejected(`tls_${(error.code ?? 'handshake_error').toLowerCase()}`, error);
        socket.destroy();
        return;
      }
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
  };
  // fastify's instance type is invariant in its raw server, so one type for both kinds of listener takes a cast;
  // fastify sees HTTP/1.1 requests only, on either listener.
  const app = (tls
    ? Fastify({
        ...common,
        http2: true,
        // An HTTP/2 session idle for this long is closed (GOAWAY); above Traefik's 90 s idle timeout like keep-alive.
        http2SessionTimeout: keepAliveTimeoutMs,
        https: {
          allowHTTP1: true,
          cert: tls.cert,
          key: tls.key,
          settings: { maxHeaderListSize: MAX_H2_HEADER_LIST_BYTES },
          maxHeaderListPairs: MAX_H2_HEADER_FIELDS,
          maxSessionMemory: MAX_SESSION_MEMORY_MB,
          // The HTTP/1.1 fallback reads the http.Server settings from here; fastify sets them only on a plain server.
          maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false, keepAliveTimeout: keepAliveTimeoutMs, requestTimeout, headersTimeout,
        },
      } as FastifyHttp2SecureOptions<Http2SecureServer>)
    : Fastify({ ...common, http: { maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false } } as FastifyServerOptions)) as unknown as TapServer;
  if (!tls) (app.server as Server).headersTimeout = headersTimeout;
  // Node keeps the first 2000 header fields of an HTTP/1.1 request by default and drops the rest without a word;
  // Traefik forwards any number. MAX_HEADER_BYTES bounds them instead (read by the HTTP/1.1 fallback of TLS too).
  (app.server as Server).maxHeadersCount = 0;

  if (tls) {
    const server = app.server as Http2SecureServer;
    server.on('secureConnection', (socket: TLSSocket) => {
      options.onConnection(socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1');
    });
    // Node destroys the session after a session error (a reset socket, a broken frame); nothing else to do.
    server.on('sessionError', (error: Error & { code?: string }) => {
      handler.rejected(`h2_session_${(error.code ?? 'error').toLowerCase()}`, error);
    });
    serveH2Streams(server, handler, attachment);
  } else {
    app.server.on('connection', () => {
      options.onConnection('http/1.1');
    });
  }

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
  // Every request reaches the onRequest hook: the methods fastify knows through this route, Node's other methods
  // (PROPFIND, PURGE…) through fastify's not-found route, which runs the same hooks (fastify lib/four-oh-four.js).
  // Node's HTTP/1.1 parser refuses any other token (hpe_invalid_method); HTTP/2, which lets any through, does not
  // come here.
  app.all('*', unreachable);

  // Node answers an Expect other than 100-continue with 417 unless someone listens for it.
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    handler.rejected('unsupported_expect', req.headers.expect);
    app.server.emit('request', req, res);
  });
  // Node closes a CONNECT without a listener; there is no tunnel to give, so answer 200 and close.
  app.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    handler.rejected('connect_method', undefined);
    socket.end(RAW_OK);
  });
  return app;
}

// onRequest has always answered by the time fastify would call a route handler.
function unreachable(): void {}

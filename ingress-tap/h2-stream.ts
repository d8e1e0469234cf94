import type { IncomingHttpHeaders } from 'node:http';
import type { Http2SecureServer, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Attachment } from './forwarded-request.ts';
import type { RequestHandler } from './request-handler.ts';

// The TLS listener's HTTP/2 requests, served from Node's core stream API ('stream' events) rather than its
// compatibility layer, which fastify's request listener switches on (node lib/internal/http2/core.js, setupCompat).
// The compatibility layer wraps each stream in two more streams (Http2ServerRequest, Http2ServerResponse) with six
// listeners on the stream, and fastify adds its request and reply on top. Measured with one Go HTTP/2 client
// connection sending 1,000 forwardAuth calls per second straight to the tap, 3 rounds, interleaved: the tap's CPU
// per request went from 155–182 µs to 123–145 µs, and the median answer from 222–233 µs to 178–191 µs.
// HTTP/1.1 on the same listener (ALPN) still goes through fastify, whose request listener Node calls for it.

/**
 * An HTTP/2 request in the members of Node's IncomingMessage that the request handler reads: headers, raw headers,
 * method, URL (`:path`), the connection's peer, and the body, which is the stream's readable side. No `complete`:
 * the handler drains an HTTP/2 body whether or not it has ended, which costs nothing when it has.
 */
export class StreamRequest {
  // Private, so that the type is nominal: Node's Http2ServerRequest has every public member below.
  readonly #stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly method: string | undefined;
  readonly url: string | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) {
    this.#stream = stream;
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.method = headers[':method'] as string | undefined;
    this.url = headers[':path'] as string | undefined;
  }

  get stream(): ServerHttp2Stream {
    return this.#stream;
  }

  /** The connection's TLS socket, shared by all its streams; read for the peer's address only. */
  get socket(): Pick<Socket, 'remoteAddress'> {
    return this.#stream.session?.socket ?? NO_SOCKET;
  }

  on(event: string, listener: StreamListener): this {
    this.#stream.on(event, listener);
    return this;
  }

  once(event: string, listener: StreamListener): this {
    this.#stream.once(event, listener);
    return this;
  }

  off(event: string, listener: StreamListener): this {
    this.#stream.off(event, listener);
    return this;
  }

  resume(): this {
    this.#stream.resume();
    return this;
  }
}

type StreamListener = Parameters<ServerHttp2Stream['on']>[1];

const NO_SOCKET: Pick<Socket, 'remoteAddress'> = { remoteAddress: undefined };

/**
 * Takes the HTTP/2 streams of `server` from Node's compatibility layer and hands each to `handler` as a
 * StreamRequest with the stream as its response. Must be called before the server accepts a connection.
 *
 * What the compatibility layer did and the tap still needs is done here (node lib/internal/http2/compat.js,
 * onServerStream): `Expect: 100-continue` gets its interim 100 at once, since a client that waits for it (Go's
 * waits up to its ExpectContinueTimeout) would otherwise delay the body; any other Expect is counted
 * (`unsupported_expect`) and served; CONNECT, which has no tunnel to give, is counted (`connect_method`) and
 * answered 200 without a body. Stream errors (a reset by the client, a protocol error on one stream) are counted as
 * `h2_stream_<code>`.
 */
export function serveH2Streams(server: Http2SecureServer, handler: RequestHandler, attachment: Attachment): void {
  // The only 'stream' listener at this point is the compatibility layer's, bound to the server at construction.
  server.removeAllListeners('stream');
  // One listener for every stream, rather than a closure made per request.
  const onStreamError = (error: Error & { code?: string }) => {
    handler.rejected(`h2_stream_${(error.code ?? 'error').toLowerCase()}`, error);
  };
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    stream.on('error', onStreamError);
    if (headers[':method'] === 'CONNECT') {
      handler.rejected('connect_method', undefined);
      // No content-length: a 2xx to CONNECT must not carry one (RFC 9110 section 9.3.6); the end of the stream
      // ends the tunnel.
      stream.respond({ ':status': 200 }, { endStream: true });
      return;
    }
    const { expect } = headers;
    if (expect !== undefined) {
      if (expect.toLowerCase() !== '100-continue') handler.rejected('unsupported_expect', expect);
      else if (!stream.endAfterHeaders) stream.additionalHeaders({ ':status': 100 });
    }
    handler.handle(new StreamRequest(stream, headers, rawHeaders), stream, attachment);
  });
}

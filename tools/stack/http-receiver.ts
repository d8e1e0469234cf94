import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv6, type AddressInfo, type Socket } from 'node:net';

// A real HTTP server on a free port (of a loopback address unless told otherwise) that records what it receives, standing in for a webhook target or an
// upstream. `respond` decides the answer; the default is 204.

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
  readonly body: Buffer;
  readonly receivedAt: number;
}

export type Responder = (req: ReceivedRequest, res: ServerResponse) => void | Promise<void>;

export interface HttpReceiver {
  readonly url: string;
  readonly port: number;
  readonly requests: ReceivedRequest[];
  /** Resolves once `count` requests have arrived in all, or rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  respond: Responder;
  /** Client connections open now (closed ones leave once the server sees them close). */
  openConnections(): number;
  close(): Promise<void>;
}

/** `host` is the address to listen on: `::` listens dual-stack, so IPv4 and IPv4-mapped connections reach it too. */
export async function startHttpReceiver(respond?: Responder, port = 0, host = '127.0.0.1'): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const receiver: HttpReceiver = {
    url: '',
    port: 0,
    requests,
    respond:
      respond ??
      ((_req, res) => {
        res.writeHead(204).end();
      }),
    openConnections: () => sockets.size,
    waitFor(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (requests.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(requests.slice());
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} requests, received ${requests.length} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
  // Takes whatever Traefik forwards (a request head of up to 1 MiB and any number of fields), as an upstream must
  // for the tests of what the tap sees: Node's defaults (16 KiB, 2000 fields) would refuse or cut it first.
  const server = createServer({ maxHeaderSize: 2 * 1024 * 1024 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        receivedAt: Date.now(),
      };
      requests.push(received);
      for (const w of [...waiters]) w();
      void Promise.resolve(receiver.respond(received, res)).catch((error: unknown) => {
        res.destroy(error as Error);
      });
    });
  });
  server.maxHeadersCount = 0;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const actual = (server.address() as AddressInfo).port;
  return Object.assign(receiver, { url: `http://${isIPv6(host) ? `[${host}]` : host}:${actual}`, port: actual });
}

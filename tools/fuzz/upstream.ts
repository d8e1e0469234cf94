import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// The upstream behind both Traefik routers, counting what Traefik let through after the tap's forwardAuth answer
// (the forwardAuth router's requests, told apart by their Host). Node's parser refuses some requests Traefik
// forwards (a method it does not know, say); those are counted too, from the bytes it refused, so that every
// forwardAuth call the tap answered is found again here.

export interface CountingUpstream {
  readonly url: string;
  /** Requests for `host` answered 201. */
  letThrough(): number;
  /** Requests for `host` that Node's parser refused (Traefik then answers the client 4xx or 502). */
  refusedByNode(): number;
  close(): Promise<void>;
}

/** `host`: the forwardAuth router's host name; Traefik passes it on as the request's Host. */
export async function startCountingUpstream(host: string): Promise<CountingUpstream> {
  const hostLine = new RegExp(`\\r\\nhost: ${host.replaceAll('.', '\\.')}\\r\\n`, 'i');
  let letThrough = 0;
  let refused = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer({ maxHeaderSize: 2 * 1024 * 1024 }, (req, res) => {
    if (req.headers.host === host) letThrough++;
    req.resume();
    req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end('upstream'));
  });
  server.maxHeadersCount = 0;
  server.on('clientError', (error: Error & { rawPacket?: Buffer }, socket: Socket) => {
    if (error.rawPacket && hostLine.test(error.rawPacket.toString('latin1'))) refused++;
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    letThrough: () => letThrough,
    refusedByNode: () => refused,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

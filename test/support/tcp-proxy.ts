import { createServer, connect, type Server, type Socket } from 'node:net';

// A loopback TCP relay in front of a real server, so a test can make that server unreachable for one client (cut
// every connection and refuse new ones) and reachable again, without stopping a server other tests share.

export interface TcpProxy {
  readonly port: number;
  /** Client connections relayed so far, and how many of them are still open. */
  readonly accepted: number;
  readonly open: number;
  /** Bytes relayed from clients to the server so far: what a client has written, even to a frozen server. */
  readonly bytesToServer: number;
  /** Closes every relayed connection and refuses new ones until `restore()`. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, host = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  let accepted = 0;
  let bytesToServer = 0;
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, host);
        sockets.add(client).add(upstream);
        clients.add(client);
        accepted++;
        const drop = () => {
          clients.delete(client);
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.on('data', (chunk: Buffer) => {
          bytesToServer += chunk.length;
        });
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, host, () => {
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    clients.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => { resolve(); }));
  };
  await listen();
  return {
    get port() { return port; },
    get accepted() { return accepted; },
    get open() { return clients.size; },
    get bytesToServer() { return bytesToServer; },
    cut: stop,
    restore: listen,
    close: stop,
  };
}

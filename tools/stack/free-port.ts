import { createServer } from 'node:net';

// A port free on loopback right now, for children that must be told their port up front (Traefik, the tap and
// dispatcher listeners); callers that can listen on port 0 themselves should. Ports are drawn below Linux's default
// ephemeral range (32768-60999): a port from that range, once released, is soon reused as the source port of some
// outgoing connection, and under heavy traffic on the machine the child's bind then fails.

const LOW = 20_000;
const HIGH = 32_767;
// Every port handed out by this process, never handed out again: a port is free again as soon as its probe closes,
// and a stack draws five in a row for one config, where a repeat made the tap refuse its own config (two listeners
// on one port) about once in a few CI runs.
const handedOut = new Set<number>();

function tryListen(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => {
      resolve(undefined);
    });
    server.listen(port, host, () => {
      const address = server.address();
      const got = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => {
        resolve(got);
      });
    });
  });
}

/** A port free on `host` now and never returned before by this process. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const candidate = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(candidate)) continue;
    const port = await tryListen(candidate, host);
    if (port !== undefined) return handOut(port);
  }
  for (let i = 0; i < 100; i++) {
    const any = await tryListen(0, host);
    if (any === undefined) break;
    if (!handedOut.has(any)) return handOut(any);
  }
  throw new Error(`no free port on ${host}`);
}

function handOut(port: number): number {
  handedOut.add(port);
  return port;
}

/** `preferred` when it is free on `host`, else any free port: fixed, memorable ports for the demo with a fallback. */
export async function portOrFree(preferred: number, host = '127.0.0.1'): Promise<number> {
  return (await tryListen(preferred, host)) ?? freePort(host);
}

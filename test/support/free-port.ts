import { createServer } from 'node:net';

// A port the kernel just handed out on loopback. Another process could take it before ours binds, so callers that
// can listen on port 0 themselves should; this is for children that must be told their port up front (Traefik,
// the tap and dispatcher listeners).
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** `preferred` when it is free on `host`, else any free port: fixed, memorable ports for the demo with a fallback. */
export function portOrFree(preferred: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => {
      resolve(freePort(host));
    });
    server.listen(preferred, host, () => {
      server.close(() => {
        resolve(preferred);
      });
    });
  });
}

import { connect } from 'node:net';
import type { Stack } from '../../tools/stack/stack.ts';

// Requests written byte for byte, for what an HTTP client library would normalise or refuse (a Host header's
// spelling, a megabyte of headers, raw UTF-8 in a value). They go to Traefik, never to the tap: what the tap sees
// is then what real Traefik sends.

/**
 * Writes a raw request (a string, or bytes for values that are not ASCII) to Traefik's web entrypoint, reads until
 * Traefik closes, and returns the status code it answered; rejects when nothing closes within `timeoutMs`.
 */
export function sendHead(stack: Stack, head: string | Buffer, timeoutMs = 10_000): Promise<number> {
  const traefik = stack.traefik;
  if (!traefik) throw new Error('no Traefik');
  return new Promise((resolve, reject) => {
    const socket = connect(traefik.webPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
      if (m) resolve(Number(m[1]));
      else reject(new Error(`no status line: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    });
    // Not end(): Go's server takes a half-closed connection for a client gone away, and answers 499.
    socket.write(head);
  });
}


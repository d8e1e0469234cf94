import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, statusCodes, target, useTap } from './tap-harness.ts';

// A body the tap keeps none or only part of: the tap answers 200 before it has all arrived, then reads and discards
// the rest. A parse error in that rest comes after the answer, so it must not draw a second status line (an
// unsolicited response that the client, Traefik, would read as the answer to its next request); once the body has
// ended, the connection is an ordinary keep-alive one again and a malformed next request gets its 200.

const KEPT = 10;
const { tap } = useTap({
  config: {
    targets: [target('kept', { methods: ['POST'], maxBodyBytes: KEPT }), target('no-bodies', { methods: ['PUT'], maxBodyBytes: 0 })],
  },
});

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

/** A raw connection to the mirror listener. */
function open(): { socket: Socket; replies: () => string; closed: () => boolean } {
  const socket = netConnect(tap.mirrorPort, '127.0.0.1');
  sockets.push(socket);
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
  });
  return { socket, replies: () => Buffer.concat(chunks).toString('latin1'), closed: () => closed };
}

const cases = [
  ['no target wants', 'DELETE'],
  ['no target takes the body of', 'PUT'],
  [`the tap keeps ${KEPT} bytes of`, 'POST'],
] as const;

describe('the unkept rest of a body', () => {
  it.each(cases)('answers a request %s once, when the rest of its chunked body is malformed', async (_name, method) => {
    const conn = open();
    // More than the tap keeps, in a chunk that is still open: the answer comes before the body's end.
    conn.socket.write(`${method} /rest HTTP/1.1\r\nHost: r.example\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n${'a'.repeat(KEPT + 1)}`);
    await eventually('the answer', () => statusCodes(conn.replies()).length === 1);
    conn.socket.write(`${'a'.repeat(0x20 - KEPT - 1)}\r\nzz\r\n`);
    await eventually('the tap closes the connection', () => conn.closed());
    expect(statusCodes(conn.replies())).toEqual([200]);
  });

  it.each(cases)('answers a malformed request that follows a request %s on the same connection, once its body has ended', async (_name, method) => {
    const conn = open();
    const rejectedBefore = await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'hpe_invalid_header_token' });
    conn.socket.write(`${method} /rest HTTP/1.1\r\nHost: r.example\r\nContent-Length: ${3 * KEPT}\r\n\r\n${'a'.repeat(KEPT + 1)}`);
    await eventually('the first answer', () => statusCodes(conn.replies()).length === 1);
    conn.socket.write(`${'a'.repeat(2 * KEPT - 1)}GET /next HTTP/1.1\r\nHost: r.example\r\nBad Header: x\r\n\r\n`);
    await eventually('the tap counts the malformed request', async () => (await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'hpe_invalid_header_token' })) === rejectedBefore + 1);
    await eventually('the second answer', () => statusCodes(conn.replies()).length === 2);
    expect(statusCodes(conn.replies())).toEqual([200, 200]);
  });
});

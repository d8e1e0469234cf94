import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startNatsServer } from '../../tools/stack/nats-server.ts';
import { eventually, startTap, statusCodes, target, type TapHarness } from './tap-harness.ts';

// The tap's close, as main.ts runs it on SIGTERM: the listeners stop, what is in flight is answered, and every
// answered request's event is handed to the publisher before the publisher itself closes.

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function started(): Promise<TapHarness> {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const tap = await startTap({ natsUrl: nats.url, config: { targets: [target('all')] } });
  cleanups.push(() => tap.close());
  return tap;
}

/**
 * Opens a raw connection to the mirror listener, sends `head` and waits for the tap to count the request, then closes
 * the tap while `during` acts on the connection, and closes the publisher after it. Returns what was answered.
 */
async function closeDuring(tap: TapHarness, head: string, during: (socket: Socket) => void): Promise<() => string> {
  const socket = netConnect(tap.mirrorPort, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  let replies = '';
  socket.on('data', (c: Buffer) => (replies += c.toString('latin1')));
  socket.write(head);
  await eventually('the tap to count the request', async () => (await tap.metric('request_mirror_tap_requests_received_total', { attachment: 'mirror' })) === 1);
  const closing = tap.tap.close();
  during(socket);
  await closing;
  await tap.publisher.close();
  return () => replies;
}

describe('tap shutdown', () => {
  it('publishes the event of a request whose body ends while the tap is closing, before the publisher closes', async () => {
    const tap = await started();
    const replies = await closeDuring(tap, 'POST /last HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234', (socket) => socket.end('56789'));
    await eventually('the answer', () => replies().length > 0);
    expect(replies()).toMatch(/^HTTP\/1\.1 200 /);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body?.data).toBe('0123456789');
    expect(await tap.metric('request_mirror_tap_events_dropped_total')).toBe(0);
  });

  it('publishes the event of a request whose body breaks off while the tap is closing, before the publisher closes', async () => {
    const tap = await started();
    await closeDuring(tap, 'POST /cut HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234', (socket) => socket.destroy());
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body).toMatchObject({ data: '01234', interrupted: true });
    expect(await tap.metric('request_mirror_tap_events_dropped_total')).toBe(0);
  });

  it('answers 200, not 503, to a request that reaches an open connection while the tap is closing', async () => {
    const tap = await started();
    // The rest of the first body and a second request behind it, on the connection the close waits for.
    const replies = await closeDuring(tap, 'POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab', (socket) => socket.end('cdGET /second HTTP/1.1\r\nHost: a\r\n\r\n'));
    await eventually('two answers', () => statusCodes(replies()).length === 2);
    expect(statusCodes(replies())).toEqual([200, 200]);
    const received = await tap.waitForEvents(2);
    expect(received.map((r) => r.event.data.path).sort()).toEqual(['/first', '/second']);
    expect(await tap.metric('request_mirror_tap_connections_total', { listener: 'mirror', protocol: 'http/1.1' })).toBe(1);
  });

  it('has closed every listener once close resolves', async () => {
    const tap = await started();
    const ports = [tap.forwardAuthPort, tap.mirrorPort, Number(new URL(tap.pluginUrl).port), Number(new URL(tap.adminUrl).port)];
    await tap.tap.close();
    const refused = await Promise.all(
      ports.map(
        (port) =>
          new Promise<string>((resolve) => {
            const socket = netConnect(port, '127.0.0.1');
            socket.once('connect', () => {
              socket.destroy();
              resolve('connected');
            });
            socket.once('error', (error: NodeJS.ErrnoException) => {
              resolve(error.code ?? 'error');
            });
          }),
      ),
    );
    expect(refused).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
  });
});

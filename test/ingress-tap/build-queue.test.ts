import { connect as netConnect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_UNBUILT_BYTES, MAX_UNBUILT_EVENTS } from '../../ingress-tap/request-handler.ts';
import type { Publisher } from '../../ingress-tap/publisher.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { eventually, observePublishes, startTap, statusCodes, target, type TapHarness } from './tap-harness.ts';

// The tap answers each request at once and builds its event in one pass per event-loop turn. The events waiting for
// that pass are bounded (MAX_UNBUILT_EVENTS events, MAX_UNBUILT_BYTES captured body bytes): past the bound an event
// is dropped and counted, never queued without limit. The tests make one turn bring more than the bound: requests
// written on connections the tap has already accepted, all in one synchronous block, reach the tap's sockets
// together and are read in its next poll phase.

/** Paths of the events the tap handed to the publisher, one array per build pass. */
const passes: string[][] = [];
let current: string[] | undefined;

function observing(publisher: Publisher): Publisher {
  return observePublishes(publisher, (path) => {
    if (!current) {
      const pass: string[] = [];
      current = pass;
      passes.push(pass);
      // A pass publishes synchronously; the first microtask checkpoint after it ends the pass.
      queueMicrotask(() => {
        current = undefined;
      });
    }
    current.push(path);
    // A fault no real input is known to cause, injected to pin what a failing event does to its pass.
    if (path === '/throws') throw new Error('injected publish failure');
  });
}

/** The tap's log lines at warn and above. */
const logLines: { level: number; msg: string; id?: string; err?: { code?: string; message?: string } }[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) });

const BODY_LIMIT = MAX_UNBUILT_BYTES + 1024;
let nats: NatsServer | undefined;
beforeAll(async () => {
  // Large enough that NATS takes the events of a pass whole; the bodies of the bytes test are cut to fit.
  nats = await startNatsServer({ maxPayloadBytes: 8 * 1024 * 1024 });
});
afterAll(async () => {
  await nats?.stop();
});

// A fresh tap for each test, started in the test itself: its first build pass is the test's own, and make mutate's
// per-test coverage sees the tap's set-up as part of the test.
let tap: TapHarness;
async function freshTap(): Promise<TapHarness> {
  if (!nats) throw new Error('no nats-server');
  tap = await startTap({
    natsUrl: nats.url,
    config: { tap: { maxBodyBytes: BODY_LIMIT, maxPendingPublishBytes: 512 * 1024 * 1024 }, targets: [target('all', { maxBodyBytes: BODY_LIMIT })] },
    wrapPublisher: observing,
    logger,
  });
  return tap;
}

const dropped = () => tap.metric('request_mirror_tap_events_dropped_total', { reason: 'build_queue_full' });
const queueFullWarnings = () => logLines.filter((l) => l.err?.code === 'RM_TAP_BUILD_QUEUE_FULL').length;

const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await (tap as TapHarness | undefined)?.close();
  expect(tap.invalid).toEqual([]);
  passes.length = 0;
  logLines.length = 0;
});

interface Connection {
  readonly socket: Socket;
  /** What the tap has written back so far. */
  readonly replies: () => string;
  /** The tap's end of the connection. */
  readonly serverSide: () => Socket;
}

/** Raw connections to the mirror listener, each accepted by the tap. */
async function connections(count: number): Promise<Connection[]> {
  const accepted = new Map<number, Socket>();
  const onConnection = (s: Socket) => {
    if (s.remotePort !== undefined) accepted.set(s.remotePort, s);
  };
  tap.tap.mirror.server.on('connection', onConnection);
  try {
    const opened = await Promise.all(
      Array.from({ length: count }, () => new Promise<Socket>((resolve, reject) => {
        const socket = netConnect(tap.mirrorPort, '127.0.0.1');
        sockets.push(socket);
        socket.once('error', reject);
        socket.once('connect', () => {
          resolve(socket);
        });
      })),
    );
    await eventually('the tap has accepted every connection', () => opened.every((s) => s.localPort !== undefined && accepted.has(s.localPort)));
    return opened.map((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      const server = accepted.get(socket.localPort ?? -1);
      if (!server) throw new Error('connection not accepted');
      return { socket, replies: () => Buffer.concat(chunks).toString('latin1'), serverSide: () => server };
    });
  } finally {
    tap.tap.mirror.server.off('connection', onConnection);
  }
}

/** Writes `perConnection` pipelined GETs on each connection at once; resolves once all are answered and published. */
async function burst(tag: string, conns: Connection[], perConnection: number): Promise<{ total: number; drops: number; built: string[] }> {
  const total = conns.length * perConnection;
  const droppedBefore = await dropped();
  const receivedBefore = await tap.metric('request_mirror_tap_requests_received_total', { attachment: 'mirror' });
  for (const [c, { socket }] of conns.entries()) {
    let requests = '';
    for (let i = 0; i < perConnection; i++) requests += `GET /${tag}/${c}/${i} HTTP/1.1\r\nHost: b.example\r\n\r\n`;
    socket.write(requests);
  }
  // Every request is answered 200, the dropped ones too.
  await eventually('every answer', () => conns.every(({ replies }) => statusCodes(replies()).length === perConnection));
  for (const { replies } of conns) expect(new Set(statusCodes(replies()))).toEqual(new Set([200]));
  expect(await tap.metric('request_mirror_tap_requests_received_total', { attachment: 'mirror' })).toBe(receivedBefore + total);
  const drops = (await dropped()) - droppedBefore;
  const built = () => passes.flat().filter((p) => p.startsWith(`/${tag}/`));
  await eventually(`${total - drops} events published`, () => built().length >= total - drops && current === undefined);
  return { total, drops, built: built() };
}

describe('build queue bound', () => {
  // Each connection's 200 pipelined requests stay under the write buffer at which Node stops reading a connection.
  const PER_CONNECTION = 200;
  const CONNECTIONS = Math.ceil((MAX_UNBUILT_EVENTS + 600) / PER_CONNECTION);

  it(`drops and counts the events past ${MAX_UNBUILT_EVENTS} waiting for one build pass, with one warning per pass`, async () => {
    await freshTap();
    const { total, drops, built } = await burst('burst', await connections(CONNECTIONS), PER_CONNECTION);
    // Each event either built and published or dropped with its reason: none lost without a count.
    expect(built.length + drops).toBe(total);
    expect(new Set(built).size).toBe(built.length);
    // The burst overflowed a pass, and that pass held exactly the bound.
    expect(drops).toBeGreaterThan(0);
    expect(Math.max(...passes.map((p) => p.length))).toBe(MAX_UNBUILT_EVENTS);
    // One warning per pass that dropped, not one per dropped event, saying what was waiting.
    expect(queueFullWarnings()).toBe(passes.filter((p) => p.length === MAX_UNBUILT_EVENTS).length);
    for (const line of logLines) expect(line).toMatchObject({ level: 40, msg: 'event dropped', err: { message: `${MAX_UNBUILT_EVENTS} events (0 body bytes) waiting to be built` } });
  });

  it('takes the next burst after a pass that dropped, and warns again', async () => {
    await freshTap();
    for (const tag of ['first', 'second']) {
      const { total, drops, built } = await burst(tag, await connections(CONNECTIONS), PER_CONNECTION);
      expect(drops).toBeGreaterThan(0);
      expect(built.length).toBe(total - drops);
      expect(queueFullWarnings()).toBe(passes.filter((p) => p.length === MAX_UNBUILT_EVENTS).length);
    }
  });

  it(`keeps bodies adding up to exactly ${MAX_UNBUILT_BYTES} bytes in one pass, and drops the next body byte`, async () => {
    await freshTap();
    const [conn] = await connections(1);
    if (!conn) throw new Error('no connection');
    const first = MAX_UNBUILT_BYTES - 10;
    const head = `POST /bytes-a HTTP/1.1\r\nHost: b.example\r\nContent-Length: ${first}\r\n\r\n`;
    conn.socket.write(Buffer.concat([Buffer.from(head), Buffer.alloc(first - 1, 0x61)]));
    // All but the last byte of the first body in the tap's hands: the rest of the three bodies then arrives in one
    // small write, read in one go.
    await eventually('the first body but its last byte read', () => conn.serverSide().bytesRead === head.length + first - 1);
    const droppedBefore = await dropped();
    conn.socket.write(Buffer.concat([Buffer.from('a'), request('/bytes-b', 'b'.repeat(10)), request('/bytes-c', 'c')]));
    await eventually('three answers', () => statusCodes(conn.replies()).length === 3);
    await eventually('two events published', () => passes.flat().length >= 2 && current === undefined);
    expect(passes).toEqual([['/bytes-a', '/bytes-b']]);
    expect((await dropped()) - droppedBefore).toBe(1);
    expect(queueFullWarnings()).toBe(1);
    expect(logLines[0]?.err?.message).toBe(`2 events (${MAX_UNBUILT_BYTES} body bytes) waiting to be built`);
  });

  it('builds one event whose body alone is over the byte bound', async () => {
    await freshTap();
    const [conn] = await connections(1);
    if (!conn) throw new Error('no connection');
    const droppedBefore = await dropped();
    conn.socket.write(request('/over', Buffer.alloc(MAX_UNBUILT_BYTES + 1, 0x6f)));
    await eventually('the answer', () => statusCodes(conn.replies()).length === 1);
    await eventually('the event published', () => passes.flat().length === 1 && current === undefined);
    expect(passes).toEqual([['/over']]);
    expect(await dropped()).toBe(droppedBefore);
  });
});

describe('an event that fails to build or publish', () => {
  it('is counted as publish_error and logged with its id, and the rest of its pass is published', async () => {
    await freshTap();
    const [conn] = await connections(1);
    if (!conn) throw new Error('no connection');
    const before = { dropped: await tap.metric('request_mirror_tap_events_dropped_total', { reason: 'publish_error' }), errors: await tap.metric('request_mirror_tap_publish_errors_total') };
    // One write: the three requests reach the tap in one read and their events share one pass.
    conn.socket.write(['/before', '/throws', '/after'].map((path) => `GET ${path} HTTP/1.1\r\nHost: b.example\r\n\r\n`).join(''));
    await eventually('three answers', () => statusCodes(conn.replies()).length === 3);
    await eventually('three events handed to the publisher', () => passes.flat().length === 3 && current === undefined);
    expect(passes).toEqual([['/before', '/throws', '/after']]);
    // The answers come in request order, each with its event's id.
    const ids = [...conn.replies().matchAll(/^x-request-mirror-id: (\S+)\r$/gim)].map((m) => m[1]);
    expect(ids).toHaveLength(3);
    const throwsId = ids[1];
    expect(await tap.metric('request_mirror_tap_events_dropped_total', { reason: 'publish_error' })).toBe(before.dropped + 1);
    expect(await tap.metric('request_mirror_tap_publish_errors_total')).toBe(before.errors + 1);
    expect(logLines.filter((l) => l.msg === 'building or publishing an event failed')).toEqual([
      expect.objectContaining({ level: 50, id: throwsId, err: expect.objectContaining({ message: 'injected publish failure' }) as unknown }),
    ]);
    // NATS keeps the publisher's order: once /after has arrived, so has anything published before it.
    await eventually('the /after event', () => tap.received.some((r) => r.event.data.path === '/after'));
    const mine = new Set(['/before', '/throws', '/after']);
    expect(tap.received.map((r) => r.event.data.path).filter((p) => mine.has(p))).toEqual(['/before', '/after']);
  });
});

function request(path: string, body: string | Buffer): Buffer {
  const bytes = Buffer.from(body);
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: b.example\r\nContent-Length: ${bytes.length}\r\n\r\n`), bytes]);
}

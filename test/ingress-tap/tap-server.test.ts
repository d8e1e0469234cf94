import { METHODS } from 'node:http';
import { connect as http2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attachment } from '../../ingress-tap/forwarded-request.ts';
import type { ConnectionProtocol } from '../../ingress-tap/tap-server.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';
import { eventually, rawExchange, startTap, statusCodes, target, type TapHarness, type TapHarnessOptions } from './tap-harness.ts';

// The listener fastify and Node build for forwardAuth and mirror (ingress-tap/tap-server.ts): how it counts
// connections, what it does with input HTTP, HTTP/2 or TLS would refuse. Each test starts a tap of its own, so the
// listener under test is built inside the test (other files check the same answers on a tap shared by the file).

let nats: NatsServer;
let cert: TestCertificate;

beforeAll(async () => {
  nats = await startNatsServer();
  cert = makeCertificate();
});
afterAll(async () => {
  await (nats as NatsServer | undefined)?.stop();
  cert.remove();
});

const config = { targets: [target('all')] };

/** Runs `use` against a tap of its own (TLS when `tls` is true), closed afterwards. */
async function withTap(options: { tls?: boolean } & Omit<TapHarnessOptions, 'natsUrl' | 'tls'>, use: (tap: TapHarness) => Promise<void>): Promise<void> {
  const { tls, ...rest } = options;
  const tap = await startTap({ config, ...rest, natsUrl: nats.url, ...(tls === true ? { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}) });
  try {
    await use(tap);
    expect(tap.invalid).toEqual([]);
  } finally {
    await tap.close();
  }
}

async function rejectedReasons(tap: TapHarness): Promise<Record<string, number>> {
  const metric = tap.metrics.registry.getSingleMetric('request_mirror_tap_rejected_input_total');
  const { values } = (await metric?.get()) ?? { values: [] };
  return Object.fromEntries(values.map((v) => [String(v.labels.reason), v.value]));
}

/** The status and body of one request on `session`, once its answer has ended. */
function exchangeH2(session: ClientHttp2Session, headers: Record<string, string>): Promise<{ readonly status: number; readonly body: string }> {
  return new Promise((resolve, reject) => {
    session.once('error', reject);
    const stream = session.request(headers, { endStream: true });
    stream.once('error', reject);
    stream.once('response', (h) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.once('end', () => {
        resolve({ status: Number(h[':status']), body: Buffer.concat(chunks).toString('latin1') });
      });
    });
  });
}

async function sendH2(url: string, headers: Record<string, string>): Promise<{ readonly status: number; readonly body: string }> {
  const session = http2Connect(url, { ca: cert.ca });
  try {
    return await exchangeH2(session, headers);
  } finally {
    session.close();
  }
}

/** Resolves once `socket` has closed; rejects after `timeoutMs`. */
function closedWithin(socket: Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the tap kept the connection open for ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('tap listener', () => {
  it('counts each TLS connection once, under the protocol ALPN chose', async () => {
    await withTap({ tls: true }, async (tap) => {
      // Two HTTP/2 connections and one HTTP/1.1, so that a swap of the two labels shows.
      for (const path of ['/h2-a', '/h2-b']) expect((await sendH2(tap.mirrorUrl, { ':path': path })).status).toBe(200);
      const h1 = new Agent({ connect: { ca: cert.ca }, allowH2: false });
      try {
        const res = await request(`${tap.mirrorUrl}/h1`, { dispatcher: h1 });
        await res.body.dump();
        expect(res.statusCode).toBe(200);
      } finally {
        await h1.close();
      }
      const connections = (listener: Attachment, protocol: ConnectionProtocol) => tap.metric('request_mirror_tap_connections_total', { listener, protocol });
      expect([await connections('mirror', 'h2'), await connections('mirror', 'http/1.1'), await connections('forwardAuth', 'h2')]).toEqual([2, 1, 0]);
      await tap.waitForEvents(3);
    });
  });

  it('counts plain HTTP on the TLS port as tls_err_ssl_http_request, and closes the connection the client keeps open', async () => {
    await withTap({ tls: true }, async (tap) => {
      // The tap's end of the connection, to see it close: this client never closes its own side.
      const accepted = new Promise<Socket>((resolve) => tap.tap.forwardAuth.server.once('connection', resolve));
      const socket = netConnect({ port: tap.forwardAuthPort, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', () => undefined);
      try {
        const server = await accepted;
        const closed = closedWithin(server, 5000);
        socket.write('GET / HTTP/1.1\r\nHost: tap\r\n\r\n');
        await closed;
        expect(await rejectedReasons(tap)).toEqual({ tls_err_ssl_http_request: 1 });
      } finally {
        socket.destroy();
      }
    });
  });

  it('counts a connection that breaks HTTP/2 framing as h2_session_err_http2_error', async () => {
    await withTap({ tls: true }, async (tap) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: tap.forwardAuthPort, ca: cert.ca, servername: 'localhost', ALPNProtocols: ['h2'] }, () => {
        socket.write(Buffer.from('\x00\x01garbage that is no HTTP/2 preface\r\n\r\n'));
      });
      socket.on('error', () => undefined);
      try {
        await eventually('the broken session counted', async () => Object.keys(await rejectedReasons(tap)).length > 0);
        expect(await rejectedReasons(tap)).toEqual({ h2_session_err_http2_error: 1 });
      } finally {
        socket.destroy();
      }
    });
  });

  it('counts an HTTP/2 stream the client resets with an error code as h2_stream_err_http2_stream_error, and publishes what arrived', async () => {
    await withTap({ tls: true }, async (tap) => {
      const session = http2Connect(tap.mirrorUrl, { ca: cert.ca });
      session.on('error', () => undefined);
      try {
        const stream = session.request({ ':method': 'POST', ':path': '/reset', 'content-length': '100' }, { endStream: false });
        stream.on('error', () => undefined);
        // INTERNAL_ERROR: a reset with CANCEL (what an aborting client sends) is no error to Node.
        stream.write('part of the body', () => {
          stream.close(constants.NGHTTP2_INTERNAL_ERROR);
        });
        const [received] = await tap.waitForEvents(1);
        expect(received?.event.data.body).toMatchObject({ data: 'part of the body', interrupted: true });
        await eventually('the reset stream counted', async () => Object.keys(await rejectedReasons(tap)).length > 0);
        expect(await rejectedReasons(tap)).toEqual({ h2_stream_err_http2_stream_error: 1 });
      } finally {
        session.close();
      }
    });
  });

  it('answers 200 to an HTTP/2 method that no registry knows and publishes it as any other', async () => {
    await withTap({ tls: true }, async (tap) => {
      expect((await sendH2(tap.mirrorUrl, { ':method': 'BREW', ':path': '/pot' })).status).toBe(200);
      const [received] = await tap.waitForEvents(1);
      expect(received?.event.data).toMatchObject({ method: 'BREW', path: '/pot' });
      expect(await rejectedReasons(tap)).toEqual({});
    });
  });

  it('publishes a request of every method Node’s HTTP/1.1 parser takes (CONNECT aside) as a known method, body included', async () => {
    await withTap({}, async (tap) => {
      const methods = METHODS.filter((m) => m !== 'CONNECT');
      const answers = await Promise.all(
        methods.map((m) => rawExchange(tap.mirrorPort, `${m} /m HTTP/1.1\r\nHost: dav.example\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`)),
      );
      expect(answers.map((a) => statusCodes(a))).toEqual(methods.map(() => [200]));
      const events = await tap.waitForEvents(methods.length);
      expect(events.map((e) => e.event.data.method).sort()).toEqual([...methods].sort());
      // The body is captured whatever the method.
      expect(events.filter((e) => e.event.data.body?.data !== 'ok').map((e) => e.event.data.method)).toEqual([]);
      expect(await rejectedReasons(tap)).toEqual({});
    });
  });

  it('publishes a path whose one segment is 512 KiB long', async () => {
    await withTap({}, async (tap) => {
      const path = `/${'s'.repeat(512 * 1024)}`;
      const raw = await rawExchange(tap.mirrorPort, `GET ${path}?q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      expect(statusCodes(raw)).toEqual([200]);
      const [received] = await tap.waitForEvents(1);
      expect(received?.event.data.path).toBe(path);
      expect(await rejectedReasons(tap)).toEqual({});
    });
  });

  it('answers 200 to an Expect other than 100-continue, counts it and publishes the request', async () => {
    await withTap({}, async (tap) => {
      // Raw, because HTTP clients refuse to send Expect themselves.
      const raw = await rawExchange(tap.mirrorPort, 'GET /e HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nConnection: close\r\n\r\n');
      expect(statusCodes(raw)).toEqual([200]);
      const [received] = await tap.waitForEvents(1);
      expect(received?.event.data.path).toBe('/e');
      expect(await rejectedReasons(tap)).toEqual({ unsupported_expect: 1 });
    });
  });

  it('over HTTP/2, sends the interim 100 of Expect: 100-continue at once and publishes the body sent after it', async () => {
    await withTap({ tls: true }, async (tap) => {
      const session = http2Connect(tap.mirrorUrl, { ca: cert.ca });
      session.on('error', () => undefined);
      try {
        const stream = session.request({ ':method': 'POST', ':path': '/upload', expect: '100-continue', 'content-length': '5' }, { endStream: false });
        // This client, as Go's, holds the body back until the 100 (or its own timeout) comes.
        await new Promise<void>((resolve, reject) => {
          stream.once('continue', resolve);
          stream.once('error', reject);
        });
        const answered = new Promise<unknown>((resolve) => stream.once('response', (h) => { resolve(h[':status']); }));
        stream.end('hello');
        expect(await answered).toBe(200);
        const [received] = await tap.waitForEvents(1);
        expect(received?.event.data).toMatchObject({ method: 'POST', path: '/upload', body: { data: 'hello', interrupted: false } });
        expect(await rejectedReasons(tap)).toEqual({});
      } finally {
        session.close();
      }
    });
  });

  it('over HTTP/2, answers 200 to an Expect other than 100-continue, counts it and publishes the request', async () => {
    await withTap({ tls: true }, async (tap) => {
      expect((await sendH2(tap.forwardAuthUrl, { ':path': '/', expect: 'teapot', 'x-forwarded-uri': '/e2' })).status).toBe(200);
      const [received] = await tap.waitForEvents(1);
      expect(received?.event.data.path).toBe('/e2');
      expect(await rejectedReasons(tap)).toEqual({ unsupported_expect: 1 });
    });
  });

  it('answers 200 to CONNECT over HTTP/1.1 and over HTTP/2, and counts both', async () => {
    await withTap({ tls: true }, async (tap) => {
      const h1 = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: tap.forwardAuthPort, ca: cert.ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
          socket.end('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
        });
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.once('error', reject);
        socket.once('close', () => {
          resolve(Buffer.concat(chunks).toString('latin1'));
        });
      });
      expect(statusCodes(h1)).toEqual([200]);
      const h2 = await sendH2(tap.forwardAuthUrl, { ':method': 'CONNECT', ':authority': 'example.com:443' });
      // A 200 and the end of the stream, which ends the tunnel: nothing goes through it.
      expect(h2).toEqual({ status: 200, body: '' });
      expect(await rejectedReasons(tap)).toEqual({ connect_method: 2 });
    });
  });

  it('starts a TLS listener with a keep-alive timeout under one second', async () => {
    await withTap({ tls: true, config: { ...config, tap: { keepAliveTimeoutMs: 500 } } }, async (tap) => {
      expect((await sendH2(tap.mirrorUrl, { ':path': '/short-keep-alive' })).status).toBe(200);
      await tap.waitForEvents(1);
    });
  });
});

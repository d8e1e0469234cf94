import { connect as http2Connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Config } from '../../contract/config.ts';
import { buildTap } from '../../ingress-tap/app.ts';
import type { Attachment } from '../../ingress-tap/forwarded-request.ts';
import { createMetrics } from '../../ingress-tap/metrics.ts';
import { startPublisher } from '../../ingress-tap/publisher.ts';
import type { ConnectionProtocol } from '../../ingress-tap/tap-server.ts';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';
import { eventually, rawExchange, send, startTap, target, type Received, type TapHarness } from './tap-harness.ts';

// With `tls` set, the forwardAuth and mirror listeners speak HTTP/2 and HTTP/1.1 over TLS (chosen by ALPN), so that
// Traefik's forwardAuth client multiplexes its calls instead of dialling a connection for most of them. The events
// must not depend on the protocol, and no input on the TLS port may crash the tap or draw a non-2xx.

let nats: NatsServer;
let cert: TestCertificate;
let tls: TapHarness;
let plain: TapHarness;
let h1: Agent;

const config = { targets: [target('all', { cookieNames: ['session'], revealHeaders: ['cookie'] })] };

beforeAll(async () => {
  nats = await startNatsServer();
  cert = makeCertificate(['DNS:shop.example']);
  tls = await startTap({ natsUrl: nats.url, config, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
  // A second tap on another subject prefix, so each test tells the two taps' events apart.
  plain = await startTap({ natsUrl: nats.url, config: { ...config, nats: { subjectPrefix: 'plain' } } });
  // undici would offer h2 by ALPN; this agent is the HTTP/1.1 client.
  h1 = new Agent({ connect: { ca: cert.ca }, allowH2: false, keepAliveTimeout: 1000 });
});
afterAll(async () => {
  await h1.close();
  await (tls as TapHarness | undefined)?.close();
  await (plain as TapHarness | undefined)?.close();
  await (nats as NatsServer | undefined)?.stop();
  cert.remove();
});
afterEach(() => {
  expect(tls.invalid).toEqual([]);
  expect(plain.invalid).toEqual([]);
  tls.received.length = 0;
  plain.received.length = 0;
});

interface H2Response {
  readonly status: number;
  readonly headers: Record<string, unknown>;
}

/** One request on its own HTTP/2 session, trusting the test certificate. */
async function sendH2(url: string, headers: OutgoingHttpHeaders, body?: string): Promise<H2Response> {
  const session = http2Connect(url, { ca: cert.ca });
  try {
    return await exchangeH2(session, headers, body);
  } finally {
    session.close();
  }
}

function exchangeH2(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    session.once('error', reject);
    const stream = session.request(headers, { endStream: body === undefined });
    stream.once('error', reject);
    stream.once('response', (h) => {
      stream.resume();
      stream.once('end', () => {
        resolve({ status: Number(h[':status']), headers: h });
      });
    });
    if (body !== undefined) stream.end(body);
  });
}

const rejected = (reason: string) => tls.metric('request_mirror_tap_rejected_input_total', { reason });
const rejectedReasons = async (): Promise<Record<string, number>> => {
  const metric = tls.metrics.registry.getSingleMetric('request_mirror_tap_rejected_input_total');
  const { values } = (await metric?.get()) ?? { values: [] };
  return Object.fromEntries(values.map((v) => [String(v.labels.reason), v.value]));
};
const data = (r: Received | undefined) => r?.event.data;

describe('TLS listeners', () => {
  const forwarded = {
    'x-forwarded-method': 'POST',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'app.example',
    'x-forwarded-uri': '/orders/7?expand=1',
    'x-forwarded-for': '203.0.113.9',
    'user-agent': 'curl/8.5.0',
    cookie: 'session=s1; theme=dark',
  };

  it('publishes the same forwardAuth event over HTTP/2, HTTP/1.1 over TLS and plain HTTP/1.1', async () => {
    const plainRes = await send(`${plain.forwardAuthUrl}/`, { headers: forwarded });
    const h1Res = await request(`${tls.forwardAuthUrl}/`, { dispatcher: h1, headers: forwarded });
    await h1Res.body.dump();
    // Cookie split into one field per pair, as Go's HTTP/2 client sends it (unit: the tap's own joining; through real
    // Traefik in test/e2e/forward-auth-h2.test.ts).
    const h2Res = await sendH2(tls.forwardAuthUrl, { ':method': 'GET', ':path': '/', ...forwarded, cookie: ['session=s1', 'theme=dark'] });
    expect([plainRes.status, h1Res.statusCode, h2Res.status]).toEqual([200, 200, 200]);
    const [fromPlain] = await plain.waitForEvents(1);
    const [overH1, overH2] = await tls.waitForEvents(2);
    expect(data(overH1)).toEqual(data(fromPlain));
    expect(data(overH2)).toEqual(data(fromPlain));
    expect(data(overH2)).toMatchObject({
      attachment: 'forwardAuth',
      method: 'POST',
      host: 'app.example',
      path: '/orders/7',
      clientIp: '203.0.113.9',
      headers: { host: ['app.example'], cookie: ['session=s1; theme=dark'] },
      cookies: { session: 's1' },
    });
    expect(h2Res.headers['x-request-mirror-id']).toBe(overH2?.event.id);
  });

  it('publishes the same mirror event, body included, with the host from :authority over HTTP/2', async () => {
    const headers = { 'content-type': 'application/json', 'content-length': '7', 'x-trace': 'a' };
    await send(`${plain.mirrorUrl}/cart?id=3`, { method: 'PUT', headers: { ...headers, host: 'shop.example' }, body: '{"a":1}' });
    const h1Res = await request(`${tls.mirrorUrl}/cart?id=3`, { dispatcher: h1, method: 'PUT', headers: { ...headers, host: 'shop.example' }, body: '{"a":1}' });
    await h1Res.body.dump();
    const h2Res = await sendH2(tls.mirrorUrl, { ':method': 'PUT', ':path': '/cart?id=3', ':authority': 'shop.example', ...headers }, '{"a":1}');
    expect(h2Res.status).toBe(200);
    const [fromPlain] = await plain.waitForEvents(1);
    const [overH1, overH2] = await tls.waitForEvents(2);
    expect(data(overH1)).toEqual(data(fromPlain));
    expect(data(overH2)).toEqual(data(fromPlain));
    expect(data(overH2)).toMatchObject({ attachment: 'mirror', method: 'PUT', host: 'shop.example', path: '/cart', query: 'id=3', body: { data: '{"a":1}' } });
    expect(Object.keys(data(overH2)?.headers ?? {}).filter((h) => h.startsWith(':'))).toEqual([]);
  });

  it('captures an HTTP/2 body sent without content-length', async () => {
    const res = await sendH2(tls.mirrorUrl, { ':method': 'POST', ':path': '/no-length', ':authority': 'shop.example' }, 'framed by DATA alone');
    expect(res.status).toBe(200);
    const [received] = await tls.waitForEvents(1);
    expect(data(received)?.body).toMatchObject({ data: 'framed by DATA alone', declaredLength: null, receivedBytes: 20, truncated: false });
  });

  it('records content-length: 0 over HTTP/2, where DATA frames may still follow, as a declared length of 0', async () => {
    const res = await sendH2(tls.mirrorUrl, { ':method': 'POST', ':path': '/zero', ':authority': 'shop.example', 'content-length': '0' }, '');
    expect(res.status).toBe(200);
    const [received] = await tls.waitForEvents(1);
    expect(data(received)?.body).toMatchObject({ data: '', declaredLength: 0, receivedBytes: 0, truncated: false });
  });

  it("takes 1 MiB of headers over HTTP/1.1, and up to the 64 KiB it advertises over HTTP/2", async () => {
    const big: Record<string, string> = {};
    for (let i = 0; i < 16; i++) big[`x-big-${i}`] = 'v'.repeat(64 * 1024 - 16);
    const h1Res = await request(`${tls.forwardAuthUrl}/`, { dispatcher: h1, headers: { ...big, 'x-forwarded-uri': '/big-h1' } });
    await h1Res.body.dump();
    const h2Res = await sendH2(tls.forwardAuthUrl, { ':path': '/', 'x-big-0': 'v'.repeat(60 * 1024), 'x-forwarded-uri': '/big-h2' });
    expect([h1Res.statusCode, h2Res.status]).toEqual([200, 200]);
    const events = await tls.waitForEvents(2);
    expect(events.map((e) => [e.event.data.path, e.event.data.headers['x-big-0']?.[0]?.length])).toEqual([
      ['/big-h1', 64 * 1024 - 16],
      ['/big-h2', 60 * 1024],
    ]);
    const session = http2Connect(tls.forwardAuthUrl, { ca: cert.ca });
    try {
      await new Promise((resolve) => session.once('remoteSettings', resolve));
      expect(session.remoteSettings.maxHeaderListSize).toBe(65_535);
    } finally {
      session.close();
    }
  });

  it('counts accepted connections by listener and protocol', async () => {
    const connections = (listener: Attachment, protocol: ConnectionProtocol) => tls.metric('request_mirror_tap_connections_total', { listener, protocol });
    const before = { h2: await connections('mirror', 'h2'), h1: await connections('mirror', 'http/1.1') };
    const session = http2Connect(tls.mirrorUrl, { ca: cert.ca });
    try {
      // Three requests, one connection.
      for (let i = 0; i < 3; i++) expect((await exchangeH2(session, { ':path': `/c${i}` })).status).toBe(200);
    } finally {
      session.close();
    }
    const agent = new Agent({ connect: { ca: cert.ca }, allowH2: false });
    try {
      await (await request(`${tls.mirrorUrl}/c-h1`, { dispatcher: agent })).body.dump();
    } finally {
      await agent.close();
    }
    expect(await connections('mirror', 'h2')).toBe(before.h2 + 1);
    expect(await connections('mirror', 'http/1.1')).toBe(before.h1 + 1);
    await tls.waitForEvents(4);
  });

  it('serves HTTP/1.1 to a TLS client that offers no ALPN', async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: tls.forwardAuthPort, ca: cert.ca, servername: 'localhost' }, () => {
        socket.end('GET / HTTP/1.1\r\nHost: tap\r\nX-Forwarded-Uri: /no-alpn\r\nConnection: close\r\n\r\n');
      });
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.once('error', reject);
      socket.once('close', () => {
        resolve(Buffer.concat(chunks).toString('latin1'));
      });
    });
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    const [received] = await tls.waitForEvents(1);
    expect(data(received)?.path).toBe('/no-alpn');
  });

  it('survives garbage sent after the handshake, over h2 and http/1.1, and counts it', async () => {
    const before = await rejectedReasons();
    for (const alpn of ['h2', 'http/1.1']) {
      await new Promise<void>((resolve) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: tls.forwardAuthPort, ca: cert.ca, servername: 'localhost', ALPNProtocols: [alpn] }, () => {
          socket.write(Buffer.from('\x00\x01garbage that is no HTTP at all\r\n\r\n\xff\xfe'));
        });
        socket.on('data', () => undefined);
        socket.once('error', () => undefined);
        socket.once('close', () => {
          resolve();
        });
        // A server that kept the socket open would hang the test; the tap must close it.
      });
    }
    await eventually('both garbage connections counted', async () => {
      const after = await rejectedReasons();
      const grown = Object.keys(after).filter((k) => (after[k] ?? 0) > (before[k] ?? 0));
      return grown.some((k) => k.startsWith('h2_')) && grown.some((k) => k.startsWith('hpe_'));
    });
    expect((await sendH2(tls.forwardAuthUrl, { ':path': '/', 'x-forwarded-uri': '/after-garbage' })).status).toBe(200);
    const [received] = await tls.waitForEvents(1);
    expect(data(received)?.path).toBe('/after-garbage');
  });

  it('survives plain HTTP sent to the TLS port and counts the failed handshake', async () => {
    const before = await rejectedReasons();
    await rawExchange(tls.forwardAuthPort, 'GET / HTTP/1.1\r\nHost: tap\r\n\r\n');
    await eventually('the failed handshake counted', async () => {
      const after = await rejectedReasons();
      return Object.keys(after).some((k) => k.startsWith('tls_') && (after[k] ?? 0) > (before[k] ?? 0));
    });
    expect((await sendH2(tls.forwardAuthUrl, { ':path': '/', 'x-forwarded-uri': '/after-plain' })).status).toBe(200);
    await tls.waitForEvents(1);
  });

  it('publishes an HTTP/2 request of any method token as it came, and counts none as rejected', async () => {
    // Found by make fuzz: over HTTP/2 any method token arrives (Node's HTTP/1.1 parser refuses most of them first).
    // fastify's router answered one it did not know from its 404 fallback, which the error handler counted as
    // handler_error, the reason docs/errors.md says is a tap bug; HTTP/2 no longer goes through fastify.
    const before = await rejectedReasons();
    expect((await sendH2(tls.mirrorUrl, { ':method': 'BREW', ':path': '/pot' })).status).toBe(200);
    expect((await sendH2(tls.mirrorUrl, { ':method': 'get', ':path': '/kettle' })).status).toBe(200);
    const events = await tls.waitForEvents(2);
    expect(events.map((e) => [e.event.data.method, e.event.data.path]).sort()).toEqual([['BREW', '/pot'], ['get', '/kettle']]);
    expect(await rejectedReasons()).toEqual(before);
  });

  it('publishes what arrived, marked interrupted, when the client resets an HTTP/2 stream mid-body', async () => {
    const session = http2Connect(tls.mirrorUrl, { ca: cert.ca });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/reset', 'content-length': '100' }, { endStream: false });
      stream.on('error', () => undefined);
      stream.write('part of the body', () => {
        stream.close(0x8);
      });
      const [received] = await tls.waitForEvents(1);
      expect(received?.event.data.path).toBe('/reset');
      expect(received?.event.data.body).toMatchObject({ data: 'part of the body', declaredLength: 100, truncated: true, interrupted: true });
    } finally {
      session.close();
    }
    expect(await rejected('handler_error')).toBe(0);
  });
});

describe('HTTP/2 streams reset mid-body', () => {
  it.each([
    ['no target wants', 'DELETE'],
    ['no target takes the body of', 'PUT'],
  ])('survive on a request %s, whose body the tap answers before and drains', async (_name, method) => {
    const partial = await startTap({
      natsUrl: nats.url,
      config: { targets: [target('posts', { methods: ['POST'] }), target('no-bodies', { methods: ['PUT'], maxBodyBytes: 0 })] },
      tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    });
    try {
      const session = http2Connect(partial.mirrorUrl, { ca: cert.ca });
      session.on('error', () => undefined);
      try {
        const stream = session.request({ ':method': method, ':path': '/reset', 'content-length': '100' }, { endStream: false });
        stream.on('error', () => undefined);
        const answered = new Promise<number>((resolve) => stream.once('response', (h) => { resolve(Number(h[':status'])); }));
        stream.write('part of the body');
        expect(await answered).toBe(200);
        await new Promise<void>((resolve) => { stream.close(0x8, resolve); });
      } finally {
        session.close();
      }
      // Still serving on a new session.
      expect((await sendH2(partial.mirrorUrl, { ':method': 'POST', ':path': '/after' })).status).toBe(200);
      const [received] = await partial.waitForEvents(1);
      expect(received?.event.data.path).toBe(method === 'PUT' ? '/reset' : '/after');
    } finally {
      await partial.close();
    }
  });
});

describe('TLS listener start-up', () => {
  it('fails with RM_TAP_TLS_UNUSABLE naming the file when the certificate file is missing', async () => {
    const missing = `${cert.dir}/no-such-cert.pem`;
    const start = startTap({ natsUrl: nats.url, subscribe: false, tls: { certFile: missing, keyFile: cert.keyFile } });
    await expect(start).rejects.toMatchObject({ code: 'RM_TAP_TLS_UNUSABLE', message: expect.stringContaining(missing) as unknown });
  });

  it('fails with RM_TAP_TLS_UNUSABLE when the key is not the certificate’s', async () => {
    const other = makeCertificate();
    try {
      const start = startTap({ natsUrl: nats.url, subscribe: false, tls: { certFile: cert.certFile, keyFile: other.keyFile } });
      await expect(start).rejects.toMatchObject({ code: 'RM_TAP_TLS_UNUSABLE', message: expect.stringContaining(other.keyFile) as unknown });
    } finally {
      other.remove();
    }
  });

  it.each([['forwardAuth'], ['mirror']] as const)('names tap.%s.tls when only that listener has an unusable certificate', async (listener) => {
    const missing = `${cert.dir}/no-such-cert.pem`;
    const config = Config.parse({ nats: { url: nats.url }, tap: { [listener]: { tls: { certFile: missing, keyFile: cert.keyFile } } } });
    const metrics = createMetrics();
    const logger = pino({ level: 'silent' });
    const publisher = startPublisher({ nats: config.nats, maxPendingBytes: 1024, metrics, logger });
    try {
      expect(() => buildTap({ config, publisher, metrics, logger, source: '/test' })).toThrow(
        expect.objectContaining({ code: 'RM_TAP_TLS_UNUSABLE', message: expect.stringMatching(new RegExp(`^tap\\.${listener}\\.tls\\.certFile ${missing}: cannot read`)) as unknown }),
      );
    } finally {
      await publisher.close();
    }
  });

  it('fails with RM_TAP_TLS_UNUSABLE when the certificate file is not PEM', async () => {
    const start = startTap({ natsUrl: nats.url, subscribe: false, tls: { certFile: cert.keyFile, keyFile: cert.keyFile } });
    await expect(start).rejects.toMatchObject({ code: 'RM_TAP_TLS_UNUSABLE', message: expect.stringContaining('certFile') as unknown });
  });

  /** The error a tap given `tls` fails to start with. */
  async function startError(tls: { certFile: string; keyFile: string }): Promise<Error & { code?: string }> {
    const error: unknown = await startTap({ natsUrl: nats.url, subscribe: false, tls }).then(
      async (started) => {
        await started.close();
        throw new Error('the tap started');
      },
      (e: unknown) => e,
    );
    return error as Error & { code?: string };
  }

  it.each([
    ['missing', () => `${cert.dir}/no-such-key.pem`, 'cannot read', { code: 'ENOENT' }],
    ['not PEM', () => cert.certFile, 'not a PEM private key', {}],
  ])('names tap.forwardAuth.tls.keyFile and keeps the cause when the key file is %s', async (_name, keyFile, what, cause) => {
    const error = await startError({ certFile: cert.certFile, keyFile: keyFile() });
    expect(error.code).toBe('RM_TAP_TLS_UNUSABLE');
    expect(error.message).toMatch(new RegExp(`^tap\\.forwardAuth\\.tls\\.keyFile ${keyFile()}: ${what}: .+`));
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.cause).toMatchObject(cause);
    // The cause's own message is quoted after the file.
    expect(error.message.endsWith((error.cause as Error).message)).toBe(true);
  });

  it('names both files in one error when neither the certificate nor the key can be read', async () => {
    const [certFile, keyFile] = [`${cert.dir}/no-such-cert.pem`, `${cert.dir}/no-such-key.pem`];
    const error = await startError({ certFile, keyFile });
    expect(error.code).toBe('RM_TAP_TLS_UNUSABLE');
    expect(error.message.split('; ').map((part) => part.replace(/: cannot read: .*$/, ''))).toEqual([
      `tap.forwardAuth.tls.certFile ${certFile}`,
      `tap.forwardAuth.tls.keyFile ${keyFile}`,
    ]);
    expect(error.cause).toEqual([expect.objectContaining({ code: 'ENOENT' }), expect.objectContaining({ code: 'ENOENT' })]);
  });

  it('names tap.forwardAuth.tls.certFile and keeps the cause when the certificate file is missing or not PEM', async () => {
    const missing = `${cert.dir}/no-such-cert.pem`;
    const unread = await startError({ certFile: missing, keyFile: cert.keyFile });
    expect(unread.message).toMatch(new RegExp(`^tap\\.forwardAuth\\.tls\\.certFile ${missing}: cannot read: `));
    expect(unread.cause).toMatchObject({ code: 'ENOENT' });
    const notPem = await startError({ certFile: cert.keyFile, keyFile: cert.keyFile });
    expect(notPem.message).toMatch(new RegExp(`^tap\\.forwardAuth\\.tls\\.certFile ${cert.keyFile}: not a PEM certificate: .+`));
    expect(notPem.cause).toBeInstanceOf(Error);
    expect(notPem.message.endsWith((notPem.cause as Error).message)).toBe(true);
  });
});

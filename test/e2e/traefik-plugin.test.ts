import { createHash } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { waitUntil } from '../../tools/stack/process.ts';
import { eventsOf, UPSTREAM_BODY, waitForEvent, type Backends } from '../../tools/stack/stack.ts';
import { receiverOf, tapMetric, useStack } from './fixture.ts';
import { attachmentRoutes, KiB, ROUTERS } from './routes.ts';

// The Traefik plugin loaded into a real Traefik as a local plugin, beside forwardAuth and Mirroring in front of the
// same upstream and the same tap: its events must be the ones the other attachments give for the same requests.

const LIMIT = 64 * KiB;

// An upstream for WebSocket upgrades: answers 101 and keeps the connection open, as a WebSocket server does.
const upgrades = new Set<Socket>();
const wsUpstream: Server = createServer((socket) => {
  upgrades.add(socket);
  socket.on('close', () => upgrades.delete(socket));
  socket.once('data', () => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
  });
});

function pluginRoutes(b: Backends, wsPort: number): string {
  return `
http:
  middlewares:
    tap-plugin:
      plugin:
        requestmirror:
          tapURL: ${b.tapPluginUrl}
          methods: GET,POST,PUT,PATCH,DELETE
          cookieNames: [session]
          maxBodyBytes: ${LIMIT}
  routers:
    plugin:
      rule: PathPrefix(\`/plugin\`)
      entryPoints: [web]
      middlewares: [tap-plugin]
      service: upstream
    plugin-ws:
      rule: PathPrefix(\`/ws\`)
      entryPoints: [web]
      middlewares: [tap-plugin]
      service: ws-upstream
  services:
    ws-upstream:
      loadBalancer:
        servers: [{ url: "http://127.0.0.1:${wsPort}" }]
`;
}

const s = useStack(async () => {
  await new Promise<void>((resolve) => wsUpstream.listen(0, '127.0.0.1', resolve));
  const wsPort = (wsUpstream.address() as { port: number }).port;
  return {
    receivers: ['hook', 'reveal'],
    targets: (r) => [
      { name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], cookieNames: ['session'] },
      // Sees the Cookie header itself: what the plugin let out of Traefik.
      { name: 'reveal', watchURL: `${r.reveal?.url ?? ''}/events`, methods: ['*'], pathPrefixes: ['/plugin/reveal'], revealHeaders: ['cookie'] },
    ],
    traefik: (b) => {
      const routes = attachmentRoutes(b, { maxBodySize: LIMIT });
      return { files: { ...routes.files, 'plugin.yml': pluginRoutes(b, wsPort) }, routers: [...ROUTERS, 'plugin', 'plugin-ws'] };
    },
    traefikPlugin: true,
  };
});
afterAll(async () => {
  for (const socket of upgrades) socket.destroy();
  await new Promise((resolve) => wsUpstream.close(resolve));
});

const hook = (): HttpReceiver => receiverOf(s(), 'hook');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const CLIENT_HEADERS = {
  host: 'shop.example.test',
  'user-agent': 'request-mirror-e2e/1',
  accept: 'application/json',
  'accept-encoding': 'identity',
  cookie: 'session=s3cr3t; theme=dark',
  authorization: 'Bearer token-123',
  'x-custom': 'one',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

/**
 * An event with what necessarily differs between attachments taken out: ids, times, the attachment and the route
 * prefix; and the order of redactedHeaders, which follows the wire for the listeners but not for the plugin (Go
 * hands a middleware the headers as a map). Through forwardAuth, `without` names headers that attachment cannot see.
 */
function comparable(event: MirrorEvent, asForwardAuth = false): unknown {
  const { data, subject, specversion, type, datacontenttype, traceparent } = event;
  const rest = { specversion, type, datacontenttype, traceparent };
  const path = data.path.replace(/^\/[^/]+/, '');
  const without = asForwardAuth ? NOT_SEEN_BY_FORWARD_AUTH : [];
  const headers = Object.fromEntries(Object.entries(data.headers).filter(([name]) => !without.includes(name)));
  const body = asForwardAuth && data.body !== null ? { ...data.body, declaredLength: null } : data.body;
  return { ...rest, subject: subject.replace(data.path, path), data: { ...data, attachment: undefined, path, headers, body, redactedHeaders: [...data.redactedHeaders].sort() } };
}

// forwardBody sends the body to the auth server without the client's Content-Length. (X-Real-Ip, which the entry
// point adds, reaches the tap with the documented trustForwardHeader: true.)
const NOT_SEEN_BY_FORWARD_AUTH = ['content-length'];

async function eventFor(path: string, receiver = hook()): Promise<MirrorEvent> {
  return waitForEvent(receiver, (e) => e.data.path === path);
}

describe('Traefik plugin attachment', () => {
  it('gives the same event as forwardAuth and Mirroring for the same POST with a body', async () => {
    const body = Buffer.from('{"order":42,"note":"caf\u00e9"}');
    const headers = { ...CLIENT_HEADERS, 'content-type': 'application/json' };
    for (const prefix of ['body', 'mirror', 'plugin']) {
      const res = await s().send(`/${prefix}/orders?dry=true`, { method: 'POST', headers, body });
      expect(res.status, prefix).toBe(201);
      expect(res.body.equals(UPSTREAM_BODY)).toBe(true);
    }
    const plugin = await eventFor('/plugin/orders');
    expect(plugin.data.attachment).toBe('plugin');
    expect(plugin.data.body).toMatchObject({ data: body.toString('utf8'), capturedBytes: body.length, declaredLength: body.length, truncated: false, sha256: sha256(body) });
    expect(plugin.data.cookies).toEqual({ session: 's3cr3t' });
    expect(plugin.data.redactedHeaders).toEqual(expect.arrayContaining(['authorization', 'cookie']));
    expect(plugin.traceparent).toBe(CLIENT_HEADERS.traceparent);
    // Mirroring sends the upstream's copy; forwardAuth rebuilds the request from X-Forwarded-*: all three agree.
    expect(comparable(plugin)).toEqual(comparable(await eventFor('/mirror/orders')));
    expect(comparable(plugin, true)).toEqual(comparable(await eventFor('/body/orders')));
    // The upstream got the body unchanged through the plugin's tee.
    expect(s().upstream.requests.find((r) => r.url === '/plugin/orders?dry=true')?.body.equals(body)).toBe(true);
  });

  it('gives the same event as forwardAuth for a GET with a query', async () => {
    for (const prefix of ['meta', 'plugin']) {
      expect((await s().send(`/${prefix}/items?q=1&tag=a%20b`, { headers: CLIENT_HEADERS })).status).toBe(201);
    }
    const plugin = await eventFor('/plugin/items');
    expect(plugin.data.query).toBe('q=1&tag=a%20b');
    const forwardAuth = await eventFor('/meta/items');
    // forwardAuth without forwardBody sees no body; the plugin sees that there was none.
    expect(comparable({ ...plugin, data: { ...plugin.data, body: null } }, true)).toEqual(comparable({ ...forwardAuth, data: { ...forwardAuth.data, body: null } }));
    expect(plugin.data.body).toMatchObject({ capturedBytes: 0, receivedBytes: 0, truncated: false });
  });

  it('mirrors only the configured methods', async () => {
    expect((await s().send('/plugin/options-not-mirrored', { method: 'OPTIONS', headers: CLIENT_HEADERS })).status).toBe(201);
    expect((await s().send('/plugin/delete-mirrored', { method: 'DELETE', headers: CLIENT_HEADERS })).status).toBe(201);
    await eventFor('/plugin/delete-mirrored');
    expect(eventsOf(hook().requests).filter((e) => e.data.path === '/plugin/options-not-mirrored')).toEqual([]);
  });

  it('lets only the named cookies out of Traefik, even to a target that reveals the Cookie header', async () => {
    expect((await s().send('/plugin/reveal', { headers: { ...CLIENT_HEADERS, cookie: 'theme=dark; session=s3cr3t; tracker=xyz' } })).status).toBe(201);
    const revealed = await eventFor('/plugin/reveal', receiverOf(s(), 'reveal'));
    expect(revealed.data.headers.cookie).toEqual(['session=s3cr3t']);
    expect(revealed.data.headers.authorization).toBeUndefined();
    expect(revealed.data.redactedHeaders).toEqual(['authorization']);
  });

  it.each([
    ['cap-1', LIMIT - 1, false],
    ['cap', LIMIT, false],
    ['cap+1', LIMIT + 1, true],
  ])('keeps a body at %s as the upstream reads it', async (name, size, truncated) => {
    const body = Buffer.alloc(size, 0x62);
    const path = `/plugin/size-${name}`;
    expect((await s().send(path, { method: 'PUT', body })).status).toBe(201);
    expect(s().upstream.requests.find((r) => r.url === path)?.body.equals(body)).toBe(true);
    const kept = body.subarray(0, Math.min(size, LIMIT));
    expect((await eventFor(path)).data.body).toMatchObject({ capturedBytes: kept.length, declaredLength: size, truncated, sha256: sha256(kept) });
  });

  it('keeps a chunked binary body', async () => {
    const chunks = [Buffer.from([0, 1, 2, 0xfe, 0xff]), Buffer.from([0x80, 0x7f, 0x00])];
    async function* stream(): AsyncIterable<Buffer> {
      for (const c of chunks) {
        yield c;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect((await s().send('/plugin/chunked', { method: 'POST', body: stream() })).status).toBe(201);
    const all = Buffer.concat(chunks);
    expect((await eventFor('/plugin/chunked')).data.body).toMatchObject({ encoding: 'base64', data: all.toString('base64'), declaredLength: null, receivedBytes: all.length, truncated: false });
  });

  it('mirrors a WebSocket upgrade at once, while the connection is still open', async () => {
    const socket = connect(s().traefik?.webPort ?? 0, '127.0.0.1');
    try {
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
      socket.write('GET /ws/chat HTTP/1.1\r\nHost: chat.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      await waitUntil('the 101 through Traefik', () => Promise.resolve(answer.startsWith('HTTP/1.1 101')));
      const event = await eventFor('/ws/chat');
      expect(socket.destroyed).toBe(false);
      expect(event.data).toMatchObject({ method: 'GET', host: 'chat.example.test', attachment: 'plugin' });
      expect(event.data.headers['sec-websocket-key']).toEqual(['dGhlIHNhbXBsZSBub25jZQ==']);
    } finally {
      socket.destroy();
    }
  });

  it("reports the plugin's counters on the tap's /metrics, never more sent than the tap received", async () => {
    const sent = () => tapMetric(s(), 'request_mirror_plugin_snapshots_total', { outcome: 'sent' });
    const received = () => tapMetric(s(), 'request_mirror_tap_requests_received_total', { attachment: 'plugin' });
    const [sentBefore, receivedBefore] = [await sent(), await received()];
    // 400 requests, 40 at a time: the pool's two workers send batches side by side, and they reach the tap in any
    // order, each with the counters as they were when it was encoded.
    const paths = Array.from({ length: 400 }, (_, i) => `/plugin/counted-${i}`);
    for (let i = 0; i < paths.length; i += 40) await Promise.all(paths.slice(i, i + 40).map((p) => s().send(p)));
    await waitUntil('the 400 reported as sent', async () => {
      // Counters ride with the next batch: send one more request so the earlier ones are reported as sent.
      await s().send('/plugin/metrics-nudge');
      return (await sent()) - sentBefore >= paths.length;
    });
    expect((await sent()) - sentBefore).toBeLessThanOrEqual((await received()) - receivedBefore);
    expect(await tapMetric(s(), 'request_mirror_plugin_reporters')).toBe(1);
  });
});

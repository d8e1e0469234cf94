import { createServer, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ListenerTls } from '../../contract/config.ts';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import { waitUntil } from '../../tools/stack/process.ts';
import { eventsOf, startStack, waitForEvent, type Stack } from '../../tools/stack/stack.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';
import { receiverOf, tapMetric } from './fixture.ts';
import { reportOnFailure } from './report.ts';

// Traefik's Mirroring copies the client's method, and Go's server (Traefik's entrypoint) takes any token method. The
// tap's plain mirror listener is Node's HTTP/1.1 parser, which refuses a method outside Node's list: docs/examples/
// traefik/mirroring.yml loses a `BREW` (counted, no event). mirroring-tls.yml makes Traefik speak HTTP/2 to the tap,
// whose HTTP/2 listener takes any method. PROPFIND, a WebDAV method Node knows, is the control; forwardAuth, whose
// call is always a GET, is not affected.

const REJECTED = 'request_mirror_tap_rejected_input_total';

interface H2cUpstream {
  /** An `h2c://` server URL for Traefik. */
  readonly url: string;
  readonly requests: { method: string; path: string }[];
  close(): Promise<void>;
}

/**
 * The application behind Traefik, over cleartext HTTP/2 (Traefik's `h2c://` server URL): a Node HTTP/1.1 server
 * would refuse `BREW` itself, and the client's answer must not depend on the method here.
 */
async function startH2cUpstream(): Promise<H2cUpstream> {
  const requests: H2cUpstream['requests'] = [];
  const sessions = new Set<Http2Session>();
  const server = createServer((req, res) => {
    requests.push({ method: req.method, path: req.url });
    req.resume();
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'text/plain', 'x-upstream': 'h2c' }).end(`served ${req.method}`);
    });
  });
  server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `h2c://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

let cert: TestCertificate | undefined;
let upstream: H2cUpstream | undefined;
let plain: Stack | undefined;
let overTls: Stack | undefined;

beforeAll(async () => {
  cert = makeCertificate(['DNS:ingress-tap']);
  upstream = await startH2cUpstream();
  const app = upstream.url;
  const c = cert;
  const common = {
    receivers: ['hook'],
    targets: (r: Stack['receivers']) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'] }],
  };
  plain = await startStack({
    ...common,
    traefik: (b) => ({
      files: {
        'mirroring.yml': localizeExample(readExample('traefik/mirroring.yml'), { ...b, upstreamUrl: app }),
        'forward-auth.yml': localizeExample(readExample('traefik/forward-auth.yml'), { ...b, upstreamUrl: app }),
      },
      routers: ['shop', 'app'],
    }),
  });
  const tls = readExample('request-mirror-mirror-tls.yaml')
    .replace('/etc/request-mirror/tls/tls.crt', c.certFile)
    .replace('/etc/request-mirror/tls/tls.key', c.keyFile);
  overTls = await startStack({
    ...common,
    tapMirrorTls: ListenerTls.parse((parse(tls) as { tap: { mirror: { tls: unknown } } }).tap.mirror.tls),
    traefik: (b) => ({
      files: {
        'mirroring-tls.yml': localizeExample(readExample('traefik/mirroring-tls.yml'), { ...b, upstreamUrl: app }).replace('/etc/traefik/request-mirror/ca.pem', c.certFile),
      },
      routers: ['shop'],
    }),
  });
}, 120_000);
afterAll(async () => {
  await plain?.close();
  await overTls?.close();
  await upstream?.close();
  cert?.remove();
});
reportOnFailure(() => plain);
reportOnFailure(() => overTls);

function started(stack: Stack | undefined): Stack {
  if (!stack) throw new Error('stack did not start');
  return stack;
}

/** Sends `method path` with a body through Traefik to a router (`shop`: Mirroring), and expects the upstream's own answer. */
async function sendThrough(stack: Stack, method: string, path: string, body: string, host = 'shop.localhost'): Promise<void> {
  const res = await stack.send(path, { method, headers: { host, 'content-type': 'text/plain' }, body });
  expect([res.status, res.headers['x-upstream'], res.body.toString()]).toEqual([201, 'h2c', `served ${method}`]);
  expect(upstream?.requests).toContainEqual({ method, path });
}

async function mirrorConnections(stack: Stack, protocol: string): Promise<number> {
  return tapMetric(stack, 'request_mirror_tap_connections_total', { listener: 'mirror', protocol });
}

describe('a method Node does not know, through Traefik', () => {
  it('over plain HTTP/1.1 (mirroring.yml) publishes PROPFIND, and counts BREW as hpe_invalid_method with no event; the client gets its answer to both', async () => {
    const s = started(plain);
    const before = await tapMetric(s, REJECTED, { reason: 'hpe_invalid_method' });
    await sendThrough(s, 'BREW', '/h1/pot', 'milk');
    await sendThrough(s, 'PROPFIND', '/h1/dav', '<propfind/>');

    const event = await waitForEvent(receiverOf(s, 'hook'), (e) => e.data.path === '/h1/dav');
    expect(event.data).toMatchObject({ attachment: 'mirror', method: 'PROPFIND', body: { data: '<propfind/>' } });
    // Traefik's mirror of BREW did reach the tap: its parser refused the request line, so there is nothing to publish.
    await waitUntil('BREW counted as hpe_invalid_method', async () => (await tapMetric(s, REJECTED, { reason: 'hpe_invalid_method' })) === before + 1, {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    expect(eventsOf(receiverOf(s, 'hook').requests).filter((e) => e.data.path === '/h1/pot')).toEqual([]);
    expect(await mirrorConnections(s, 'http/1.1')).toBeGreaterThan(0);
  });

  it('over HTTPS (mirroring-tls.yml) Traefik speaks HTTP/2 to the tap, and both methods are published with their bodies', async () => {
    const s = started(overTls);
    await sendThrough(s, 'BREW', '/h2/pot', 'milk');
    await sendThrough(s, 'PROPFIND', '/h2/dav', '<propfind/>');

    const hook = receiverOf(s, 'hook');
    const brew = await waitForEvent(hook, (e) => e.data.path === '/h2/pot');
    const dav = await waitForEvent(hook, (e) => e.data.path === '/h2/dav');
    expect(brew.data).toMatchObject({ attachment: 'mirror', method: 'BREW', host: 'shop.localhost', body: { data: 'milk' } });
    expect(dav.data).toMatchObject({ attachment: 'mirror', method: 'PROPFIND', host: 'shop.localhost', body: { data: '<propfind/>' } });
    // Over HTTP/2 any method token is a request like another: nothing is counted as rejected for either.
    expect(await tapMetric(s, REJECTED, { reason: 'handler_error' })).toBe(0);
    expect(await tapMetric(s, REJECTED, { reason: 'hpe_invalid_method' })).toBe(0);
    expect(await mirrorConnections(s, 'h2')).toBeGreaterThan(0);
    expect(await mirrorConnections(s, 'http/1.1')).toBe(0);
  });

  it('forwardAuth (forward-auth.yml) over plain HTTP/1.1 publishes BREW: the auth call is a GET with the method in X-Forwarded-Method', async () => {
    const s = started(plain);
    await sendThrough(s, 'BREW', '/fa/pot', 'milk', 'app.localhost');
    const event = await waitForEvent(receiverOf(s, 'hook'), (e) => e.data.path === '/fa/pot');
    expect(event.data).toMatchObject({ attachment: 'forwardAuth', method: 'BREW', host: 'app.localhost' });
  });
});

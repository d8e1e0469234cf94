import { describe, expect, it } from 'vitest';
import { eventsOf, waitForEvent, type Backends } from '../../tools/stack/stack.ts';
import { receiverOf, useStack } from './fixture.ts';
import { sendHead } from './raw-http.ts';

// Every spelling of a host that Traefik's Host matcher routes to `Host(app.example.com)` (lower-cased, port,
// IPv6 brackets and one trailing dot ignored: pkg/middlewares/requestdecorator and pkg/muxer/http/matcher.go)
// reaches a target filtered on `hosts: [app.example.com]`, and the event names the host in that one form.

function routes(b: Backends) {
  const yaml = `
http:
  middlewares:
    tap:
      forwardAuth:
        address: ${b.tapForwardAuthUrl}
        trustForwardHeader: true
        authResponseHeaders: [X-Request-Mirror-Id]
        maxResponseBodySize: 4096
  routers:
    forward-auth:
      rule: Host(\`app.example.com\`) && PathPrefix(\`/fa\`)
      entryPoints: [web]
      middlewares: [tap]
      service: upstream
    mirror:
      rule: Host(\`app.example.com\`) && PathPrefix(\`/mirror\`)
      entryPoints: [web]
      service: mirrored
    ip:
      rule: Host(\`::1\`) || Host(\`127.0.0.1\`)
      entryPoints: [web]
      middlewares: [tap]
      service: upstream
  services:
    upstream:
      loadBalancer:
        servers: [{ url: "${b.upstreamUrl}" }]
    tap-mirror:
      loadBalancer:
        servers: [{ url: "${b.tapMirrorUrl}" }]
    mirrored:
      mirroring:
        service: upstream
        mirrors: [{ name: tap-mirror, percent: 100 }]
`;
  return { files: { 'routes.yml': yaml }, routers: ['forward-auth', 'mirror', 'ip'] };
}

const s = useStack({
  receivers: ['app', 'wildcard', 'ip', 'all'],
  targets: (r) => [
    { name: 'app', watchURL: `${r.app?.url ?? ''}/events`, methods: ['*'], hosts: ['app.example.com'] },
    { name: 'wildcard', watchURL: `${r.wildcard?.url ?? ''}/events`, methods: ['*'], hosts: ['*.example.com'] },
    // One delivery at a time keeps its deliveries in event order: a later marker's arrival shows what came before.
    { name: 'ip', watchURL: `${r.ip?.url ?? ''}/events`, methods: ['*'], hosts: ['127.0.0.1'], concurrency: 1 },
    { name: 'all', watchURL: `${r.all?.url ?? ''}/events`, methods: ['*'] },
  ],
  traefik: routes,
});

const SPELLINGS = [
  'app.example.com',
  'APP.EXAMPLE.COM',
  'App.Example.Com',
  'app.example.com:80',
  'app.example.com:8080',
  'app.example.com.',
  'APP.example.com.:443',
];

let sequence = 0;

describe.each([
  ['forwardAuth', '/fa'],
  ['Mirroring', '/mirror'],
])('host spellings through %s', (_name, prefix) => {
  it.each(SPELLINGS)('routes Host: %s to a target filtered on app.example.com, as host app.example.com', async (spelling) => {
    const path = `${prefix}/${++sequence}`;
    expect(await sendHead(s(), `GET ${path} HTTP/1.1\r\nHost: ${spelling}\r\nConnection: close\r\n\r\n`)).toBe(201);
    for (const target of ['app', 'wildcard']) {
      const event = await waitForEvent(receiverOf(s(), target), (e) => e.data.path === path);
      expect(event.data.host).toBe('app.example.com');
      expect(event.subject).toBe(`app.example.com${path}`);
    }
  });

  it('takes the host of an absolute-form request target, as Traefik routes it, over the Host header', async () => {
    const path = `${prefix}/${++sequence}`;
    expect(await sendHead(s(), `GET http://APP.example.com:8080${path} HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n`)).toBe(201);
    const event = await waitForEvent(receiverOf(s(), 'app'), (e) => e.data.path === path);
    expect(event.data.host).toBe('app.example.com');
  });
});

describe('IP hosts', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.1:8080', '127.0.0.1'],
    ['[::1]', '::1'],
    ['[::1]:8080', '::1'],
  ])('reads Host: %s as Traefik does, as %s', async (spelling, want) => {
    const path = `/ip/${++sequence}`;
    expect(await sendHead(s(), `GET ${path} HTTP/1.1\r\nHost: ${spelling}\r\nConnection: close\r\n\r\n`)).toBe(201);
    expect((await waitForEvent(receiverOf(s(), 'all'), (e) => e.data.path === path)).data.host).toBe(want);
    const marker = `/ip/${++sequence}`;
    expect(await sendHead(s(), `GET ${marker} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)).toBe(201);
    await waitForEvent(receiverOf(s(), 'ip'), (e) => e.data.path === marker);
    expect(eventsOf(receiverOf(s(), 'ip').requests).filter((e) => e.data.path === path)).toHaveLength(want === '127.0.0.1' ? 1 : 0);
  });
});

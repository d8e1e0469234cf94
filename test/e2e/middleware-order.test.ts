import { describe, expect, it } from 'vitest';
import { eventsOf, waitForEvent, type Backends } from '../../tools/stack/stack.ts';
import { receiverOf, useStack } from './fixture.ts';

// Traefik runs a router's middlewares in the order listed, and forwardAuth reports the request as it reaches it
// (X-Forwarded-Uri is the request URI at that point). Listed first, request-mirror records the path the client
// sent; after stripPrefix, the stripped one, and a `pathPrefixes: [/api]` target never matches.
// docs/install-traefik.md ("Where the middleware goes") says so.

function routes(b: Backends) {
  const yaml = `
http:
  middlewares:
    request-mirror:
      forwardAuth:
        address: ${b.tapForwardAuthUrl}
        trustForwardHeader: true
        authResponseHeaders: [X-Request-Mirror-Id]
        maxResponseBodySize: 4096
    strip-api:
      stripPrefix:
        prefixes: [/api]
  routers:
    mirror-first:
      rule: Host(\`first.example\`) && PathPrefix(\`/api\`)
      entryPoints: [web]
      middlewares: [request-mirror, strip-api]
      service: upstream
    strip-first:
      rule: Host(\`strip.example\`) && PathPrefix(\`/api\`)
      entryPoints: [web]
      middlewares: [strip-api, request-mirror]
      service: upstream
  services:
    upstream:
      loadBalancer:
        servers: [{ url: "${b.upstreamUrl}" }]
`;
  return { files: { 'routes.yml': yaml }, routers: ['mirror-first', 'strip-first'] };
}

const s = useStack({
  receivers: ['api', 'all'],
  targets: (r) => [
    // One delivery at a time keeps its deliveries in event order: a later marker's arrival shows what came before.
    { name: 'api', watchURL: `${r.api?.url ?? ''}/events`, methods: ['*'], pathPrefixes: ['/api'], concurrency: 1 },
    { name: 'all', watchURL: `${r.all?.url ?? ''}/events`, methods: ['*'] },
  ],
  traefik: routes,
});

describe('middleware order on a router with stripPrefix', () => {
  it('records the path the client sent when request-mirror comes first', async () => {
    const res = await s().send('/api/users?page=2', { headers: { host: 'first.example' } });
    expect(res.status).toBe(201);
    expect(s().upstream.requests.at(-1)?.url).toBe('/users?page=2');
    const event = await waitForEvent(receiverOf(s(), 'api'), (e) => e.data.host === 'first.example');
    expect([event.data.path, event.data.query]).toEqual(['/api/users', 'page=2']);
  });

  it('records the stripped path after stripPrefix, which a pathPrefixes: [/api] target never gets', async () => {
    const res = await s().send('/api/orders', { headers: { host: 'strip.example' } });
    expect(res.status).toBe(201);
    const event = await waitForEvent(receiverOf(s(), 'all'), (e) => e.data.host === 'strip.example');
    expect(event.data.path).toBe('/orders');
    expect((await s().send('/api/marker', { headers: { host: 'first.example' } })).status).toBe(201);
    await waitForEvent(receiverOf(s(), 'api'), (e) => e.data.path === '/api/marker');
    expect(eventsOf(receiverOf(s(), 'api').requests).filter((e) => e.data.host === 'strip.example')).toEqual([]);
  });
});

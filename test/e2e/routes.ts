import type { Backends } from '../../tools/stack/stack.ts';

// Dynamic Traefik configuration for the e2e suites: one router per way of attaching the tap, all in front of the
// same upstream, told apart by path prefix.

export const KiB = 1024;
export const MiB = 1024 * KiB;

export interface RouteLimits {
  /** forwardAuth `maxBodySize` of the `/body` router and Mirroring `maxBodySize` of the `/mirror` router. */
  readonly maxBodySize: number;
}

export const ROUTERS = ['meta', 'body', 'mirror', 'unbounded'];

/**
 * - `/meta`: forwardAuth, metadata only (`forwardBody` off).
 * - `/body`: forwardAuth with `forwardBody` and `maxBodySize`.
 * - `/mirror`: Mirroring (percent 100) with `maxBodySize`.
 * - `/unbounded`: Mirroring without `maxBodySize` (Traefik's default, -1: no limit).
 */
export function attachmentRoutes(b: Backends, limits: RouteLimits): { files: Record<string, string>; routers: string[] } {
  const forwardAuth = (extra: string) => `
      forwardAuth:
        address: ${b.tapForwardAuthUrl}
        trustForwardHeader: true
        preserveRequestMethod: false
        authResponseHeaders: [X-Request-Mirror-Id]
        maxResponseBodySize: 4096${extra}`;
  const yaml = `
http:
  middlewares:
    tap-meta:${forwardAuth('')}
    tap-body:${forwardAuth(`
        forwardBody: true
        maxBodySize: ${limits.maxBodySize}`)}
  routers:
    meta:
      rule: PathPrefix(\`/meta\`)
      entryPoints: [web]
      middlewares: [tap-meta]
      service: upstream
    body:
      rule: PathPrefix(\`/body\`)
      entryPoints: [web]
      middlewares: [tap-body]
      service: upstream
    mirror:
      rule: PathPrefix(\`/mirror\`)
      entryPoints: [web]
      service: mirrored
    unbounded:
      rule: PathPrefix(\`/unbounded\`)
      entryPoints: [web]
      service: mirrored-unbounded
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
        maxBodySize: ${limits.maxBodySize}
        mirrors: [{ name: tap-mirror, percent: 100 }]
    mirrored-unbounded:
      mirroring:
        service: upstream
        mirrors: [{ name: tap-mirror, percent: 100 }]
`;
  return { files: { 'routes.yml': yaml }, routers: ROUTERS };
}

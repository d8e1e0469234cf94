// The Traefik routers of `make demo`, loaded from the very snippets in docs/examples/traefik/. docker-compose.yml
// declares the same routers (the app one with Docker labels); test/compose/compose.test.ts checks that they agree.

export const DEMO_TRAEFIK_FILES = ['forward-auth.yml', 'forward-auth-body.yml', 'mirroring.yml'] as const;
export const DEMO_ROUTERS = ['app', 'api', 'shop'] as const;

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Starts the Kubernetes test-bed only if a test file asks for it (test/support/kube.ts).
    globalSetup: ['./test/support/kube-global-setup.ts'],
    // Tests start real nats-server, Traefik and HTTP processes; on a shared 2-core machine they need headroom.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startKubeWorld, type KubeWorld } from '../../tools/stack/kube-world.ts';

// vitest global setup: one Kubernetes API server and one Traefik for the whole run, started only when a test file
// asks for them (most runs select no Kubernetes test and pay nothing). Test files run in other processes, so they
// ask over a loopback HTTP endpoint whose address this setup provides: `POST /world` starts the world once and
// answers its connection details; `GET /traefik-log` answers Traefik's output so far.

declare module 'vitest' {
  export interface ProvidedContext {
    kubeWorldUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let world: Promise<KubeWorld> | undefined;
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/world') {
      world ??= startKubeWorld();
      world.then(
        (w) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(w.info)),
        (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String((error as Error).stack ?? error)),
      );
    } else if (req.method === 'GET' && req.url === '/traefik-log' && world) {
      world.then(
        (w) => res.writeHead(200, { 'content-type': 'text/plain' }).end(w.traefik.process.output()),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  project.provide('kubeWorldUrl', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return async () => {
    server.close();
    const running = await world?.catch(() => undefined);
    if (running) {
      const stopping = performance.now();
      await running.stop();
      process.stdout.write(
        `Kubernetes test-bed: API server ready in ${running.info.clusterStartupMs} ms, Traefik in ${running.info.traefikStartupMs} ms; ` +
          `stopped in ${Math.round(performance.now() - stopping)} ms\n`,
      );
    }
  };
}

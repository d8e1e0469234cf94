import { Agent, createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startAdminServer, type AdminServer } from '../../dispatcher/admin-server.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';

// The dispatcher's probes and metrics port, started as main.ts starts it (on port 0) and asked over real HTTP.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request on its own connection (no keep-alive pool between tests). */
function ask(port: number, path: string, method = 'GET', agent?: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function admin(ready: () => boolean, detail?: () => readonly string[], registry = new Registry()): Promise<AdminServer> {
  const server = await startAdminServer({ host: '127.0.0.1', port: 0 }, registry, ready, detail);
  cleanup.add(() => server.close());
  return server;
}

describe('admin server', () => {
  it('listens on the port it reports, a free one when asked for 0', async () => {
    const server = await admin(() => true);
    expect(server.port).toBeGreaterThan(0);
    expect((await ask(server.port, '/healthz')).status).toBe(200);
  });

  it('answers /healthz with 200 ok whatever the readiness', async () => {
    const server = await admin(() => false);
    const r = await ask(server.port, '/healthz');
    expect(r).toMatchObject({ status: 200, body: 'ok\n' });
    expect(r.headers['content-type']).toBe('text/plain');
  });

  it('answers /readyz with 200 while ready and 503 while not, with the detail lines either way, whatever the query', async () => {
    let ready = true;
    const server = await admin(
      () => ready,
      () => ['kubernetes watch: broken', 'second line'],
    );
    const up = await ask(server.port, '/readyz?verbose=1');
    expect(up).toMatchObject({ status: 200, body: 'ready\nkubernetes watch: broken\nsecond line\n' });
    expect(up.headers['content-type']).toBe('text/plain');
    ready = false;
    expect(await ask(server.port, '/readyz')).toMatchObject({ status: 503, body: 'not ready\nkubernetes watch: broken\nsecond line\n' });
  });

  it('answers /readyz with the verdict alone when there is no detail', async () => {
    const server = await admin(() => false);
    expect(await ask(server.port, '/readyz')).toMatchObject({ status: 503, body: 'not ready\n' });
  });

  it("serves the registry's metrics in its content type", async () => {
    const registry = new Registry();
    new Counter({ name: 'admin_test_total', help: 'a counter', registers: [registry] }).inc(3);
    const server = await admin(() => true, undefined, registry);
    const r = await ask(server.port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(registry.contentType);
    expect(r.body).toContain('\nadmin_test_total 3\n');
  });

  it('answers 500 with the error when collecting the metrics fails', async () => {
    const registry = new Registry();
    new Gauge({
      name: 'admin_broken',
      help: 'a gauge whose collection fails',
      registers: [registry],
      collect() {
        throw new Error('collector broke');
      },
    });
    const server = await admin(() => true, undefined, registry);
    const r = await ask(server.port, '/metrics');
    expect(r.status).toBe(500);
    expect(r.body).toContain('collector broke');
  });

  it('answers HEAD like GET, without a body', async () => {
    const server = await admin(() => true);
    expect(await ask(server.port, '/healthz', 'HEAD')).toMatchObject({ status: 200, body: '' });
    expect((await ask(server.port, '/readyz', 'HEAD')).status).toBe(200);
  });

  it.each(['POST', 'PUT', 'DELETE'])('refuses %s with 405 naming GET and HEAD', async (method) => {
    const server = await admin(() => true);
    const r = await ask(server.port, '/healthz', method);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
  });

  it('answers 404 elsewhere', async () => {
    const server = await admin(() => true);
    expect((await ask(server.port, '/')).status).toBe(404);
    expect((await ask(server.port, '/healthz/x')).status).toBe(404);
  });

  it('closes at once with a keep-alive connection idle and a request half sent, and then refuses connections', async () => {
    const server = await startAdminServer({ host: '127.0.0.1', port: 0 }, new Registry(), () => true);
    const agent = new Agent({ keepAlive: true });
    cleanup.add(() => {
      agent.destroy();
    });
    expect((await ask(server.port, '/healthz', 'GET', agent)).status).toBe(200);
    // A probe cut off mid-request: without closing it, close() would wait for Node's request timeout (minutes).
    const stalled = connect(server.port, '127.0.0.1');
    cleanup.add(() => {
      stalled.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      stalled.once('connect', resolve).once('error', reject);
    });
    stalled.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const stalledClosed = new Promise<void>((resolve) => {
      stalled.once('close', () => {
        resolve();
      });
    });
    let deadline: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      server.close().then(() => 'closed'),
      new Promise<string>((resolve) => {
        deadline = setTimeout(() => {
          resolve('still open after 5 s');
        }, 5000);
      }),
    ]);
    clearTimeout(deadline);
    expect(closed).toBe('closed');
    await stalledClosed;
    await expect(ask(server.port, '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('fails to start, with the listen error, on a port already taken', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => {
      taken.listen(0, '127.0.0.1', resolve);
    });
    cleanup.add(
      () =>
        new Promise<void>((resolve) => {
          taken.close(() => {
            resolve();
          });
        }),
    );
    const port = (taken.address() as AddressInfo).port;
    await expect(startAdminServer({ host: '127.0.0.1', port }, new Registry(), () => true)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});

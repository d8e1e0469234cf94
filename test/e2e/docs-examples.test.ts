import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { answers2xx, startProcess, waitUntil } from '../../tools/stack/process.ts';
import { ROOT, waitForEvent } from '../../tools/stack/stack.ts';
import { startTraefik, traefikBin, type Traefik } from '../../tools/stack/traefik.ts';
import { receiverOf, useStack } from './fixture.ts';

// Every snippet of docs/install-traefik.md is a file under docs/examples/: the page embeds each verbatim, and each is
// loaded into a real Traefik in front of the real tap here.

const DOC = readFileSync(join(ROOT, 'docs/install-traefik.md'), 'utf8');

describe('docs/install-traefik.md', () => {
  it('has no code block that is not an embedded example file, and embeds each file verbatim', () => {
    const blocks = [...DOC.matchAll(/(?:<!-- embed: (\S+) -->\n)?```[a-z]*\n([\s\S]*?)```/g)];
    expect(blocks.length).toBeGreaterThanOrEqual(7);
    for (const [, path, body] of blocks) {
      expect(path, `a code block without an embed marker:\n${body ?? ''}`).toBeDefined();
      expect(body, path).toBe(readFileSync(join(ROOT, path ?? ''), 'utf8'));
    }
  });
});

const s = useStack({
  receivers: ['hook'],
  targets: (r) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], cookieNames: ['session'] }],
});

async function withTraefik(files: string[], routers: string[], use: (t: Traefik) => Promise<void>): Promise<void> {
  const t = await startTraefik({
    files: Object.fromEntries(files.map((f) => [f.replace('traefik/', ''), localizeExample(readExample(f), s().backends)])),
    routers,
  });
  try {
    await use(t);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- traefik ---\n${t.process.output()}`, { cause: error });
  } finally {
    await t.stop();
  }
}

async function send(t: Traefik, host: string, path: string, method = 'GET', body?: string) {
  const res = await request(`${t.url}${path}`, { method: method as 'GET', headers: { host, cookie: 'session=doc' }, body: body ?? null });
  return { status: res.statusCode, body: await res.body.text() };
}

const hook = () => receiverOf(s(), 'hook');

async function apiJson(t: Traefik, path: string): Promise<unknown> {
  const res = await fetch(`${t.adminUrl}/api/http/${path}`);
  const json = (await res.json()) as Record<string, unknown>;
  // Runtime state that differs between two Traefiks loading the same configuration.
  delete json.status;
  delete json.serverStatus;
  delete json.provider;
  delete json.using;
  delete json.usedBy;
  return json;
}

describe('docs/examples in a real Traefik', () => {
  for (const ext of ['yml', 'toml']) {
    it(`forward-auth.${ext} mirrors a request and hands the event id to the upstream`, async () => {
      await withTraefik([`traefik/forward-auth.${ext}`], ['app'], async (t) => {
        const res = await send(t, 'app.localhost', `/doc-${ext}?q=1`);
        expect(res.status).toBe(201);
        const got = s().upstream.requests.find((r) => r.url === `/doc-${ext}?q=1`);
        const event = await waitForEvent(hook(), (e) => e.data.path === `/doc-${ext}`);
        expect(got?.headers['x-request-mirror-id']).toBe(event.id);
        expect(event.data).toMatchObject({ attachment: 'forwardAuth', host: 'app.localhost', query: 'q=1', cookies: { session: 'doc' } });
        // Traefik logs no warning about unset trustForwardHeader or maxResponseBodySize for this snippet.
        expect(t.logLines('is not configured')).toEqual([]);
      });
    });

    it(`mirroring.${ext} mirrors a request with its body after serving it`, async () => {
      await withTraefik([`traefik/mirroring.${ext}`], ['shop'], async (t) => {
        const res = await send(t, 'shop.localhost', `/cart-${ext}`, 'PUT', 'mug');
        expect(res.status).toBe(201);
        const event = await waitForEvent(hook(), (e) => e.data.path === `/cart-${ext}`);
        expect(event.data).toMatchObject({ attachment: 'mirror', method: 'PUT', host: 'shop.localhost', body: { data: 'mug' } });
      });
    });
  }

  it('forward-auth-body.yml mirrors the body and answers 401 above maxBodySize', async () => {
    await withTraefik(['traefik/forward-auth-body.yml'], ['api'], async (t) => {
      expect((await send(t, 'api.localhost', '/orders-doc', 'POST', '{"a":1}')).status).toBe(201);
      const event = await waitForEvent(hook(), (e) => e.data.path === '/orders-doc');
      expect(event.data.body?.data).toBe('{"a":1}');
      expect((await send(t, 'api.localhost', '/orders-doc-big', 'POST', 'x'.repeat(1048577))).status).toBe(401);
    });
  });

  it('the YAML and TOML snippets configure Traefik identically', async () => {
    const seen: Record<string, unknown[]> = {};
    for (const ext of ['yml', 'toml']) {
      await withTraefik([`traefik/forward-auth.${ext}`, `traefik/mirroring.${ext}`], ['app', 'shop'], async (t) => {
        seen[ext] = await Promise.all(
          ['middlewares/request-mirror@file', 'routers/app@file', 'routers/shop@file', 'services/shop-mirrored@file', 'services/request-mirror-tap@file'].map((p) =>
            apiJson(t, p),
          ),
        );
      });
    }
    expect(seen.toml).toEqual(seen.yml);
  });

  it('the Docker labels say what forward-auth.yml says', () => {
    const labels = (parse(readExample('traefik/docker-labels.yml')) as { services: { upstream: { labels: string[] } } }).services.upstream.labels;
    const fromLabels = new Map(
      labels.filter((l) => l.startsWith('traefik.http.') && !l.startsWith('traefik.http.services.')).map((l) => {
        const i = l.indexOf('=');
        return [l.slice('traefik.'.length, i).toLowerCase(), l.slice(i + 1)];
      }),
    );
    const yaml = parse(readExample('traefik/forward-auth.yml')) as { http: Record<string, unknown> };
    const fromYaml = new Map<string, string>();
    const walk = (value: unknown, key: string) => {
      if (Array.isArray(value)) fromYaml.set(key, value.join(','));
      else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, `${key}.${k.toLowerCase()}`);
      else fromYaml.set(key, String(value));
    };
    walk({ middlewares: yaml.http.middlewares, routers: yaml.http.routers }, 'http');
    expect(Object.fromEntries(fromLabels)).toEqual(Object.fromEntries(fromYaml));
    // The service: the label names the container's port, the file its URL.
    expect(labels).toContain('traefik.http.services.app.loadbalancer.server.port=8080');
    expect(readExample('traefik/forward-auth.yml')).toContain('url: http://upstream:8080');
    // Everything a `docker-compose.yml` user gets matches the documented fragment.
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: { upstream: { labels: string[] } } };
    expect(compose.services.upstream.labels).toEqual(labels);
  });

  it('forward-auth-h2.yml says what forward-auth.yml says, but for the https address and its tls (loaded in forward-auth-h2.test.ts)', () => {
    const h2 = parse(readExample('traefik/forward-auth-h2.yml')) as { http: { middlewares: Record<string, { forwardAuth: Record<string, unknown> }> } };
    const h1 = parse(readExample('traefik/forward-auth.yml')) as typeof h2;
    const { address, tls, ...rest } = h2.http.middlewares['request-mirror']?.forwardAuth ?? {};
    const { address: h1Address, ...h1Rest } = h1.http.middlewares['request-mirror']?.forwardAuth ?? {};
    expect(address).toBe(String(h1Address).replace('http:', 'https:'));
    expect(tls).toEqual({ ca: expect.any(String) as unknown });
    expect(rest).toEqual(h1Rest);
    expect({ ...h2.http, middlewares: undefined }).toEqual({ ...h1.http, middlewares: undefined });
  });

  it('mirroring-tls.yml says what mirroring.yml says, but for the https server URL and its rootCAs (loaded in mirroring-methods.test.ts)', () => {
    interface Mirroring {
      http: {
        services: Record<string, { loadBalancer?: { servers: { url: string }[] } }>;
        serversTransports: Record<string, Record<string, unknown>>;
      };
    }
    const overTls = parse(readExample('traefik/mirroring-tls.yml')) as Mirroring;
    const plain = parse(readExample('traefik/mirroring.yml')) as Mirroring;
    const { rootCAs, ...transport } = overTls.http.serversTransports['request-mirror-tap'] ?? {};
    expect(rootCAs).toEqual([expect.any(String)]);
    expect(transport).toEqual(plain.http.serversTransports['request-mirror-tap']);
    const url = (m: Mirroring) => m.http.services['request-mirror-tap']?.loadBalancer?.servers.map((x) => x.url);
    expect(url(overTls)).toEqual(url(plain)?.map((u) => u.replace('http:', 'https:')));
    const rest = (m: Mirroring) => ({ ...m.http, serversTransports: undefined, services: { ...m.http.services, 'request-mirror-tap': undefined } });
    expect(rest(overTls)).toEqual(rest(plain));
    // The tap's side: the same tls block as the forwardAuth listener's, on the mirror listener's port.
    const tapTls = parse(readExample('request-mirror-mirror-tls.yaml')) as { tap: { mirror: { port: number; tls: unknown } } };
    const faTls = parse(readExample('request-mirror-tls.yaml')) as { tap: { forwardAuth: { tls: unknown } } };
    expect(tapTls.tap.mirror).toEqual({ port: 8081, tls: faTls.tap.forwardAuth.tls });
  });

  it('static.yml starts Traefik with /ping on its traefik entrypoint', async () => {
    const web = await freePort();
    const admin = await freePort();
    const dir = s().dir;
    const file = join(dir, 'static.yml');
    const text = readExample('traefik/static.yml')
      .replace('":80"', `"127.0.0.1:${web}"`)
      .replace('":8088"', `"127.0.0.1:${admin}"`)
      .replace('/etc/traefik/dynamic', join(dir, 'dynamic-empty'));
    mkdirSync(join(dir, 'dynamic-empty'), { recursive: true });
    writeFileSync(file, text);
    const p = startProcess({ name: 'traefik-static', command: traefikBin(), args: [`--configFile=${file}`] });
    try {
      await waitUntil('Traefik /ping from static.yml', () => answers2xx(`http://127.0.0.1:${admin}/ping`), { process: p });
    } finally {
      await p.stop();
    }
  });
});

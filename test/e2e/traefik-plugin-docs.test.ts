import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../contract/config-file.ts';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { answers2xx, startProcess, waitUntil } from '../../tools/stack/process.ts';
import { ROOT, waitForEvent } from '../../tools/stack/stack.ts';
import { installLocalPlugin, REQUEST_MIRROR_PLUGIN, traefikBin } from '../../tools/stack/traefik.ts';
import { receiverOf, useStack } from './fixture.ts';

// Every snippet of docs/traefik-plugin.md is a file under docs/examples/ that the page embeds verbatim. The static
// and dynamic Traefik files are loaded together into a real Traefik (the static one as its --configFile, the plugin
// from plugins-local/ under its working directory) in front of the real tap; the Docker labels and the Kubernetes
// Middleware are checked to say what the loaded file says (the Kubernetes files are applied to a real API server in
// kubernetes-plugin.test.ts).

const DOC = readFileSync(join(ROOT, 'docs/traefik-plugin.md'), 'utf8');

describe('docs/traefik-plugin.md', () => {
  it('has no code block that is not an embedded example file, and embeds each file verbatim', () => {
    const blocks = [...DOC.matchAll(/(?:<!-- embed: (\S+) -->\n)?```[a-z]*\n([\s\S]*?)```/g)];
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    for (const [, path, body] of blocks) {
      expect(path, `a code block without an embed marker:\n${body ?? ''}`).toBeDefined();
      expect(body, path).toBe(readFileSync(join(ROOT, path ?? ''), 'utf8'));
    }
  });

  it('is linked from the README and from the Traefik install guide', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('(docs/traefik-plugin.md)');
    expect(readFileSync(join(ROOT, 'docs/install-traefik.md'), 'utf8')).toContain('(traefik-plugin.md)');
  });
});

const s = useStack({
  receivers: ['hook'],
  targets: (r) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], cookieNames: ['session'] }],
});

type PluginOptions = Record<string, unknown>;

/** The `plugin.requestmirror` options of the `request-mirror` middleware in plugin.yml. */
function fileProviderOptions(): PluginOptions {
  const yaml = parse(readExample('traefik/plugin.yml')) as { http: { middlewares: { 'request-mirror': { plugin: { requestmirror: PluginOptions } } } } };
  return yaml.http.middlewares['request-mirror'].plugin.requestmirror;
}

describe('docs/examples for the plugin in a real Traefik', () => {
  it('plugin-static.yml and plugin.yml load the plugin and mirror a request through it', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rm-plugin-doc-'));
    const web = await freePort();
    const admin = await freePort();
    try {
      mkdirSync(join(dir, 'dynamic'));
      writeFileSync(join(dir, 'dynamic', 'plugin.yml'), localizeExample(readExample('traefik/plugin.yml'), s().backends));
      writeFileSync(
        join(dir, 'traefik.yml'),
        readExample('traefik/plugin-static.yml')
          .replace('":80"', `"127.0.0.1:${web}"`)
          .replace('":8088"', `"127.0.0.1:${admin}"`)
          .replace('/etc/traefik/dynamic', join(dir, 'dynamic')),
      );
      // As the static file says: the plugin's source under ./plugins-local/src/<moduleName>/.
      installLocalPlugin(dir, REQUEST_MIRROR_PLUGIN);
      expect(readExample('traefik/plugin-static.yml')).toContain(`moduleName: ${REQUEST_MIRROR_PLUGIN.moduleName}`);
      const p = startProcess({ name: 'traefik-plugin-doc', command: traefikBin(), args: [`--configFile=${join(dir, 'traefik.yml')}`], cwd: dir });
      try {
        await waitUntil('Traefik /ping from plugin-static.yml', () => answers2xx(`http://127.0.0.1:${admin}/ping`), { process: p });
        // The static file enables no API: the router is up once it serves.
        await waitUntil('the app router serving', async () => {
          const res = await request(`http://127.0.0.1:${web}/ready`, { headers: { host: 'app.localhost' } });
          await res.body.dump();
          return res.statusCode === 201;
        }, { process: p });
        const res = await request(`http://127.0.0.1:${web}/doc-plugin?q=1`, {
          method: 'POST',
          headers: { host: 'app.localhost', cookie: 'session=doc; other=x' },
          body: 'ordered',
        });
        expect(res.statusCode).toBe(201);
        await res.body.dump();
        const event = await waitForEvent(receiverOf(s(), 'hook'), (e) => e.data.path === '/doc-plugin');
        expect(event.data).toMatchObject({ attachment: 'plugin', method: 'POST', host: 'app.localhost', query: 'q=1', cookies: { session: 'doc' }, body: { data: 'ordered' } });
      } catch (error) {
        throw new Error(`${(error as Error).message}\n--- traefik ---\n${p.output()}`, { cause: error });
      } finally {
        await p.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Docker labels say what plugin.yml says', () => {
    const labels = (parse(readExample('traefik/plugin-docker-labels.yml')) as { services: { upstream: { labels: string[] } } }).services.upstream.labels;
    const prefix = 'traefik.http.middlewares.request-mirror.plugin.requestmirror.';
    const fromLabels = Object.fromEntries(
      labels.filter((l) => l.startsWith(prefix)).map((l) => {
        const i = l.indexOf('=');
        return [l.slice(prefix.length, i), l.slice(i + 1)];
      }),
    );
    // Labels are strings, lists comma-separated: Traefik's decoder (weakly typed) turns them into the file's values.
    const fromFile = Object.fromEntries(Object.entries(fileProviderOptions()).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]));
    expect(fromLabels).toEqual(fromFile);
    expect(labels).toContain('traefik.http.routers.app.middlewares=request-mirror');
  });

  it('the Kubernetes Middleware carries the same options as plugin.yml (only the tap address differs)', () => {
    const middleware = parse(readExample('kubernetes/plugin-middleware.yaml')) as { kind: string; metadata: { name: string; namespace: string }; spec: { plugin: { requestmirror: PluginOptions } } };
    expect(middleware.kind).toBe('Middleware');
    expect({ ...middleware.spec.plugin.requestmirror, tapURL: undefined }).toEqual({ ...fileProviderOptions(), tapURL: undefined });
    const ingress = parse(readExample('kubernetes/plugin-ingress.yaml')) as { metadata: { annotations: Record<string, string> } };
    expect(ingress.metadata.annotations['traefik.ingress.kubernetes.io/router.middlewares']).toBe(`${middleware.metadata.namespace}-${middleware.metadata.name}@kubernetescrd`);
  });

  it('request-mirror-plugin.yaml is a valid config with the plugin listener on the port the Traefik snippets use', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rm-plugin-config-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, readExample('request-mirror-plugin.yaml'));
      const config = loadConfig(file, {});
      expect(config.tap.plugin.port).toBe(Number(new URL(String(fileProviderOptions().tapURL)).port));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

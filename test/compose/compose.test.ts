import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../contract/config-file.ts';
import { freePort } from '../../tools/stack/free-port.ts';
import { natsServerBin } from '../../tools/stack/nats-server.ts';
import { startProcess } from '../../tools/stack/process.ts';
import { ROOT } from '../../tools/stack/stack.ts';
import { DEMO_ROUTERS } from '../../tools/demo/routes.ts';
import { startTraefik } from '../../tools/stack/traefik.ts';

// There is no Docker engine here, so docker-compose.yml and the Dockerfile are checked as far as one can without
// one: schema, the files they mount and copy, the real binaries reading those files, and the build's entrypoints.

const run = promisify(execFile);
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

interface Service {
  image?: string;
  build?: string | { context: string; target?: string };
  command?: string[];
  volumes?: string[];
  labels?: string[];
  healthcheck?: { test: string[] };
}
const compose = parse(read('docker-compose.yml')) as { services: Record<string, Service> };
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

/** The version of `module` that tools/go/<wrapper>/go.mod pins: the one the tests build and run. */
function pinned(wrapper: string, module: string): string {
  const version = new RegExp(`^\\s*${module.replace(/[./]/g, '\\$&')} (v\\S+)`, 'm').exec(read(`tools/go/${wrapper}/go.mod`))?.[1];
  if (!version) throw new Error(`tools/go/${wrapper}/go.mod does not require ${module}`);
  return version;
}

/** The files mounted into Traefik's file-provider directory, with their content from the repository. */
function dynamicFiles(): [string, string][] {
  const directory = /^--providers\.file\.directory=(.+)$/.exec((svc('traefik').command ?? []).find((c) => c.startsWith('--providers.file.directory=')) ?? '')?.[1];
  expect(directory).toBeDefined();
  return (svc('traefik').volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([, inside]) => inside?.startsWith(`${directory ?? ''}/`))
    .map(([local = '', inside = '']) => [inside.slice((directory ?? '').length + 1), read(local)]);
}

const tmp = mkdtempSync(join(tmpdir(), 'rm-compose-'));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification JSON Schema', () => {
    // It also labels subschemas with draft-04 `id` strings, which carry no meaning for validation; ajv refuses them.
    const schema = JSON.parse(read('test/compose/compose-spec.schema.json'), (key, value: unknown) =>
      key === 'id' && typeof value === 'string' ? undefined : value,
    ) as object;
    // The schema names its meta-schema as `http://…/draft/2019-09/schema#`, a spelling ajv does not register.
    const ajv = new Ajv2019({ strict: false, allErrors: true, validateSchema: false });
    // Formats the Compose Specification's schema names but JSON Schema does not define: a Go duration, a port mapping
    // `[[IP:]HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTOCOL]`, an exposed port and a subnet. Unknown to ajv, which would
    // otherwise print a warning for each and check nothing.
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
    const port = String.raw`\d+(-\d+)?`;
    ajv.addFormat('ports', new RegExp(String.raw`^((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(${port}:)?${port}(/(tcp|udp|sctp))?$`));
    ajv.addFormat('expose', new RegExp(String.raw`^${port}(/(tcp|udp|sctp))?$`));
    ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F:.]+\/\d{1,3}$/);
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('mounts only files that exist in the repository', () => {
    const mounts = Object.values(compose.services).flatMap((s) => s.volumes ?? []);
    const local = mounts.map((m) => m.split(':')[0] ?? '').filter((m) => m.startsWith('./'));
    expect(local.length).toBeGreaterThan(0);
    for (const m of local) expect(existsSync(join(ROOT, m)), m).toBe(true);
  });

  it('runs the official Traefik and NATS images at the versions the tests build, our image for both services, each with a health check', () => {
    expect(svc('traefik').image).toBe(`traefik:${pinned('traefik', 'github.com/traefik/traefik/v3')}`);
    expect(svc('nats').image).toBe(`nats:${pinned('nats-server', 'github.com/nats-io/nats-server/v2').replace(/^v/, '')}-alpine`);
    expect(svc('ingress-tap').command?.slice(0, 2)).toEqual(['node', 'dist/ingress-tap/main.js']);
    expect(svc('dispatcher').command?.slice(0, 2)).toEqual(['node', 'dist/dispatcher/main.js']);
    for (const name of ['traefik', 'nats', 'ingress-tap', 'dispatcher']) expect(svc(name).healthcheck?.test, name).toBeDefined();
  });

  it('gives the services a config file that loadConfig accepts, pointing at the compose service names', () => {
    const config = loadConfig(join(ROOT, 'docs/examples/request-mirror.yaml'), {});
    expect(config.nats.url).toBe('nats://nats:4222');
    expect(config.targets.map((t) => new URL(t.watchURL).host)).toEqual(['receiver:8092']);
    expect([config.tap.forwardAuth.port, config.tap.mirror.port, config.tap.admin.port, config.dispatcher.admin.port]).toEqual([8080, 8081, 9080, 9081]);
    expect(svc('ingress-tap').healthcheck?.test.join(' ')).toContain(':9080/readyz');
    expect(svc('dispatcher').healthcheck?.test.join(' ')).toContain(':9081/readyz');
    expect(svc('receiver').command).toEqual(['node', 'tools/demo/receiver.ts', '--port', '8092']);
    expect(svc('upstream').command).toEqual(['node', 'tools/demo/upstream.ts', '--port', '8080']);
  });

  it("raises NATS max_payload to 8 MB through the mounted config, as a real nats-server reports it", async () => {
    expect(svc('nats').command).toEqual(['--config', '/etc/nats/nats.conf']);
    const port = await freePort();
    const monitor = await freePort();
    const nats = startProcess({
      name: 'nats-server',
      command: natsServerBin(),
      args: ['-c', join(ROOT, 'docs/examples/nats.conf'), '-a', '127.0.0.1', '-p', String(port), '-m', String(monitor)],
    });
    try {
      const deadline = Date.now() + 15_000;
      let maxPayload = 0;
      while (Date.now() < deadline) {
        try {
          const nc = await connect({ servers: `nats://127.0.0.1:${port}`, reconnect: false });
          maxPayload = nc.info?.max_payload ?? 0;
          await nc.close();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(maxPayload, nats.output()).toBe(8 * 1024 * 1024);
    } finally {
      await nats.stop();
    }
  });

  it('declares the same Traefik routers as make demo: app by Docker labels, api (forwardBody) and shop by the files it mounts', () => {
    const labelled = (svc('upstream').labels ?? []).flatMap((l) => /^traefik\.http\.routers\.([\w-]+)\.rule=/.exec(l)?.[1] ?? []);
    const mounted = dynamicFiles().flatMap(([, text]) => Object.keys((parse(text) as { http?: { routers?: object } }).http?.routers ?? {}));
    expect([...labelled, ...mounted].sort()).toEqual([...DEMO_ROUTERS].sort());
    const body = parse(read('docs/examples/traefik/forward-auth-body.yml')) as { http: { middlewares: Record<string, { forwardAuth?: { forwardBody?: boolean } }> } };
    expect(Object.values(body.http.middlewares).map((m) => m.forwardAuth?.forwardBody)).toEqual([true]);
  });

  it('loads the dynamic files it mounts into a real Traefik, which serves their routers', async () => {
    const files = dynamicFiles();
    expect(files.map(([name]) => name).sort()).toEqual(['forward-auth-body.yml', 'mirroring.yml']);
    const traefik = await startTraefik({ files: Object.fromEntries(files), routers: ['api', 'shop'] });
    await traefik.stop();
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds on the Node.js version tools/versions.sh pins', () => {
    const node = /^NODE_VERSION=(\S+)$/m.exec(read('tools/versions.sh'))?.[1];
    expect(node).toMatch(/^24\.\d+\.\d+$/);
    expect([...dockerfile.matchAll(/^FROM (node:\S+)/gm)].map((m) => m[1])).toEqual([`node:${node ?? ''}-slim`, `node:${node ?? ''}-slim`]);
  });

  it('copies only paths that exist and builds as a non-root user', () => {
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(?:--chown=\S+ )?(.+) \S+$/gm)].flatMap((m) => (m[1] ?? '').split(' '));
    expect(copies.length).toBeGreaterThan(0);
    for (const path of copies) expect(existsSync(join(ROOT, path)), path).toBe(true);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^RUN npm run build/m);
  });

  it('keeps what the image needs out of .dockerignore', () => {
    const ignored = read('.dockerignore').split('\n').filter(Boolean);
    for (const needed of ['contract', 'ingress-tap', 'dispatcher', 'tools', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored, needed).not.toContain(needed);
    }
  });

  it('`npm run build` emits the two entrypoints the compose file runs, and they start and validate a config', { timeout: 120_000 }, async () => {
    // Inside the repository so the compiled files resolve node_modules as they do in the image.
    const out = mkdtempSync(join(ROOT, 'node_modules', '.rm-build-'));
    try {
      await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out], { cwd: ROOT });
      for (const entry of ['ingress-tap/main.js', 'dispatcher/main.js']) {
        expect(existsSync(join(out, entry)), entry).toBe(true);
        // No config: each must load all its modules and then refuse to start, naming what is missing.
        const bad = join(tmp, 'missing.yaml');
        const result = await run(process.execPath, [join(out, entry), '--config', bad], { cwd: ROOT }).then(
          () => ({ code: 0, stderr: '', stdout: '' }),
          (e: unknown) => e as { code: number; stderr: string; stdout: string },
        );
        expect(result.code, entry).toBe(2);
        expect(result.stderr + result.stdout, entry).toContain('missing.yaml');
        // The image's way to check a config file: `validate` as the first argument.
        const valid = await run(process.execPath, [join(out, entry), 'validate', '--config', join(ROOT, 'docs/examples/request-mirror.yaml')], { cwd: ROOT });
        expect(valid.stdout, entry).toMatch(/request-mirror\.yaml: valid for the (ingress-tap|dispatcher) \(1 target\)/);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});


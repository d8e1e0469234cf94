import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../stack/free-port.ts';
import { startNatsServer, type NatsServer } from '../stack/nats-server.ts';
import { startBenchNginx, type BenchNginx } from './nginx.ts';
import { pipelineMissing, startPipeline, type Pipeline } from './pipeline.ts';
import { nodeScript, requireBin, startPeer, type Peer } from './processes.ts';
import { startBenchTraefik, type BenchTraefik, type Dynamic } from './traefik.ts';

// Everything the latency scenarios run against, started once and shared by every round: one Traefik with a router
// per scenario, the upstream, the forwardAuth floor (Go responder), bare fastify over HTTP/1.1 and over HTTP/2+TLS,
// one tap+dispatcher pipeline per webhook condition (plus a healthy one whose forwardAuth listener serves HTTP/2 over
// TLS, for S2h2), the webhook receivers, and nginx for S9.

export type PipelineName = 'healthy' | 'healthy-h2' | 'slow' | 'refused' | 'blackhole' | 'natsdown';

export interface World {
  readonly dir: string;
  readonly traefik: BenchTraefik;
  readonly nginx?: BenchNginx;
  readonly upstream: Peer;
  readonly goAuth: Peer;
  readonly fastifyH1: Peer;
  readonly fastifyH2: Peer;
  /** The healthy webhook receiver every healthy pipeline's dispatcher delivers to. */
  readonly receiver: Peer;
  readonly nats: NatsServer;
  readonly pipelines: ReadonlyMap<PipelineName, Pipeline>;
  /** Why a part could not start, e.g. `pipelines` or `nginx`. */
  readonly unavailable: ReadonlyMap<string, string>;
  stop(): Promise<void>;
}

function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'tls-cert.pem');
  const key = join(dir, 'tls-key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

function forwardAuth(address: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { forwardAuth: { address, trustForwardHeader: true, ...extra } };
}

export async function startWorld(dir: string): Promise<World> {
  const stops: (() => Promise<void>)[] = [];
  const unavailable = new Map<string, string>();
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const responder = requireBin('RESPONDER_BIN', 'run through `make bench`');
    const upstream = await startPeer('upstream', responder, ['-listen', '127.0.0.1:0'], dir);
    stops.push(() => upstream.process.stop());
    const goAuth = await startPeer('go-auth', responder, ['-listen', '127.0.0.1:0'], dir);
    stops.push(() => goAuth.process.stop());
    const bare = nodeScript('peers/bare-fastify.ts');
    const fastifyH1 = await startPeer('fastify-h1', bare.command, bare.args, dir);
    stops.push(() => fastifyH1.process.stop());
    const tls = selfSignedCert(dir);
    const fastifyH2 = await startPeer('fastify-h2', bare.command, [...bare.args, '--tls-cert', tls.cert, '--tls-key', tls.key], dir);
    stops.push(() => fastifyH2.process.stop());
    const recv = nodeScript('peers/receiver.ts');
    const fast = await startPeer('webhook-fast', recv.command, recv.args, dir);
    stops.push(() => fast.process.stop());
    const slow = await startPeer('webhook-slow', recv.command, [...recv.args, '--mode', 'slow', '--delay-ms', '2000'], dir);
    stops.push(() => slow.process.stop());
    const blackhole = await startPeer('webhook-blackhole', recv.command, [...recv.args, '--mode', 'blackhole'], dir);
    stops.push(() => blackhole.process.stop());
    const nginxMirror = await startPeer('nginx-mirror-slow', recv.command, [...recv.args, '--mode', 'slow', '--delay-ms', '2000'], dir);
    stops.push(() => nginxMirror.process.stop());
    const refusedPort = await freePort();

    const nats = await startNatsServer();
    stops.push(() => nats.stop());
    const pipelines = new Map<PipelineName, Pipeline>();
    const missing = pipelineMissing();
    if (missing) {
      unavailable.set('pipelines', missing);
    } else {
      const hook = (url: string) => [{ name: 'hook', watchURL: url, methods: ['*'] }];
      const natsDown = await startNatsServer();
      stops.push(() => natsDown.stop());
      const specs: [PipelineName, string, string][] = [
        ['healthy', nats.url, `${fast.url}/hook`],
        ['healthy-h2', nats.url, `${fast.url}/hook`],
        ['slow', nats.url, `${slow.url}/hook`],
        ['refused', nats.url, `http://127.0.0.1:${refusedPort}/hook`],
        ['blackhole', nats.url, `${blackhole.url}/hook`],
        ['natsdown', natsDown.url, `${fast.url}/hook`],
      ];
      try {
        for (const [name, natsUrl, url] of specs) {
          // S2h2: the same self-signed certificate as X2's fastify (SAN IP:127.0.0.1), trusted by Traefik as tls.ca.
          const forwardAuthTls = name === 'healthy-h2' ? { certFile: tls.cert, keyFile: tls.key } : undefined;
          const options = { name, natsUrl, targets: hook(url), dir, ...(forwardAuthTls ? { forwardAuthTls } : {}) };
          // Ports are picked free, then bound by the services: another program on the machine may take one in
          // between (seen: EADDRINUSE while other test suites ran). One more try with fresh ports.
          const p = await startPipeline(options).catch(() => startPipeline(options));
          stops.push(() => p.stop());
          pipelines.set(name, p);
        }
        // S6: both services were up and connected; now their NATS goes away for the rest of the run.
        await natsDown.stop();
      } catch (error) {
        unavailable.set('pipelines', (error as Error).message.split('\n').slice(0, 12).join('\n'));
        for (const p of pipelines.values()) await p.stop();
        pipelines.clear();
      }
    }

    const routers: Record<string, unknown> = {};
    const middlewares: Record<string, unknown> = {
      'auth-go': forwardAuth(`${goAuth.url}/`),
      'auth-x1': forwardAuth(`${fastifyH1.url}/`),
      'auth-x2': forwardAuth(`https://127.0.0.1:${fastifyH2.port}/`, { tls: { ca: tls.cert } }),
    };
    const services: Record<string, unknown> = {
      upstream: { loadBalancer: { servers: [{ url: upstream.url }] } },
    };
    const route = (id: string, middleware?: string, service = 'upstream') => {
      routers[id] = {
        rule: `PathPrefix(\`/${id}/\`)`,
        entryPoints: ['web'],
        service,
        ...(middleware ? { middlewares: [middleware] } : {}),
      };
    };
    route('s0');
    route('s0b');
    route('s1', 'auth-go');
    route('x1', 'auth-x1');
    route('x2', 'auth-x2');
    const byScenario: [string, PipelineName][] = [
      ['s2', 'healthy'],
      ['s2h2', 'healthy-h2'],
      ['s3', 'slow'],
      ['s4', 'refused'],
      ['s5', 'blackhole'],
      ['s6', 'natsdown'],
    ];
    for (const [id, name] of byScenario) {
      const p = pipelines.get(name);
      if (!p) continue;
      // S2h2 as X2: https, with the listener's self-signed certificate as tls.ca, so Traefik's client attempts HTTP/2.
      middlewares[`auth-${name}`] =
        name === 'healthy-h2'
          ? forwardAuth(`https://127.0.0.1:${p.forwardAuthPort}/`, { authResponseHeaders: ['X-Request-Mirror-Id'], tls: { ca: tls.cert } })
          : forwardAuth(`http://127.0.0.1:${p.forwardAuthPort}/`, { authResponseHeaders: ['X-Request-Mirror-Id'] });
      route(id, `auth-${name}`);
    }
    const healthy = pipelines.get('healthy');
    if (healthy) {
      middlewares['auth-body'] = forwardAuth(`http://127.0.0.1:${healthy.forwardAuthPort}/`, {
        authResponseHeaders: ['X-Request-Mirror-Id'],
        forwardBody: true,
        maxBodySize: 1024 * 1024,
      });
      services['tap-mirror'] = { loadBalancer: { servers: [{ url: `http://127.0.0.1:${healthy.mirrorPort}` }] } };
      services['with-mirror'] = { mirroring: { service: 'upstream', mirrors: [{ name: 'tap-mirror', percent: 100 }] } };
      route('s7', undefined, 'with-mirror');
      // S10: the Request Mirror plugin inside Traefik, shipping to the healthy tap's plugin listener.
      middlewares['plugin-healthy'] = { plugin: { requestmirror: { tapURL: `http://127.0.0.1:${healthy.pluginPort}`, methods: ['*'] } } };
      route('s10', 'plugin-healthy');
      route('s8', 'auth-body');
      // The memory test's routers: the same attachments, kept apart so their access-log figures stay apart.
      route('m2', 'auth-healthy');
      route('m8', 'auth-body');
      route('m7', undefined, 'with-mirror');
    }
    const dynamic: Dynamic = { http: { routers, middlewares, services } };
    const traefik = await startBenchTraefik(dynamic, Object.keys(routers), dir);
    stops.push(() => traefik.stop());

    let nginx: BenchNginx | undefined;
    const nginxBin = process.env.NGINX_BIN;
    if (!nginxBin) unavailable.set('nginx', 'NGINX_BIN not set: nginx is not installed and could not be installed');
    else {
      try {
        nginx = await startBenchNginx(nginxBin, upstream.port, nginxMirror.port, dir);
        const n = nginx;
        stops.push(() => n.stop());
      } catch (error) {
        unavailable.set('nginx', (error as Error).message.split('\n').slice(0, 8).join('\n'));
      }
    }
    writeFileSync(join(dir, 'ports.json'), JSON.stringify({ traefik: traefik.url, nginx: nginx?.url, upstream: upstream.url }, null, 2));
    return {
      dir,
      traefik,
      ...(nginx ? { nginx } : {}),
      upstream,
      goAuth,
      fastifyH1,
      fastifyH2,
      receiver: fast,
      nats,
      pipelines,
      unavailable,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

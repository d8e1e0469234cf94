import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { freePort } from '../stack/free-port.ts';
import { waitUntil, type ManagedProcess } from '../stack/process.ts';
import { startLogged } from './processes.ts';

// Debian's nginx with its core `mirror` module: the established way to copy traffic without a separate tap, and the
// peer to beat (S9). It proxies to the same upstream as Traefik and mirrors each request, body included, to a
// receiver that answers after 2 s. Same worker count as Traefik's GOMAXPROCS (one per core), access log buffered
// like Traefik's.

export interface BenchNginx {
  readonly url: string;
  readonly process: ManagedProcess;
  readonly version: string;
  stop(): Promise<void>;
}

export function nginxVersion(bin: string): string {
  // `nginx -v` prints to stderr.
  const res = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return `${res.stderr}${res.stdout}`.trim() || 'unknown';
}

export async function startBenchNginx(bin: string, upstreamPort: number, mirrorPort: number, dir: string): Promise<BenchNginx> {
  const root = join(dir, 'nginx');
  mkdirSync(join(root, 'temp'), { recursive: true });
  const port = await freePort();
  const conf = join(root, 'nginx.conf');
  writeFileSync(
    conf,
    `user root;
worker_processes 2;
daemon off;
pid ${root}/nginx.pid;
error_log ${root}/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  access_log ${root}/access.log combined buffer=64k;
  client_body_temp_path ${root}/temp/body;
  proxy_temp_path ${root}/temp/proxy;
  fastcgi_temp_path ${root}/temp/fastcgi;
  uwsgi_temp_path ${root}/temp/uwsgi;
  scgi_temp_path ${root}/temp/scgi;
  client_max_body_size 2m;
  keepalive_requests 100000;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  upstream slow_mirror { server 127.0.0.1:${mirrorPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      mirror /__mirror;
      mirror_request_body on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
    location = /__mirror {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://slow_mirror$request_uri;
    }
  }
}
`,
  );
  execFileSync(bin, ['-t', '-q', '-p', root, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = startLogged('nginx', bin, ['-p', root, '-c', conf], dir);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'nginx to listen',
    async () => {
      const res = await fetch(`${url}/s9/ready`, { signal: AbortSignal.timeout(3000) });
      await res.arrayBuffer();
      return res.ok;
    },
    { process: child },
  );
  return { url, process: child, version: nginxVersion(bin), stop: () => child.stop() };
}

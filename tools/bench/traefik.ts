import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../stack/free-port.ts';
import { answers2xx, waitUntil, type ManagedProcess } from '../stack/process.ts';
import { installLocalPlugin, REQUEST_MIRROR_PLUGIN } from '../stack/traefik.ts';
import { requireBin, startLogged } from './processes.ts';

// Traefik for the benchmark: one process serves every scenario, one router per scenario (PathPrefix /<id>/), so all
// scenarios share the same Traefik, the same warm-up and the same noise. tools/stack/traefik.ts writes an
// unbuffered access log and takes no extra static options, which at 2,000 req/s would measure the log, so this is a
// thin launcher of its own that reuses the test process helpers. The access log is JSON, buffered, and read per
// router afterwards for Traefik's own Duration / OriginDuration / Overhead split.

/** Only what the analysis reads, so the log costs Traefik as little as possible. */
export const ACCESS_LOG_FIELDS = ['RouterName', 'Duration', 'OriginDuration', 'Overhead', 'DownstreamStatus'] as const;

export interface BenchTraefik {
  readonly url: string;
  readonly process: ManagedProcess;
  readonly accessLogPath: string;
  stop(): Promise<void>;
}

export type Dynamic = Record<string, unknown>;

export async function startBenchTraefik(dynamic: Dynamic, routers: readonly string[], dir: string): Promise<BenchTraefik> {
  const bin = requireBin('TRAEFIK_BIN', 'run through `make bench`');
  const dynamicFile = join(dir, 'traefik-dynamic.yml');
  const accessLogPath = join(dir, 'traefik-access.log');
  writeFileSync(dynamicFile, stringify(dynamic));
  // The Request Mirror plugin (S10), loaded locally from plugins-local/src/<module>/ under Traefik's working directory.
  installLocalPlugin(dir, REQUEST_MIRROR_PLUGIN);
  const webPort = await freePort();
  const adminPort = await freePort();
  const child = startLogged('traefik', bin, [
    `--entryPoints.web.address=127.0.0.1:${webPort}`,
    `--entryPoints.traefik.address=127.0.0.1:${adminPort}`,
    '--ping=true',
    '--api.insecure=true',
    `--providers.file.filename=${dynamicFile}`,
    '--providers.file.watch=false',
    '--log.level=ERROR',
    '--accesslog=true',
    `--accesslog.filepath=${accessLogPath}`,
    '--accesslog.format=json',
    '--accesslog.bufferingsize=1000',
    '--accesslog.fields.defaultmode=drop',
    ...ACCESS_LOG_FIELDS.map((f) => `--accesslog.fields.names.${f}=keep`),
    '--accesslog.fields.headers.defaultmode=drop',
    '--global.checkNewVersion=false',
    '--global.sendAnonymousUsage=false',
    `--experimental.localPlugins.requestmirror.moduleName=${REQUEST_MIRROR_PLUGIN.moduleName}`,
  ], dir, process.env, dir);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitUntil('Traefik /ping', () => answers2xx(`${adminUrl}/ping`), { process: child });
  const wanted = routers.map((r) => `${r}@file`);
  await waitUntil(
    `Traefik routers ${wanted.join(', ')}`,
    async () => {
      const res = await fetch(`${adminUrl}/api/http/routers`, { signal: AbortSignal.timeout(2000) });
      const list = (await res.json()) as { name: string; status: string }[];
      return wanted.every((w) => list.some((r) => r.name === w && r.status === 'enabled'));
    },
    { process: child },
  );
  return { url: `http://127.0.0.1:${webPort}`, process: child, accessLogPath, stop: () => child.stop() };
}

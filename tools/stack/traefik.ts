import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { answers2xx, startProcess, waitUntil, type ManagedProcess } from './process.ts';
import { scratchDir } from './scratch-dir.ts';

// A real Traefik (the pinned build from tools/env.sh) with the file provider reading a temp directory. Static
// configuration is given as CLI flags; dynamic configuration as files (YAML or TOML, chosen by extension).

export function traefikBin(): string {
  const bin = process.env.TRAEFIK_BIN;
  if (!bin || !existsSync(bin)) {
    throw new Error('TRAEFIK_BIN is not set to a traefik binary: run the tests with `make test` (it builds one)');
  }
  return bin;
}

export interface TraefikOptions {
  /** Dynamic configuration files by name, e.g. `{ 'routes.yml': '...' }` or `{ 'routes.toml': '...' }`. */
  readonly files: Readonly<Record<string, string>>;
  /** Routers (names without `@file`) that must be enabled before Traefik counts as ready. */
  readonly routers: readonly string[];
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Fixed ports (the demo); default: free ones. */
  readonly webPort?: number;
  readonly adminPort?: number;
  readonly host?: string;
  readonly onOutput?: (text: string) => void;
  /** Watch the dynamic files and apply changes while running (default off: the files are read once). */
  readonly watch?: boolean;
  /** Local Yaegi plugins to load, by the name middlewares use (`plugin.<name>`). */
  readonly localPlugins?: Readonly<Record<string, LocalPlugin>>;
  /** More static configuration flags, e.g. `--api.debug=true`. */
  readonly extraArgs?: readonly string[];
}

/** A Yaegi plugin's source, loaded by Traefik from `plugins-local/src/<moduleName>/` under its working directory. */
export interface LocalPlugin {
  readonly moduleName: string;
  /** Directory holding `.traefik.yml` and the package's Go files; `_test.go` files are not copied. */
  readonly sourceDir: string;
}

/** The Request Mirror Traefik plugin as Traefik loads it locally; middlewares name it `plugin.requestmirror`. */
export const REQUEST_MIRROR_PLUGIN: LocalPlugin = {
  moduleName: 'requestmirror.local/traefik-plugin',
  sourceDir: join(import.meta.dirname, '..', '..', 'traefik-plugin'),
};

/** Copies a local plugin's source to where Traefik running in `workDir` looks for it. */
export function installLocalPlugin(workDir: string, plugin: LocalPlugin): void {
  cpSync(plugin.sourceDir, join(workDir, 'plugins-local', 'src', plugin.moduleName), {
    recursive: true,
    filter: (source) => !source.endsWith('_test.go'),
  });
}

export interface AccessLogEntry {
  readonly RouterName?: string;
  readonly ServiceName?: string;
  readonly DownstreamStatus?: number;
  readonly OriginStatus?: number;
  readonly RequestMethod?: string;
  readonly RequestPath?: string;
  readonly [key: string]: unknown;
}

export interface Traefik {
  /** The `web` entrypoint, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly webPort: number;
  /** The `traefik` entrypoint: /ping and the API. */
  readonly adminUrl: string;
  readonly process: ManagedProcess;
  /** Directory of the dynamic configuration files (the file provider's). */
  readonly dynamicDir: string;
  /** Parsed JSON access log lines so far. */
  accessLog(): AccessLogEntry[];
  /** Lines of Traefik's own log (stdout/stderr) that contain `text`. */
  logLines(text: string): string[];
  stop(): Promise<void>;
}

interface RouterInfo {
  readonly name: string;
  readonly status: string;
}

export async function startTraefik(options: TraefikOptions): Promise<Traefik> {
  const host = options.host ?? '127.0.0.1';
  const scratch = scratchDir('rm-traefik-');
  const dir = scratch.path;
  const dynamicDir = join(dir, 'dynamic');
  const accessLogPath = join(dir, 'access.log');
  writeFileSync(accessLogPath, '');
  mkdirSync(dynamicDir);
  for (const [name, content] of Object.entries(options.files)) writeFileSync(join(dynamicDir, name), content);
  const pluginFlags: string[] = [];
  for (const [name, plugin] of Object.entries(options.localPlugins ?? {})) {
    // Traefik reads local plugins relative to its working directory, which is `dir`.
    installLocalPlugin(dir, plugin);
    pluginFlags.push(`--experimental.localPlugins.${name}.moduleName=${plugin.moduleName}`);
  }
  const webPort = options.webPort ?? (await freePort(host));
  const adminPort = options.adminPort ?? (await freePort(host));
  const child = startProcess({
    name: 'traefik',
    command: traefikBin(),
    args: [
      `--entryPoints.web.address=${host}:${webPort}`,
      `--entryPoints.traefik.address=${host}:${adminPort}`,
      '--ping=true',
      '--api.insecure=true',
      `--providers.file.directory=${dynamicDir}`,
      `--providers.file.watch=${options.watch === true}`,
      `--log.level=${options.logLevel ?? 'INFO'}`,
      '--accesslog=true',
      `--accesslog.filepath=${accessLogPath}`,
      '--accesslog.format=json',
      '--accesslog.bufferingsize=0',
      '--global.checkNewVersion=false',
      '--global.sendAnonymousUsage=false',
      ...pluginFlags,
      ...(options.extraArgs ?? []),
    ],
    cwd: dir,
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
  });
  const adminUrl = `http://${host}:${adminPort}`;
  const stop = async () => {
    await child.stop();
    scratch.remove();
  };
  try {
    await waitUntil('Traefik /ping', () => answers2xx(`${adminUrl}/ping`), { process: child });
    const wanted = options.routers.map((r) => `${r}@file`);
    await waitUntil(
      `Traefik routers ${wanted.join(', ')} enabled`,
      async () => {
        const res = await fetch(`${adminUrl}/api/http/routers`, { signal: AbortSignal.timeout(2000) });
        const routers = (await res.json()) as RouterInfo[];
        return wanted.every((w) => routers.some((r) => r.name === w && r.status === 'enabled'));
      },
      { process: child },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `http://${host}:${webPort}`,
    webPort,
    adminUrl,
    process: child,
    dynamicDir,
    accessLog: () =>
      readFileSync(accessLogPath, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as AccessLogEntry),
    logLines: (text) =>
      child
        .output()
        .split('\n')
        .filter((l) => l.includes(text)),
    stop,
  };
}

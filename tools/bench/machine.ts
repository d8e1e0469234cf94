import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { nginxVersion } from './nginx.ts';
import { REPO_ROOT } from './processes.ts';

// What the figures were measured on and with.

export interface Machine {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly loadAverage: readonly number[];
}

export interface Versions {
  readonly node: string;
  readonly traefik: string;
  readonly natsServer: string;
  readonly nginx: string;
  readonly vegeta: string;
  /** The commit measured, and uncommitted changes to the services in the working tree at the start of the run. */
  readonly commit: string;
  readonly uncommitted: readonly string[];
}

export function machine(): Machine {
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function firstLine(bin: string | undefined, args: readonly string[], pattern: RegExp): string {
  if (!bin) return 'not installed';
  try {
    const out = execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return pattern.exec(out)?.[1]?.trim() ?? out.trim().split('\n')[0] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function versions(): Versions {
  return {
    node: process.version,
    traefik: firstLine(process.env.TRAEFIK_BIN, ['version'], /Version:\s+(\S+)/),
    natsServer: firstLine(process.env.NATS_SERVER_BIN, ['--version'], /(v\d[^\s]*)/),
    nginx: process.env.NGINX_BIN ? nginxVersion(process.env.NGINX_BIN).replace(/^nginx version: /, '') : 'not installed',
    vegeta: firstLine(process.env.VEGETA_BIN, ['-version'], /Version:\s+(\S+)/),
    ...revision(),
  };
}

/** The 1-minute load average right now, from /proc/loadavg (what `uptime` shows). */
export function load1(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

export function revision(): { commit: string; uncommitted: string[] } {
  const git = (args: readonly string[]) => {
    try {
      return execFileSync('git', args, { encoding: 'utf8', cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  return {
    commit: git(['rev-parse', '--short', 'HEAD']) || 'unknown',
    uncommitted: git(['status', '--porcelain', '--', 'ingress-tap', 'dispatcher', 'contract'])
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.slice(3)),
  };
}

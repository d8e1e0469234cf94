import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';

/** The two services, as their log lines and metrics name them. */
export type ServiceName = 'ingress-tap' | 'dispatcher';

/**
 * The logger both services write with: pino JSON lines on stdout, each carrying `service`, `pid` and `hostname` (in
 * Kubernetes the pod's name), so lines from either service can be filtered the same way once collected together.
 * The level comes from the `LOG_LEVEL` environment variable (pino's `trace` … `fatal`, or `silent`), `info` when unset;
 * pino throws at start-up on any other value.
 */
export function createServiceLogger(service: ServiceName): Logger {
  return pino({ level: process.env.LOG_LEVEL ?? 'info', base: { service, pid: process.pid, hostname: hostname() } });
}

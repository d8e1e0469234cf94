import type { Target } from './config.ts';

// Which requests a target wants. The tap uses it to skip requests no target wants; the dispatcher to route.

export interface RequestKey {
  readonly method: string;
  readonly host: string;
  readonly path: string;
}

export function targetWants(target: Pick<Target, 'methods' | 'hosts' | 'pathPrefixes'>, req: RequestKey): boolean {
  return (
    (target.methods.includes('*') || target.methods.includes(req.method)) &&
    (target.hosts.length === 0 || target.hosts.some((h) => hostMatches(h, req.host))) &&
    (target.pathPrefixes.length === 0 || target.pathPrefixes.some((p) => req.path.startsWith(p)))
  );
}

// `host` is canonical (contract/host.ts), patterns are lower-case without a trailing dot (the config schema).
function hostMatches(pattern: string, host: string): boolean {
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern;
}

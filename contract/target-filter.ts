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

function hostMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase();
  return pattern.startsWith('*.') ? h.endsWith(pattern.slice(1)) : h === pattern;
}

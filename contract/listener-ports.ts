import { isIP } from 'node:net';

// The tap opens four listeners (forwardAuth, mirror, plugin, admin). Two of them on one port and overlapping hosts
// passed the schema and `make validate`, then the tap exited 1 at start-up with RM_TAP_LISTEN_FAILED (EADDRINUSE);
// the schema refuses such a file instead, naming both listeners. A listener on a wildcard host takes its port on
// every address, IPv4 and IPv6 alike (Node binds `::` dual-stack). Host names other than `localhost` are compared as
// written: resolving them here would make the verdict depend on the machine that validates.

export interface Listener {
  readonly host: string;
  readonly port: number;
}

/** The addresses `host` binds, `null` for every address; a name other than `localhost` stands for itself. */
function boundAddresses(host: string): ReadonlySet<string> | null {
  const bare = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return new Set(['127.0.0.1', '::1']);
  // The URL parser writes every spelling of an IPv6 address one way (`0:0::0` is `::`).
  const canonical = isIP(bare) === 6 ? new URL(`http://[${bare}]/`).hostname.slice(1, -1) : bare;
  return canonical === '' || canonical === '0.0.0.0' || canonical === '::' ? null : new Set([canonical]);
}

function overlap(a: string, b: string): boolean {
  const [x, y] = [boundAddresses(a), boundAddresses(b)];
  return x === null || y === null || [...x].some((address) => y.has(address));
}

export interface PortClash {
  readonly name: string;
  readonly listener: Listener;
  /** The earlier listener that takes the port. */
  readonly takenBy: string;
  readonly takenByHost: string;
}

/**
 * Each listener (in the order given) whose port an earlier one already takes on an overlapping host. Port 0 (the
 * system picks a free port) never clashes.
 */
export function portClashes(listeners: readonly (readonly [name: string, listener: Listener])[]): PortClash[] {
  const clashes: PortClash[] = [];
  listeners.forEach(([name, listener], i) => {
    if (listener.port === 0) return;
    const earlier = listeners.slice(0, i).find(([, e]) => e.port === listener.port && overlap(e.host, listener.host));
    if (earlier) clashes.push({ name, listener, takenBy: earlier[0], takenByHost: earlier[1].host });
  });
  return clashes;
}

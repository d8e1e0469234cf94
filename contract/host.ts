// The host a request names, in the one form that filters, events and NATS subjects use: the form Traefik's `Host`
// matcher compares (Traefik v3.6 pkg/middlewares/requestdecorator: parseHost then types.CanonicalDomain, and
// pkg/muxer/http/matcher.go `host`, which also ignores one trailing dot on either side). Every spelling of a host
// that Traefik routes to `Host(app.example.com)` therefore yields `app.example.com`.

/**
 * `Host` header or `:authority` value → canonical host: the port removed (any port, as Go's net.SplitHostPort
 * reads it), IPv6 brackets removed, surrounding white space trimmed, lower-cased, and one trailing dot removed.
 * A value Go could not split (`a:b:c`) is kept whole, lower-cased, as Traefik keeps it. Never throws.
 */
export function canonicalHost(value: string): string {
  const host = withoutPort(value).trim().toLowerCase();
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function withoutPort(value: string): string {
  const colon = value.lastIndexOf(':');
  if (colon === -1) return value;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    // `[v6]` or `[v6]:port`; anything else is kept whole, like Go's SplitHostPort error path.
    if (close === value.length - 1) return value.slice(1, -1);
    // colon >= 1 here (value starts with `[`), so close === colon - 1 also means a `]` was found.
    if (close === colon - 1 && !value.slice(1, close).includes('[')) return value.slice(1, close);
    return value;
  }
  // More than one colon without brackets (a bare IPv6 address) is not host:port.
  return value.indexOf(':') === colon ? value.slice(0, colon) : value;
}

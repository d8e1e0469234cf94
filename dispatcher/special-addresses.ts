import { inRange, ipv4, parseCidr, type IpAddress, type IpRange } from './ip-address.ts';

// The addresses `dispatcher.network`'s switches stand for, derived from the IANA IPv4 and IPv6 Special-Purpose
// Address Registries (RFC 6890 defines both), and the IPv6 forms that carry an IPv4 address. docs/dispatcher.md
// holds the whole registry table with the dispatcher's treatment of each entry; entries not named here (private-use,
// shared, documentation, benchmarking, ULA, anycast, discard...) are addresses of other hosts and no switch refuses
// them (use `denyCIDRs`).

export interface SpecialRange {
  readonly cidr: string;
  /** The registry's name for the block and the RFC that defines it. */
  readonly name: string;
  readonly range: IpRange;
}

function builtIn(cidr: string): IpRange {
  const r = parseCidr(cidr);
  if (r === undefined) throw new Error(`built-in range ${cidr} does not parse`);
  return r;
}

function ranges(entries: readonly (readonly [cidr: string, name: string])[]): readonly SpecialRange[] {
  return entries.map(([cidr, name]) => ({ cidr, name, range: builtIn(cidr) }));
}

/**
 * This host (`allowLoopback`): every address the kernel delivers to the local host whatever its interfaces.
 * 0.0.0.0/8 and `::` are not valid destinations (the registries say Destination: False), but Linux routes a connect()
 * to 0.0.0.0 or `::` to the local host (measured: a listener on `::` answers both), so they mean this host here.
 */
export const THIS_HOST = ranges([
  ['0.0.0.0/8', '"This network", RFC 791 §3.2 (0.0.0.0/32 "This host on this network", RFC 1122 §3.2.1.3)'],
  ['127.0.0.0/8', 'Loopback, RFC 1122 §3.2.1.3'],
  ['::1/128', 'Loopback Address, RFC 4291'],
  ['::/128', 'Unspecified Address, RFC 4291'],
]);

/**
 * Link-local (`allowLinkLocal`): where most cloud metadata services answer (169.254.169.254). Metadata addresses
 * outside link-local (AWS's IPv6 fd00:ec2::254 is unique-local) are not link-local; `denyCIDRs` refuses them.
 */
export const LINK_LOCAL = ranges([
  ['169.254.0.0/16', 'Link Local, RFC 3927'],
  ['fe80::/10', 'Link-Local Unicast, RFC 4291'],
]);

const U32 = 0xffffffffn;

/**
 * IPv6 blocks whose addresses carry an IPv4 address that a host or a translator on the path turns into an IPv4
 * destination; the carried address is judged as well. `carried` returns every reading: a local-use NAT64 prefix may
 * be any of the RFC 6052 lengths from /48 to /96, so each possible position counts.
 */
const CARRIERS: readonly { readonly range: IpRange; readonly carried: (v: bigint) => bigint[] }[] = [
  // IPv4-compatible, RFC 4291 §2.5.5.1 (deprecated; Linux still routes it through `sit`). Not `::` and `::1`,
  // which are THIS_HOST entries of their own and would otherwise read as 0.0.0.0 and 0.0.0.1.
  { range: builtIn('::/96'), carried: (v) => (v > 1n ? [v] : []) },
  // IPv4-translated, RFC 2765 §2.1 (SIIT; `::ffff:0:a.b.c.d`).
  { range: builtIn('::ffff:0:0:0/96'), carried: (v) => [v] },
  // NAT64 well-known prefix, RFC 6052 §2.1: the IPv4 address is the last 32 bits.
  { range: builtIn('64:ff9b::/96'), carried: (v) => [v] },
  // Local-use NAT64, RFC 8215; the embedding of RFC 6052 §2.2 skips bits 64-71.
  { range: builtIn('64:ff9b:1::/48'), carried: (v) => [48, 56, 64, 96].map((length) => rfc6052(v, length)) },
  // 6to4, RFC 3056 §2: 2002:V4ADDR::/48.
  { range: builtIn('2002::/16'), carried: (v) => [v >> 80n] },
  // Teredo, RFC 4380 §4: the server's address in bits 32-63, the client's inverted in the last 32.
  { range: builtIn('2001::/32'), carried: (v) => [v >> 64n, ~v] },
];

function rfc6052(v: bigint, prefixLength: number): bigint {
  const withoutU = ((v >> 64n) << 56n) | (v & ((1n << 56n) - 1n));
  const start = prefixLength <= 64 ? prefixLength : prefixLength - 8;
  return withoutU >> BigInt(120 - start - 32);
}

/** ISATAP interface identifiers, RFC 5214 §6.1: `…:0:5efe:a.b.c.d` or `…:200:5efe:a.b.c.d` under any /64. */
function isatap(v: bigint): bigint[] {
  const id = (v >> 32n) & U32;
  return id === 0x5efen || id === 0x2005efen ? [v] : [];
}

const MAPPED = builtIn('::ffff:0:0/96');

/**
 * The addresses the policy judges for one dialled address, the address itself first. An IPv4-mapped address
 * (RFC 4291 §2.5.5.2) *is* the IPv4 address on the wire, so it reads as that alone; any other IPv6 address reads as
 * itself followed by each IPv4 address it carries.
 */
export function readings(ip: IpAddress): [IpAddress, ...IpAddress[]] {
  if (ip.family === 4) return [ip];
  if (inRange(ip, MAPPED)) return [ipv4(ip.value)];
  const carried = CARRIERS.filter((c) => inRange(ip, c.range)).flatMap((c) => c.carried(ip.value));
  carried.push(...isatap(ip.value));
  return [ip, ...carried.map(ipv4)];
}

/** A CIDR from the config written as IPv4-mapped (`::ffff:10.0.0.0/104`) is the IPv4 range it spells. */
export function normaliseRange(r: IpRange): IpRange {
  return r.family === 6 && r.prefix >= 96 && inRange(r, MAPPED) ? { ...ipv4(r.value), prefix: r.prefix - 96 } : r;
}

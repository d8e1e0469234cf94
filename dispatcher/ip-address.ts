import { isIP } from 'node:net';

// IP addresses and CIDR ranges as numbers, so that every spelling of one address compares equal and a range test is
// one shift. Text comes from three places: a watchURL's host (already canonical: the WHATWG URL parser rewrites
// `127.1`, `0x7f000001`, `[0:0::1]`), a DNS answer (getaddrinfo's canonical form, IPv6 possibly with a `%zone`) and
// the config's CIDR lists.

export interface IpAddress {
  readonly family: 4 | 6;
  /** 32 bits for IPv4, 128 for IPv6. */
  readonly value: bigint;
}

export interface IpRange extends IpAddress {
  /** Leading bits that must match. */
  readonly prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

/**
 * Reads an IPv4 dotted quad or any IPv6 text form, with or without `[...]` and a `%zone` (a zone only says which
 * interface a link-local address is on, so it is dropped). `undefined` for anything else, names included.
 */
export function parseIp(text: string): IpAddress | undefined {
  let t = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = t.indexOf('%');
  if (zone !== -1) t = t.slice(0, zone);
  const family = isIP(t);
  if (family === 4) return { family: 4, value: ipv4Value(t) };
  if (family !== 6) return undefined;
  // isIP has validated the syntax: at most one `::`, hex groups, an optional dotted quad at the end.
  const [head = '', tail] = t.split('::');
  const groups = (part: string): bigint[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [BigInt(`0x${g}`)];
          const v4 = ipv4Value(g);
          return [v4 >> 16n, v4 & 0xffffn];
        });
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<bigint>(8 - left.length - right.length).fill(0n), ...right];
  return { family: 6, value: all.reduce((acc, g) => (acc << 16n) | g, 0n) };
}

function ipv4Value(dotted: string): bigint {
  return dotted.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(octet), 0n);
}

/** `address/prefix`, or a bare address as a one-address range; `undefined` when either part does not parse. */
export function parseCidr(text: string): IpRange | undefined {
  const [address = '', bits, ...rest] = text.split('/');
  if (rest.length > 0 || address.includes('%') || address.startsWith('[')) return undefined;
  const ip = parseIp(address);
  if (ip === undefined || (bits !== undefined && !/^\d{1,3}$/.test(bits))) return undefined;
  const prefix = bits === undefined ? BITS[ip.family] : Number(bits);
  return prefix <= BITS[ip.family] ? { ...ip, prefix } : undefined;
}

export function inRange(ip: IpAddress, range: IpRange): boolean {
  if (ip.family !== range.family) return false;
  const shift = BigInt(BITS[ip.family] - range.prefix);
  return ip.value >> shift === range.value >> shift;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest run of two or more zero groups as `::`). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => (ip.value >> s) & 0xffffn);
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0n) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLength).join(':')}`;
}

export function ipv4(value: bigint): IpAddress {
  return { family: 4, value: value & 0xffffffffn };
}

import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { createAddressPolicy, guardedLookup, type Verdict } from '../../dispatcher/address-policy.ts';
import { AddressRefusedError, NetworkPolicyInvalidError } from '../../dispatcher/errors.ts';
import { formatIp, parseCidr, parseIp } from '../../dispatcher/ip-address.ts';

type Network = Partial<Config['dispatcher']['network']>;
const policy = (network: Network, hostAddresses: readonly string[] = []) =>
  createAddressPolicy(Config.parse({ dispatcher: { network } }).dispatcher.network, () => hostAddresses);

/** What refuses an address under the default policy: this host (allowLoopback), link-local (allowLinkLocal), or nothing. */
type Kind = 'host' | 'link' | '-';
const SETTING = { host: 'dispatcher.network.allowLoopback', link: 'dispatcher.network.allowLinkLocal' } as const;

// Every entry of the IANA IPv4 and IPv6 Special-Purpose Address Registries, plus the IPv4-carrying IPv6 forms that are
// not registry entries (IPv4-compatible, IPv4-translated), with what the default policy must do to the first, the
// middle (first + half the block) and the last address of each. Written out by hand from the registries and RFCs,
// not computed from the code under test.
const REGISTRY: readonly (readonly [cidr: string, name: string, first: Kind, middle: Kind, last: Kind])[] = [
  ['0.0.0.0/8', 'This network', 'host', 'host', 'host'],
  ['0.0.0.0/32', 'This host on this network', 'host', 'host', 'host'],
  ['10.0.0.0/8', 'Private-Use', '-', '-', '-'],
  ['100.64.0.0/10', 'Shared Address Space', '-', '-', '-'],
  ['127.0.0.0/8', 'Loopback', 'host', 'host', 'host'],
  ['169.254.0.0/16', 'Link Local', 'link', 'link', 'link'],
  ['172.16.0.0/12', 'Private-Use', '-', '-', '-'],
  ['192.0.0.0/24', 'IETF Protocol Assignments', '-', '-', '-'],
  ['192.0.0.0/29', 'IPv4 Service Continuity Prefix', '-', '-', '-'],
  ['192.0.0.8/32', 'IPv4 dummy address', '-', '-', '-'],
  ['192.0.0.9/32', 'Port Control Protocol Anycast', '-', '-', '-'],
  ['192.0.0.10/32', 'Traversal Using Relays around NAT Anycast', '-', '-', '-'],
  ['192.0.0.170/32', 'NAT64/DNS64 Discovery', '-', '-', '-'],
  ['192.0.0.171/32', 'NAT64/DNS64 Discovery', '-', '-', '-'],
  ['192.0.2.0/24', 'Documentation (TEST-NET-1)', '-', '-', '-'],
  ['192.31.196.0/24', 'AS112-v4', '-', '-', '-'],
  ['192.52.193.0/24', 'AMT', '-', '-', '-'],
  ['192.88.99.0/24', 'Deprecated (6to4 Relay Anycast)', '-', '-', '-'],
  ['192.88.99.2/32', '6a44-relay anycast address', '-', '-', '-'],
  ['192.168.0.0/16', 'Private-Use', '-', '-', '-'],
  ['192.175.48.0/24', 'Direct Delegation AS112 Service', '-', '-', '-'],
  ['198.18.0.0/15', 'Benchmarking', '-', '-', '-'],
  ['198.51.100.0/24', 'Documentation (TEST-NET-2)', '-', '-', '-'],
  ['203.0.113.0/24', 'Documentation (TEST-NET-3)', '-', '-', '-'],
  ['240.0.0.0/4', 'Reserved', '-', '-', '-'],
  ['255.255.255.255/32', 'Limited Broadcast', '-', '-', '-'],
  ['::1/128', 'Loopback Address', 'host', 'host', 'host'],
  ['::/128', 'Unspecified Address', 'host', 'host', 'host'],
  // ::ffff:0.0.0.0, ::ffff:128.0.0.0, ::ffff:255.255.255.255
  ['::ffff:0:0/96', 'IPv4-mapped Address', 'host', '-', '-'],
  // 64:ff9b::0.0.0.0, …128.0.0.0, …255.255.255.255
  ['64:ff9b::/96', 'IPv4-IPv6 Translat. (well-known prefix)', 'host', '-', '-'],
  // 64:ff9b:1:8000:: reads as 128.0.0.0 with a /48 prefix but as 0.0.0.0 with a /56, /64 or /96 one
  ['64:ff9b:1::/48', 'IPv4-IPv6 Translat. (local-use)', 'host', 'host', '-'],
  ['100::/64', 'Discard-Only Address Block', '-', '-', '-'],
  ['100:0:0:1::/64', 'Dummy IPv6 Prefix', '-', '-', '-'],
  // 2001:: is Teredo with server 0.0.0.0; the middle, 2001:100::, is outside Teredo's /32
  ['2001::/23', 'IETF Protocol Assignments', 'host', '-', '-'],
  // Teredo: server 0.0.0.0 / client 255.255.255.255; 128.0.0.0 / 255.255.255.255; 255.255.255.255 / 0.0.0.0
  ['2001::/32', 'TEREDO', 'host', '-', 'host'],
  ['2001:1::1/128', 'Port Control Protocol Anycast', '-', '-', '-'],
  ['2001:1::2/128', 'Traversal Using Relays around NAT Anycast', '-', '-', '-'],
  ['2001:1::3/128', 'DNS-SD Service Registration Protocol Anycast', '-', '-', '-'],
  ['2001:2::/48', 'Benchmarking', '-', '-', '-'],
  ['2001:3::/32', 'AMT', '-', '-', '-'],
  ['2001:4:112::/48', 'AS112-v6', '-', '-', '-'],
  ['2001:10::/28', 'Deprecated (previously ORCHID)', '-', '-', '-'],
  ['2001:20::/28', 'ORCHIDv2', '-', '-', '-'],
  ['2001:30::/28', 'Drone Remote ID Protocol Entity Tags (DETs) Prefix', '-', '-', '-'],
  ['2001:db8::/32', 'Documentation', '-', '-', '-'],
  // 2002:0000:0000::, 2002:8000::, 2002:ffff:ffff:…
  ['2002::/16', '6to4', 'host', '-', '-'],
  ['2620:4f:8000::/48', 'Direct Delegation AS112 Service', '-', '-', '-'],
  ['3fff::/20', 'Documentation', '-', '-', '-'],
  ['5f00::/16', 'Segment Routing (SRv6) SIDs', '-', '-', '-'],
  ['fc00::/7', 'Unique-Local', '-', '-', '-'],
  ['fe80::/10', 'Link-Local Unicast', 'link', 'link', 'link'],
  // Not registry entries, but forms that carry an IPv4 address: ::128.0.0.0 and ::255.255.255.255 are not this host
  ['::/96', 'IPv4-compatible (RFC 4291 §2.5.5.1)', 'host', '-', '-'],
  ['::ffff:0:0:0/96', 'IPv4-translated (RFC 2765 §2.1)', 'host', '-', '-'],
];

/** First, middle and last address of a block; Node's own BlockList confirms each is inside and its neighbours outside. */
function samples(cidr: string): [string, string, string] {
  const r = parseCidr(cidr);
  if (!r) throw new Error(cidr);
  const bits = r.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - r.prefix);
  const first = (r.value >> BigInt(bits - r.prefix)) << BigInt(bits - r.prefix);
  const text = (value: bigint) => formatIp({ family: r.family, value });
  const list = new BlockList();
  const type = r.family === 4 ? 'ipv4' : 'ipv6';
  list.addSubnet(text(first), r.prefix, type);
  const out: [string, string, string] = [text(first), text(first + size / 2n), text(first + size - 1n)];
  for (const a of out) expect(list.check(a, type), `${a} in ${cidr}`).toBe(true);
  if (first > 0n) expect(list.check(text(first - 1n), type)).toBe(false);
  if (first + size < 1n << BigInt(bits)) expect(list.check(text(first + size), type)).toBe(false);
  return out;
}

function expectVerdict(verdict: Verdict, kinds: readonly Kind[], allowed: { host: boolean; link: boolean }, what: string): void {
  const refusing = kinds.filter((k): k is 'host' | 'link' => k !== '-' && !allowed[k]);
  expect(verdict.allowed, what).toBe(refusing.length === 0);
  if (!verdict.allowed) expect(refusing.map((k) => SETTING[k]), what).toContain(verdict.setting);
}

describe('address policy', () => {
  const configs = [
    { allowLoopback: false, allowLinkLocal: false },
    { allowLoopback: true, allowLinkLocal: false },
    { allowLoopback: false, allowLinkLocal: true },
    { allowLoopback: true, allowLinkLocal: true },
  ];

  it.each(REGISTRY)('judges the first, middle and last address of %s (%s) by its registry meaning', (cidr, name, ...kinds) => {
    const addresses = samples(cidr);
    for (const c of configs) {
      const p = policy(c);
      addresses.forEach((a, i) => {
        expectVerdict(p.check(a), [kinds[i] ?? '-'], { host: c.allowLoopback, link: c.allowLinkLocal }, `${a} (${name}) under ${JSON.stringify(c)}`);
      });
    }
  });

  // Every way an URL or a DNS answer can spell an address of this host or a link-local one. The policy receives the
  // text as dialled; none of these may pass by default, and each must pass once its setting allows it.
  const SPELLINGS: readonly (readonly [address: string, kind: 'host' | 'link', why: string])[] = [
    ['127.0.0.1', 'host', 'loopback'],
    ['127.255.255.254', 'host', 'loopback, end of 127/8'],
    ['0.0.0.0', 'host', 'unspecified: Linux dials this host'],
    ['0.1.2.3', 'host', '0.0.0.0/8 "this network"'],
    ['::1', 'host', 'IPv6 loopback'],
    ['[::1]', 'host', 'bracketed as in an URL'],
    ['0:0:0:0:0:0:0:1', 'host', 'uncompressed'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', 'host', 'zero-padded'],
    ['::', 'host', 'IPv6 unspecified'],
    ['::ffff:127.0.0.1', 'host', 'IPv4-mapped, dotted'],
    ['::ffff:7f00:1', 'host', 'IPv4-mapped, hex (how the URL parser writes it)'],
    ['::FFFF:7F00:0001', 'host', 'IPv4-mapped, upper case and padded'],
    ['0:0:0:0:0:ffff:127.0.0.2', 'host', 'IPv4-mapped, uncompressed'],
    ['::ffff:0.0.0.0', 'host', 'IPv4-mapped unspecified'],
    ['::127.0.0.1', 'host', 'IPv4-compatible'],
    ['::7f00:1', 'host', 'IPv4-compatible, hex'],
    ['::ffff:0:7f00:1', 'host', 'IPv4-translated'],
    ['64:ff9b::127.0.0.1', 'host', 'NAT64 well-known prefix'],
    ['64:ff9b::7f00:1', 'host', 'NAT64 well-known prefix, hex'],
    ['64:ff9b::', 'host', 'NAT64 of 0.0.0.0'],
    ['64:ff9b:1:7f00:0:100::', 'host', 'local-use NAT64, /48 embedding'],
    ['64:ff9b:1:0:7f:0:100:0', 'host', 'local-use NAT64, /64 embedding'],
    ['64:ff9b:1::7f00:1', 'host', 'local-use NAT64, /96 embedding'],
    ['2002:7f00:1::', 'host', '6to4 of 127.0.0.1'],
    ['2002:7f00:1:1234::5', 'host', '6to4 of 127.0.0.1, any suffix'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'host', 'Teredo, client 127.0.0.1 (inverted)'],
    ['2001:0:7f00:1::1', 'host', 'Teredo, server 127.0.0.1'],
    ['2001:db8::5efe:127.0.0.1', 'host', 'ISATAP interface id'],
    ['2001:db8::200:5efe:7f00:1', 'host', 'ISATAP interface id, universal bit set'],
    ['169.254.169.254', 'link', 'cloud metadata'],
    ['169.254.0.0', 'link', 'start of 169.254/16'],
    ['::ffff:169.254.169.254', 'link', 'IPv4-mapped metadata'],
    ['::ffff:a9fe:a9fe', 'link', 'IPv4-mapped metadata, hex'],
    ['::169.254.169.254', 'link', 'IPv4-compatible metadata'],
    ['64:ff9b::169.254.169.254', 'link', 'NAT64 metadata'],
    ['64:ff9b::a9fe:a9fe', 'link', 'NAT64 metadata, hex'],
    ['64:ff9b:1:a9fe:a9:fe00:808:808', 'link', 'local-use NAT64 /48 metadata'],
    // 169.254.169.8 where only the /64 embedding (bits 72-103, RFC 6052 §2.2) reads it; /48, /56 and /96 read
    // public addresses (8.8.169.254, 8.169.254.169, 8.8.8.8), so no other reading hides a misplaced /64 one.
    ['64:ff9b:1:808:a9:fea9:808:808', 'link', 'local-use NAT64 /64 metadata, no other reading special'],
    ['64:ff9b:1:808:8:808:a9fe:a908', 'link', 'local-use NAT64 /96 metadata, no other reading special'],
    ['2002:a9fe:a9fe::', 'link', '6to4 metadata'],
    ['fe80::1', 'link', 'IPv6 link-local'],
    ['fe80::1%eth0', 'link', 'with a zone id (DNS answers and getaddrinfo carry one)'],
    ['fe80::1%2', 'link', 'with a numeric zone id'],
    ['[fe80::1%25lo]', 'link', 'zone id percent-encoded as in an URL'],
    ['FE80::ABCD', 'link', 'upper case'],
    ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'link', 'end of fe80::/10'],
  ];

  it.each(SPELLINGS)('refuses %s (%s: %s) until its setting allows it', (address, kind, why) => {
    const refused = policy({}).check(address);
    expect(refused.allowed, why).toBe(false);
    if (!refused.allowed) {
      expect(refused.setting).toBe(SETTING[kind]);
      expect(refused.reason).toMatch(kind === 'host' ? /is this host \(/ : /is link-local \(/);
    }
    expect(policy({ allowLoopback: kind === 'host', allowLinkLocal: kind === 'link' }).check(address).allowed).toBe(true);
  });

  it('allows addresses of other hosts in every spelling, private ranges included', () => {
    const p = policy({});
    for (const a of [
      '10.1.2.3',
      '192.168.0.10',
      '172.16.5.5',
      '100.64.0.1',
      '203.0.113.7',
      '::ffff:10.0.0.1',
      '::ffff:cb00:7107',
      '64:ff9b::203.0.113.7',
      '2002:cb00:7107::1',
      '2001:0:cb00:7107::3400:8ef8',
      'fd00::1',
      'fd00:ec2::254',
      '2001:db8::1',
      'fec0::1',
    ]) {
      expect(p.check(a), a).toEqual({ allowed: true });
    }
  });

  it("refuses this host's own interface addresses in every spelling unless allowLoopback", () => {
    const own = ['192.0.2.2', 'fd00::2'];
    const p = policy({}, own);
    for (const a of ['192.0.2.2', '::ffff:192.0.2.2', '::ffff:c000:202', '64:ff9b::c000:202', '2002:c000:202::', 'fd00::2', '[fd00:0::2]']) {
      const v = p.check(a);
      expect(v, a).toMatchObject({ allowed: false, setting: SETTING.host });
      expect(policy({ allowLoopback: true }, own).check(a), a).toEqual({ allowed: true });
    }
    expect(p.check('192.0.2.3')).toEqual({ allowed: true });
    expect(p.check('::ffff:192.0.2.2')).toEqual({
      allowed: false,
      reason: "192.0.2.2 (carried by ::ffff:c000:202) is an address of this host's own interfaces",
      setting: 'dispatcher.network.allowLoopback',
    });
  });

  it('names the reading that was refused and the address that carried it', () => {
    const v = policy({}).check('64:ff9b::7f00:1');
    expect(v).toEqual({
      allowed: false,
      reason: '127.0.0.1 (carried by 64:ff9b::7f00:1) is this host (127.0.0.0/8 Loopback, RFC 1122 §3.2.1.3)',
      setting: 'dispatcher.network.allowLoopback',
    });
  });

  it('applies allowCIDRs and denyCIDRs to the IPv4 address an IPv6 form carries', () => {
    const p = policy({ denyCIDRs: ['10.0.0.0/8'], allowCIDRs: ['10.1.0.0/16', '169.254.170.2/32'] });
    for (const a of ['10.2.3.4', '::ffff:10.2.3.4', '64:ff9b::a02:304', '2002:a02:304::', '::10.2.3.4']) {
      expect(p.check(a), a).toMatchObject({ allowed: false, setting: 'dispatcher.network.allowCIDRs' });
    }
    for (const a of ['10.1.3.4', '::ffff:10.1.3.4', '64:ff9b::a01:304', '169.254.170.2', '::ffff:169.254.170.2']) {
      expect(p.check(a), a).toEqual({ allowed: true });
    }
    expect(p.check('169.254.169.254').allowed).toBe(false);
  });

  it('refuses by denyCIDRs an IPv6 form whatever it carries', () => {
    expect(policy({ denyCIDRs: ['2002::/16'] }).check('2002:cb00:7107::1')).toMatchObject({ allowed: false });
    expect(policy({ denyCIDRs: ['64:ff9b::/96'] }).check('64:ff9b::cb00:7107')).toMatchObject({ allowed: false });
  });

  it('reads an allowCIDRs entry written as IPv4-mapped as the IPv4 range it spells', () => {
    const p = policy({ allowCIDRs: ['::ffff:127.0.0.0/104'] });
    expect(p.check('127.0.0.9')).toEqual({ allowed: true });
    expect(p.check('::ffff:7f00:9')).toEqual({ allowed: true });
    expect(p.check('::1').allowed).toBe(false);
  });

  it('reads a denyCIDRs entry of the whole IPv4-mapped block (::ffff:0:0/96) as every IPv4 address', () => {
    const p = policy({ denyCIDRs: ['::ffff:0:0/96'] });
    for (const a of ['10.1.2.3', '203.0.113.7', '::ffff:cb00:7107']) {
      expect(p.check(a), a).toMatchObject({ allowed: false, setting: 'dispatcher.network.allowCIDRs' });
    }
    expect(p.check('2001:db8::1')).toEqual({ allowed: true });
  });

  it('reads a CIDR wider than the IPv4-mapped block as the IPv6 range it is, judging what is on the wire', () => {
    // ::ffff:0:0/80 is ::/80 (its set bits lie past the prefix); an IPv4-mapped address is IPv4 on the wire, so no
    // IPv6 range refuses it, and 10.1.2.3 stays allowed while ::2, inside ::/80, is refused.
    const p = policy({ denyCIDRs: ['::ffff:0:0/80'] });
    expect(p.check('10.1.2.3')).toEqual({ allowed: true });
    expect(p.check('::ffff:a01:203')).toEqual({ allowed: true });
    expect(p.check('::2')).toMatchObject({ allowed: false, setting: 'dispatcher.network.allowCIDRs' });
  });

  it('reads :: and ::1 as this host alone, not as the IPv4-compatible forms of 0.0.0.0 and 0.0.0.1', () => {
    // RFC 4291 §2.5.5.1 excludes them; a denyCIDRs entry for 0.0.0.0/8 must not refuse them once allowLoopback is set.
    const p = policy({ allowLoopback: true, denyCIDRs: ['0.0.0.0/8'] });
    expect(p.check('::1')).toEqual({ allowed: true });
    expect(p.check('::')).toEqual({ allowed: true });
    expect(p.check('::2')).toMatchObject({ allowed: false, setting: 'dispatcher.network.allowCIDRs' });
  });

  it('allows a translator prefix listed in allowCIDRs whatever the addresses under it carry', () => {
    // 64:ff9b:1::c633:6407 is 198.51.100.7 behind a /96 local-use NAT64 prefix, but reads as 0.0.0.0 at /48.
    expect(policy({}).check('64:ff9b:1::c633:6407').allowed).toBe(false);
    expect(policy({ allowCIDRs: ['64:ff9b:1::/96'] }).check('64:ff9b:1::c633:6407')).toEqual({ allowed: true });
  });

  it('refuses what is not an IP address, naming no setting', () => {
    for (const a of ['localhost', '127.1', '0x7f000001', '2130706433', '', '[::1', '::1]']) {
      expect(policy({ allowLoopback: true }).check(a), a).toEqual({ allowed: false, reason: `"${a}" is not an IP address` });
    }
  });

  it('names the field of a CIDR that does not parse', () => {
    expect(() => policy({ denyCIDRs: ['10.0.0.0/8', '10.0.0/33'] })).toThrow(NetworkPolicyInvalidError);
    for (const bad of ['nope', '10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8/8', 'fe80::/10%eth0', '[::1]/128', '10.0.0.0/']) {
      expect(() => policy({ denyCIDRs: ['10.0.0.0/8', bad] }), bad).toThrow(/dispatcher\.network\.denyCIDRs\[1\]/);
    }
  });
});

describe('ip address text', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::FFFF:127.0.0.1', '::ffff:7f00:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['[64:ff9b::192.0.2.33]', '64:ff9b::c000:221'],
    ['1::', '1::'],
  ])('reads %s as %s (RFC 5952 form)', (text, canonical) => {
    const ip = parseIp(text);
    expect(ip && formatIp(ip)).toBe(canonical);
  });
});

describe('ip address text, against the URL parser', () => {
  it('writes any IPv6 address exactly as the WHATWG URL parser serialises it, and reads the parser back', () => {
    // Groups drawn mostly from 0 so that runs of zeros (what RFC 5952 compresses) are common; fixed seed, reproducible.
    let seed = 42;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let n = 0; n < 2000; n++) {
      const groups = Array.from({ length: 8 }, () => (next() % 3 === 0 ? next() % 0x10000 : 0).toString(16));
      const text = groups.join(':');
      const fromUrl = new URL(`http://[${text}]/`).hostname.slice(1, -1);
      const ip = parseIp(text);
      expect(ip && formatIp(ip), text).toBe(fromUrl);
      expect(parseIp(fromUrl), fromUrl).toEqual(ip);
    }
  });
});

describe('guarded DNS lookup', () => {
  // `localhost` resolves through the system resolver (/etc/hosts) to loopback addresses only.
  type Answer = { error: NodeJS.ErrnoException | null; address: unknown; family?: number };
  const lookup = (network: Network, hostname: string, all: boolean) =>
    new Promise<Answer>((resolve) => {
      guardedLookup(policy(network))(hostname, { all }, (error, address, family) => {
        resolve({ error, address, family });
      });
    });

  it('answers one allowed address and its family when not asked for all of them', async () => {
    const { error, address, family } = await lookup({ allowLoopback: true }, 'localhost', false);
    expect(error).toBeNull();
    expect(['127.0.0.1', '::1']).toContain(address);
    expect(family).toBe(address === '::1' ? 6 : 4);
  });

  it('answers every allowed address when asked for all', async () => {
    const { error, address } = await lookup({ allowLoopback: true }, 'localhost', true);
    expect(error).toBeNull();
    expect((address as { address: string }[]).map((a) => a.address)).toContain('127.0.0.1');
  });

  it('fails with the refusal of the first refused address when none is allowed', async () => {
    const { error } = await lookup({ allowLoopback: false }, 'localhost', false);
    expect(error).toBeInstanceOf(AddressRefusedError);
    expect(error?.message).toMatch(/^refusing to connect to (127\.0\.0\.1|::1) \(resolved from localhost\): .* is this host .*; dispatcher\.network\.allowLoopback allows it$/);
  });

  it('passes on the resolver error for a name that does not resolve', async () => {
    const { error } = await lookup({}, 'no-such-host.invalid', true);
    expect(error?.code).toBe('ENOTFOUND');
  });
});

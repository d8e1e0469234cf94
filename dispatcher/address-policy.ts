import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { networkInterfaces } from 'node:os';
import type { NetworkPolicy } from '../contract/config.ts';
import { AddressRefusedError, NetworkPolicyInvalidError } from './errors.ts';
import { formatIp, inRange, parseCidr, parseIp, type IpAddress, type IpRange } from './ip-address.ts';
import { LINK_LOCAL, THIS_HOST, normaliseRange, readings, type SpecialRange } from './special-addresses.ts';

// Which addresses the dispatcher may dial. A webhook URL is user-supplied, so without this a target named
// `http://169.254.169.254/` (or a host name resolving there) would read cloud credentials, and one named
// `http://[::ffff:127.0.0.1]:9090/` would reach whatever listens on this host. The check runs on the address actually
// dialled: the IP literal of a watchURL, or each address DNS answers for a name (so a name that resolves, or later
// re-resolves, to a forbidden address is refused too). Both paths go through `check`, which judges every reading of
// the address (special-addresses.ts `readings`), whatever its spelling.

export type Verdict =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** Why, naming the reading and the rule: `127.0.0.1 (carried by 64:ff9b::7f00:1) is this host (127.0.0.0/8 …)`. */
      readonly reason: string;
      /** The setting that would allow it, e.g. `dispatcher.network.allowLoopback`; absent when none would. */
      readonly setting?: string;
    };

export interface AddressPolicy {
  /** Judges one address about to be dialled: IPv4 or IPv6 text, with or without `[...]` or a `%zone`. */
  check(address: string): Verdict;
}

/** This host's own interface addresses (read at each check: interfaces come and go), which reach it like loopback. */
export type HostAddresses = () => readonly string[];

const ALLOWED: Verdict = { allowed: true };

/**
 * The address as dialled in `allowCIDRs` → allowed. Otherwise, for each reading: in `allowCIDRs` → fine; in
 * `denyCIDRs` → refused; this host (THIS_HOST or an interface address) without `allowLoopback` → refused; link-local
 * without `allowLinkLocal` → refused. An address is dialled only when every reading is fine. Throws
 * NetworkPolicyInvalidError for a CIDR that does not parse.
 */
export function createAddressPolicy(network: NetworkPolicy, hostAddresses: HostAddresses = interfaceAddresses): AddressPolicy {
  const allow = cidrList(network.allowCIDRs, 'allowCIDRs');
  const deny = cidrList(network.denyCIDRs, 'denyCIDRs');
  return {
    check(address) {
      const ip = parseIp(address);
      if (ip === undefined) return { allowed: false, reason: `"${address}" is not an IP address` };
      const all = readings(ip);
      // Listing the address as dialled (a translator's prefix, say) allows it whatever it carries.
      if (allow.some((c) => inRange(all[0], c.range))) return ALLOWED;
      let own: IpAddress[] | undefined;
      for (const reading of all) {
        if (allow.some((c) => inRange(reading, c.range))) continue;
        const what = reading === ip ? formatIp(ip) : `${formatIp(reading)} (carried by ${formatIp(ip)})`;
        const denied = deny.find((c) => inRange(reading, c.range));
        if (denied) {
          return { allowed: false, reason: `${what} is in dispatcher.network.denyCIDRs[${denied.index}] (${denied.cidr})`, setting: 'dispatcher.network.allowCIDRs' };
        }
        if (!network.allowLoopback) {
          const special = THIS_HOST.find((s) => inRange(reading, s.range));
          if (special) return refused(what, 'this host', special, 'dispatcher.network.allowLoopback');
          own ??= hostAddresses().flatMap((a) => parseIp(a) ?? []);
          if (own.some((o) => o.family === reading.family && o.value === reading.value)) {
            return { allowed: false, reason: `${what} is an address of this host's own interfaces`, setting: 'dispatcher.network.allowLoopback' };
          }
        }
        if (!network.allowLinkLocal) {
          const special = LINK_LOCAL.find((s) => inRange(reading, s.range));
          if (special) return refused(what, 'link-local', special, 'dispatcher.network.allowLinkLocal');
        }
      }
      return ALLOWED;
    },
  };
}

function refused(what: string, kind: string, special: SpecialRange, setting: string): Verdict {
  return { allowed: false, reason: `${what} is ${kind} (${special.cidr} ${special.name})`, setting };
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

interface ConfiguredRange {
  readonly cidr: string;
  readonly index: number;
  readonly range: IpRange;
}

function cidrList(cidrs: readonly string[], field: string): ConfiguredRange[] {
  return cidrs.map((cidr, index) => {
    const range = parseCidr(cidr);
    if (range === undefined) {
      throw new NetworkPolicyInvalidError(`dispatcher.network.${field}[${index}]: "${cidr}" is not an IPv4 or IPv6 CIDR`);
    }
    return { cidr, index, range: normaliseRange(range) };
  });
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `dns.lookup` for `net.connect` that removes refused addresses from the answer, and fails with
 * AddressRefusedError (for the first refused one) when none is left. Node calls it with `all: true` when it races
 * address families.
 */
export function guardedLookup(policy: AddressPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) {
        callback(error, []);
        return;
      }
      let refusal: AddressRefusedError | undefined;
      const allowed = addresses.filter((a) => {
        const verdict = policy.check(a.address);
        if (!verdict.allowed) refusal ??= new AddressRefusedError(a.address, hostname, verdict.reason, verdict.setting);
        return verdict.allowed;
      });
      const first = allowed[0];
      if (first === undefined) {
        callback(refusal ?? new AddressRefusedError(hostname, hostname, 'DNS answered no address'), []);
      } else if (options.all) {
        callback(null, allowed);
      } else {
        callback(null, first.address, first.family);
      }
    });
  };
}

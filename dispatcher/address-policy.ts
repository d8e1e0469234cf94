import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import type { NetworkPolicy } from '../contract/config.ts';
import { AddressRefusedError, NetworkPolicyInvalidError } from './errors.ts';

// Which addresses the dispatcher may dial. A webhook URL is user-supplied, so without this a target named
// `http://169.254.169.254/` (or a host name resolving there) would read cloud credentials. The check runs on the
// address actually dialled, after DNS, so a name that resolves to a forbidden address is refused too.

export interface AddressPolicy {
  allows(address: string): boolean;
}

export function createAddressPolicy(network: NetworkPolicy): AddressPolicy {
  const allow = cidrList(network.allowCIDRs, 'allowCIDRs');
  const deny = cidrList(network.denyCIDRs, 'denyCIDRs');
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  const linkLocal = new BlockList();
  linkLocal.addSubnet('169.254.0.0', 16, 'ipv4');
  linkLocal.addSubnet('fe80::', 10, 'ipv6');
  return {
    allows(address) {
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (allow.check(address, type)) return true;
      if (deny.check(address, type)) return false;
      if (!network.allowLoopback && loopback.check(address, type)) return false;
      if (!network.allowLinkLocal && linkLocal.check(address, type)) return false;
      return true;
    },
  };
}

function cidrList(cidrs: readonly string[], field: string): BlockList {
  const list = new BlockList();
  cidrs.forEach((cidr, i) => {
    const [address = '', bits] = cidr.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      throw new NetworkPolicyInvalidError(`dispatcher.network.${field}[${i}]: "${cidr}" is not an IPv4 or IPv6 CIDR`);
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  });
  return list;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `dns.lookup` for `net.connect` that removes refused addresses from the answer, and fails with
 * AddressRefusedError when none is left. Node calls it with `all: true` when it races address families.
 */
export function guardedLookup(policy: AddressPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) {
        callback(error, []);
        return;
      }
      const allowed = addresses.filter((a) => policy.allows(a.address));
      const first = allowed[0];
      if (first === undefined) {
        callback(new AddressRefusedError(addresses[0]?.address ?? hostname, hostname), []);
      } else if (options.all) {
        callback(null, allowed);
      } else {
        callback(null, first.address, first.family);
      }
    });
  };
}

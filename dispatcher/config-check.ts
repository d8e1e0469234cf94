import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Config, NetworkPolicy } from '../contract/config.ts';
import { errorFinding, type ConfigFinding } from '../contract/config-check.ts';
import { createAddressPolicy } from './address-policy.ts';
import { resolveSecrets, type SecretKeys, type SecretSources } from './secrets.ts';

// What the dispatcher checks in a config before it starts or applies a reload: every signing secret resolvable and
// every CIDR of dispatcher.network valid (errors), and, for `validate`, the targets whose address the network policy
// would refuse at delivery (warnings naming the setting that allows them).

/** The errors that stop the dispatcher, and the signing keys when there are none. */
export function checkDispatcherConfig(config: Config, sources?: SecretSources): { findings: ConfigFinding[]; secrets?: SecretKeys } {
  const findings: ConfigFinding[] = [];
  let secrets: SecretKeys | undefined;
  try {
    secrets = resolveSecrets(config, sources);
  } catch (error) {
    findings.push(errorFinding(error));
  }
  try {
    createAddressPolicy(config.dispatcher.network);
  } catch (error) {
    findings.push(errorFinding(error));
  }
  return secrets && findings.length === 0 ? { findings, secrets } : { findings };
}

export type Resolve = (host: string) => Promise<readonly string[]>;

const LOOKUP_TIMEOUT_MS = 3000;

/** All addresses the system resolver gives for `host`; none when it fails or takes longer than 3 s. */
export const systemResolve: Resolve = async (host) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never[]>((resolve) => {
    timer = setTimeout(() => {
      resolve([]);
    }, LOOKUP_TIMEOUT_MS);
  });
  try {
    const answers = lookup(host, { all: true }).then(
      (all) => all.map((a) => a.address),
      () => [],
    );
    return await Promise.race([answers, timeout]);
  } finally {
    clearTimeout(timer);
  }
};

/**
 * A warning for each target whose watchURL is, or resolves here to, an address `dispatcher.network` refuses: the
 * dispatcher would drop every event for it with reason `address_refused`. Names the setting that would allow it.
 * A host that does not resolve from here (a cluster-internal name) is not judged. Assumes the CIDRs are valid.
 */
export async function refusedTargetWarnings(config: Config, resolve: Resolve = systemResolve): Promise<ConfigFinding[]> {
  const network = config.dispatcher.network;
  const policy = createAddressPolicy(network);
  const perTarget = await Promise.all(
    config.targets.map(async (target, i) => {
      const host = new URL(target.watchURL).hostname.replace(/^\[(.*)\]$/, '$1');
      const addresses = isIP(host) === 0 ? await resolve(host) : [host];
      const refused = addresses.filter((a) => !policy.allows(a));
      if (refused.length === 0 || refused.length < addresses.length) return [];
      const address = refused[0] ?? host;
      const via = address === host ? '' : ` (${host} resolves to ${refused.join(', ')})`;
      return [
        {
          severity: 'warning' as const,
          code: 'RM_ADDRESS_REFUSED',
          message:
            `targets[${i}] "${target.name}": watchURL ${target.watchURL} is an address dispatcher.network refuses${via}; ` +
            `every event for it would be dropped (reason address_refused).\nTo allow it: ${allowingSetting(network, address)}`,
        },
      ];
    }),
  );
  return perTarget.flat();
}

/**
 * The smallest change to `network` after which the policy allows `address`: the first `allow…` switch that does,
 * else an allowCIDRs entry. Asks the policy itself, so the answer follows whatever the policy refuses.
 */
function allowingSetting(network: NetworkPolicy, address: string): string {
  for (const [key, value] of Object.entries(network)) {
    if (value !== false || !key.startsWith('allow')) continue;
    if (createAddressPolicy({ ...network, [key]: true }).allows(address)) return `dispatcher.network.${key}: true`;
  }
  const cidr = `${address}/${isIP(address) === 6 ? 128 : 32}`;
  if (createAddressPolicy({ ...network, allowCIDRs: [...network.allowCIDRs, cidr] }).allows(address)) {
    return `dispatcher.network.allowCIDRs: [${cidr}]`;
  }
  return 'no setting allows it; use another address';
}

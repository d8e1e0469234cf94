import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Config } from '../contract/config.ts';
import { errorFinding, type ConfigFinding } from '../contract/config-check.ts';
import { createAddressPolicy, type AddressPolicy } from './address-policy.ts';
import { NetworkPolicyInvalidError } from './errors.ts';
import type { SecretSources } from '../contract/secret-source.ts';
import { resolveSecrets, type SecretKeys } from './secrets.ts';

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
 * A warning for each target whose watchURL is, or resolves here to, only addresses `dispatcher.network` refuses: the
 * dispatcher would drop every event for it with reason `address_refused`. Gives the policy's reason and the setting
 * that allows it. A host that does not resolve from here (a cluster-internal name) is not judged. None when a CIDR
 * of the policy does not parse: there is no policy to judge by, and checkDispatcherConfig reports that CIDR.
 */
export async function refusedTargetWarnings(config: Config, resolve: Resolve = systemResolve): Promise<ConfigFinding[]> {
  let policy: AddressPolicy;
  try {
    policy = createAddressPolicy(config.dispatcher.network);
  } catch (error) {
    if (error instanceof NetworkPolicyInvalidError) return [];
    throw error;
  }
  const perTarget = await Promise.all(
    config.targets.map(async (target, i) => {
      const host = new URL(target.watchURL).hostname.replace(/^\[(.*)\]$/, '$1');
      const addresses = isIP(host) === 0 ? await resolve(host) : [host];
      const verdicts = addresses.map((address) => ({ address, verdict: policy.check(address) }));
      const first = verdicts[0];
      if (!first || verdicts.some((v) => v.verdict.allowed) || first.verdict.allowed) return [];
      const via = first.address === host ? '' : ` (${host} resolves to ${addresses.join(', ')})`;
      return [
        {
          severity: 'warning' as const,
          code: 'RM_ADDRESS_REFUSED',
          message:
            `targets[${i}] "${target.name}": watchURL ${target.watchURL} is an address dispatcher.network refuses${via}: ${first.verdict.reason}; ` +
            `every event for it would be dropped (reason address_refused).\nTo allow it: ${allowing(first.address, first.verdict.setting)}`,
        },
      ];
    }),
  );
  return perTarget.flat();
}

function allowing(address: string, setting: string | undefined): string {
  if (setting === undefined) return 'no setting allows it; use another address';
  if (setting.endsWith('CIDRs')) return `${setting}: [${address}/${isIP(address) === 6 ? 128 : 32}]`;
  return `${setting}: true`;
}

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Config } from '../contract/config.ts';
import { errorFinding, type ConfigFinding } from '../contract/config-check.ts';
import { createAddressPolicy, type AddressPolicy } from './address-policy.ts';
import type { SecretSources } from '../contract/secret-source.ts';
import { resolveSecrets, type SecretKeys } from './secrets.ts';

// What the dispatcher checks in a config before it starts or applies a reload: every signing secret resolvable and
// every CIDR of dispatcher.network valid (errors), and, for `validate`, the targets whose address the network policy
// would refuse at delivery (warnings naming the setting that allows them).

export interface DispatcherConfigCheck {
  readonly findings: ConfigFinding[];
  /** The signing keys, when there are no findings. */
  readonly secrets?: SecretKeys;
  /** The network policy, when dispatcher.network is valid (whatever else is wrong): for refusedTargetWarnings. */
  readonly policy?: AddressPolicy;
}

/** The errors that stop the dispatcher; the signing keys when there are none, and the network policy when it is valid. */
export function checkDispatcherConfig(config: Config, sources?: SecretSources): DispatcherConfigCheck {
  const findings: ConfigFinding[] = [];
  let secrets: SecretKeys | undefined;
  let policy: AddressPolicy | undefined;
  try {
    secrets = resolveSecrets(config, sources);
  } catch (error) {
    findings.push(errorFinding(error));
  }
  try {
    policy = createAddressPolicy(config.dispatcher.network);
  } catch (error) {
    findings.push(errorFinding(error));
  }
  return { findings, ...(secrets && findings.length === 0 ? { secrets } : {}), ...(policy ? { policy } : {}) };
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
 * A warning for each target whose watchURL is, or resolves here to, only addresses `policy` (checkDispatcherConfig's,
 * from `dispatcher.network`) refuses: the dispatcher would drop every event for it with reason `address_refused`.
 * Gives the policy's reason and the setting that allows it. A host that does not resolve from here (a
 * cluster-internal name) is not judged. None without a policy: a CIDR that does not parse leaves nothing to judge by,
 * and checkDispatcherConfig reports that CIDR.
 */
export async function refusedTargetWarnings(config: Config, policy: AddressPolicy | undefined, resolve: Resolve = systemResolve): Promise<ConfigFinding[]> {
  if (policy === undefined) return [];
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

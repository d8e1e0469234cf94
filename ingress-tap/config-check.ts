import type { Config } from '../contract/config.ts';
import { errorFinding, type ConfigFinding } from '../contract/config-check.ts';
import { loadListenerTls } from './listener-tls.ts';

// What the tap checks in a config before it starts: the certificate and key of each TLS listener readable, PEM and
// a pair. Everything else the tap needs is in the schema.

export function checkTapConfig(config: Config): ConfigFinding[] {
  const findings: ConfigFinding[] = [];
  for (const listener of ['forwardAuth', 'mirror'] as const) {
    const tls = config.tap[listener].tls;
    if (!tls) continue;
    try {
      loadListenerTls(`tap.${listener}.tls`, tls);
    } catch (error) {
      findings.push(errorFinding(error));
    }
  }
  return findings;
}

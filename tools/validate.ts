import { parseCommandLine, usageError } from '../contract/command-line.ts';
import type { Config } from '../contract/config.ts';
import { validateFile } from '../contract/config-check.ts';
import { resolveNatsCredentials } from '../contract/nats-credentials.ts';
import { checkDispatcherConfig, refusedTargetWarnings } from '../dispatcher/config-check.ts';
import { checkTapConfig } from '../ingress-tap/config-check.ts';

// `make validate CONFIG=FILE`: checks a config file as both services check it at start-up (the schema, the NATS
// credentials and TLS files, the tap's TLS files, the dispatcher's signing secrets and network policy) and warns about what would start but not work (no
// targets, a target the network policy refuses). Inside the image each service does its own part:
// `node dist/ingress-tap/main.js validate --config FILE`, `node dist/dispatcher/main.js validate --config FILE`.

const NAME = 'make validate';
const { values } = parseCommandLine({
  name: NAME,
  usage: `
usage: make validate CONFIG=FILE
       node tools/validate.ts --config FILE
Checks FILE as the ingress-tap and the dispatcher check it at start-up, without starting anything.
  --config FILE   the config file (default: $REQUEST_MIRROR_CONFIG)
  -h, --help      this text
Secrets named by env are looked up in this shell's environment, files on this machine.
Exit status: 0 valid (warnings are printed), 2 bad usage or a file the services would refuse.`,
  options: { config: { type: 'string' } },
});
const path = values.config ?? process.env.REQUEST_MIRROR_CONFIG;
if (!path) usageError(NAME, 'no config: pass CONFIG=FILE (node: --config FILE) or set REQUEST_MIRROR_CONFIG');

await validateFile(NAME, path, 'the ingress-tap and the dispatcher', async (config: Config) => {
  const dispatcher = checkDispatcherConfig(config);
  const errors = [...resolveNatsCredentials(config.nats).findings, ...checkTapConfig(config), ...dispatcher.findings];
  return [...errors, ...(await refusedTargetWarnings(config, dispatcher.policy))];
});

import { loadConfig } from './config-file.ts';
import { RequestMirrorError } from './errors.ts';

// `node contract/validate-cli.ts FILE`: checks a config file the way both services will read it.

const file = process.argv[2] ?? process.env.REQUEST_MIRROR_CONFIG;
if (!file) {
  console.error('usage: validate-cli.ts CONFIG_FILE');
  process.exit(2);
}
try {
  const config = loadConfig(file);
  console.log(`${file}: valid (${config.targets.length} target${config.targets.length === 1 ? '' : 's'})`);
} catch (error) {
  if (!(error instanceof RequestMirrorError)) throw error;
  console.error(`${error.code}: ${error.message}`);
  process.exit(1);
}

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseCommandLine } from './command-line.ts';
import { generatedFiles } from './generated-files.ts';

parseCommandLine({
  name: 'node contract/generate.ts',
  usage: `
usage: node contract/generate.ts   (or: make generate)
Regenerates the JSON Schemas and docs/configuration.md from the zod contract.`,
  options: {},
});

const root = join(import.meta.dirname, '..');
for (const [path, content] of generatedFiles()) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
  console.log(`wrote ${path}`);
}

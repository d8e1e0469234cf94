import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatedFiles } from '../../contract/generated-files.ts';

const root = join(import.meta.dirname, '../..');

describe('generated files', () => {
  for (const [path, expected] of generatedFiles()) {
    it(`${path} matches the zod contract (run \`make generate\` if not)`, () => {
      expect(readFileSync(join(root, path), 'utf8')).toBe(expected);
    });
  }
});

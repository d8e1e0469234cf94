import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import base from '../vitest.config.ts';

// The project's vitest config narrowed to one folder's tests, for `make mutate` (tools/mutate.ts names the folder):
// each source folder is mutated against test/<folder> only, not against the end-to-end suite.

const folder = process.env.RM_MUTATE_FOLDER;
if (!folder) throw new Error('RM_MUTATE_FOLDER is not set: run this through make mutate');

export default defineConfig({
  ...base,
  root: join(import.meta.dirname, '..'),
  test: { ...base.test, include: [`test/${folder}/**/*.test.ts`] },
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { RequestMirrorError } from '../../contract/errors.ts';

// The codes are what operators grep logs for; docs/errors.md is where they look them up.
const documented = [...readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8').matchAll(/^\| `(RM_[A-Z_]+)` \|/gm)].map((m) => m[1]);

/**
 * Checks that `build()` gives a RequestMirrorError with `code`, listed in docs/errors.md, named for its class. Takes
 * a builder, to be called inside the test: an error built while the file is collected escapes a mutant switched on
 * per test (make mutate), so its code would go unchecked.
 */
export function expectDocumentedError(build: () => RequestMirrorError, code: string): void {
  const error = build();
  expect(error).toBeInstanceOf(RequestMirrorError);
  expect(error.code).toBe(code);
  expect(documented).toContain(code);
  expect(error.name).toBe(error.constructor.name);
}

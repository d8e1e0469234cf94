import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigInvalidError, ConfigUnreadableError, RequestMirrorError, SecretUnavailableError } from '../../contract/errors.ts';

// The codes are what operators grep logs and alerts for; docs/errors.md is where they look them up.
const documented = [...readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8').matchAll(/^\| `(RM_[A-Z_]+)` \|/gm)].map((m) => m[1]);

describe('shared errors', () => {
  it.each([
    [ConfigUnreadableError, 'RM_CONFIG_UNREADABLE'],
    [ConfigInvalidError, 'RM_CONFIG_INVALID'],
    [SecretUnavailableError, 'RM_SECRET_UNAVAILABLE'],
  ])('%o carries its documented code, its class name and its cause', (Class, code) => {
    const cause = new Error('underneath');
    const error = new Class('what happened', { cause });
    expect(error).toBeInstanceOf(RequestMirrorError);
    expect(error.code).toBe(code);
    expect(documented).toContain(code);
    expect(error.name).toBe(Class.name);
    expect(String(error)).toBe(`${Class.name}: what happened`);
    expect(error.cause).toBe(cause);
  });
});

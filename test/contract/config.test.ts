import { describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';

// Rules of the config schema that span more than one field; single-field rules are pinned through
// test/contract/config-file.test.ts and the generated JSON Schema.

describe('config schema', () => {
  it('refuses kubernetes.namespaces together with a namespaceSelector, naming the selector', () => {
    const parsed = Config.safeParse({ kubernetes: { namespaces: ['shop'], namespaceSelector: 'request-mirror=enabled' } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => [i.path, i.message])).toEqual([[['kubernetes', 'namespaceSelector'], 'set namespaces or namespaceSelector, not both']]);
  });

  it.each([
    ['namespaces alone', { namespaces: ['shop', 'blog'] }],
    ['a namespaceSelector alone', { namespaceSelector: 'request-mirror=enabled' }],
    ['a namespaceSelector with an empty namespaces list', { namespaces: [], namespaceSelector: 'request-mirror=enabled' }],
    ['neither (the pod namespace)', {}],
  ])('takes %s', (_what, kubernetes) => {
    const parsed = Config.safeParse({ kubernetes });
    expect(parsed.error).toBeUndefined();
    expect(parsed.data?.kubernetes).toMatchObject(kubernetes);
  });
});

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

  const LISTENERS = ['forwardAuth', 'mirror', 'plugin', 'admin'] as const;
  const pairs = LISTENERS.flatMap((a, i) => LISTENERS.slice(i + 1).map((b) => [a, b] as const));

  it.each(pairs)('refuses tap.%s and tap.%s on one port of one host, naming the later listener and the earlier', (first, second) => {
    const parsed = Config.safeParse({ tap: { [first]: { host: '127.0.0.1', port: 7000 }, [second]: { host: '127.0.0.1', port: 7000 } } });
    expect(parsed.error?.issues.map((i) => [i.path, i.message])).toEqual([
      [['tap', second, 'port'], `port 7000 on host 127.0.0.1 is also tap.${first}'s (host 127.0.0.1); the tap could not open both: give each listener its own port`],
    ]);
  });

  it('refuses a port taken by the defaults of another listener', () => {
    const parsed = Config.safeParse({ tap: { admin: { port: 8080 } } });
    expect(parsed.error?.issues.map((i) => i.path)).toEqual([['tap', 'admin', 'port']]);
  });
});

import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { SecretUnavailableError } from '../../contract/errors.ts';
import type { SecretSources } from '../../contract/secret-source.ts';
import { resolveSecrets } from '../../dispatcher/secrets.ts';

// Signing secrets are read once per config load from env variables or files (mounted Kubernetes secrets), so a
// missing one fails the load with every problem named, never a delivery.

const dir = mkdtempSync(join(tmpdir(), 'rm-secrets-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const sources = (env: Record<string, string> = {}): SecretSources => ({ env, readFile: (path) => readFileSync(path, 'utf8') });
const withSecrets = (...secrets: ({ env: string } | { file: string })[][]) =>
  Config.parse({ targets: secrets.map((s, i) => ({ name: `t${i}`, watchURL: `http://t${i}.test/`, methods: ['POST'], secrets: s })) });

function thrown(fn: () => unknown): SecretUnavailableError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SecretUnavailableError) return error;
    throw error;
  }
  throw new Error('expected a SecretUnavailableError');
}

describe('signing secrets', () => {
  it('reads each target its keys, in order, from env variables and files; whsec_ keys base64-decoded', () => {
    const keys = resolveSecrets(
      withSecrets([{ env: 'A' }, { file: file('b', 'whsec_c2VjcmV0\n') }], [], [{ file: file('c', 'plain\r\n') }]),
      sources({ A: 'raw' }),
    );
    expect([...keys]).toEqual([
      ['t0', [Buffer.from('raw'), Buffer.from('secret')]],
      ['t1', []],
      ['t2', [Buffer.from('plain')]],
    ]);
  });

  it('drops one trailing newline of a file and keeps the rest', () => {
    const keys = resolveSecrets(withSecrets([{ file: file('two-newlines', 'key\n\n') }, { file: file('none', 'key') }]), sources());
    expect(keys.get('t0')).toEqual([Buffer.from('key\n'), Buffer.from('key')]);
  });

  it('refuses an env variable that is unset or empty, naming the target and the variable', () => {
    const error = thrown(() => resolveSecrets(withSecrets([{ env: 'SET' }, { env: 'EMPTY' }]), sources({ SET: 'x', EMPTY: '' })));
    expect(error.message).toBe('targets[0] "t0": secrets[1]: environment variable EMPTY is not set or empty');
    expect(error.code).toBe('RM_SECRET_UNAVAILABLE');
  });

  it('refuses a file that is empty or holds only a newline', () => {
    const empty = file('empty', '');
    expect(thrown(() => resolveSecrets(withSecrets([{ file: empty }]), sources())).message).toBe(`targets[0] "t0": secrets[0]: file ${empty} is empty`);
    const newline = file('newline', '\n');
    expect(thrown(() => resolveSecrets(withSecrets([{ file: newline }]), sources())).message).toBe(`targets[0] "t0": secrets[0]: file ${newline} is empty`);
  });

  it('refuses a file it cannot read, with the file system error as its cause', () => {
    const missing = join(dir, 'missing');
    const error = thrown(() => resolveSecrets(withSecrets([{ file: missing }]), sources()));
    expect(error.message).toBe(`targets[0] "t0": secrets[0]: cannot read file ${missing}: ENOENT: no such file or directory, open '${missing}'`);
    expect(error.cause).toHaveProperty('code', 'ENOENT');
  });

  it('names every secret it cannot read in one error, one per line', () => {
    const error = thrown(() => resolveSecrets(withSecrets([{ env: 'X' }], [{ env: 'OK' }, { env: 'Y' }]), sources({ OK: 'k' })));
    expect(error.message).toBe(
      'targets[0] "t0": secrets[0]: environment variable X is not set or empty\ntargets[1] "t1": secrets[1]: environment variable Y is not set or empty',
    );
    expect(error.cause).toHaveLength(2);
  });

  it('reads the process environment and the file system by default', () => {
    process.env.RM_TEST_SIGNING_SECRET = 'from-env';
    try {
      const keys = resolveSecrets(withSecrets([{ env: 'RM_TEST_SIGNING_SECRET' }, { file: file('default', 'from-file\n') }]));
      expect(keys.get('t0')).toEqual([Buffer.from('from-env'), Buffer.from('from-file')]);
    } finally {
      delete process.env.RM_TEST_SIGNING_SECRET;
    }
  });
});

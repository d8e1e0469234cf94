import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../contract/config-file.ts';

describe('README configuration example', () => {
  it('is a valid config file', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const example = /## Configuration[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'rm-readme-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, example ?? '');
      expect(loadConfig(file, {}).targets.map((t) => t.name)).toEqual(['security-engine', 'audit-log']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, watchConfig } from '../../contract/config-file.ts';
import type { Config } from '../../contract/config.ts';
import { ConfigInvalidError, ConfigUnreadableError } from '../../contract/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'rm-config-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function file(text: string): string {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

const minimal = `
targets:
  - name: audit
    watchURL: http://audit.internal/events
    methods: [GET, POST]
`;

describe('config file', () => {
  it('fills every default from the schema', () => {
    const config = loadConfig(file(minimal), {});
    expect(config.tap.maxBodyBytes).toBe(1024 * 1024);
    expect(config.tap.keepAliveTimeoutMs).toBeGreaterThan(90_000);
    expect(config.targets[0]?.cookieNames).toEqual([]);
    expect(config.targets[0]?.retry.maxAttempts).toBe(3);
    expect(config.nats.subjectPrefix).toBe('request-mirror');
  });

  it('lets NATS_URL override nats.url', () => {
    expect(loadConfig(file(minimal), { NATS_URL: 'nats://nats.example:4222' }).nats.url).toBe('nats://nats.example:4222');
  });

  it('returns a frozen config', () => {
    const config = loadConfig(file(minimal), {});
    expect(Object.isFrozen(config.targets[0]?.methods)).toBe(true);
    expect(() => {
      (config.tap as { maxBodyBytes: number }).maxBodyBytes = 1;
    }).toThrow(TypeError);
  });

  it('names the file and each bad field', () => {
    const path = file(`
targets:
  - name: Bad_Name
    watchURL: ftp://x
    methods: [get]
    cookeNames: [session]
`);
    const error = (() => {
      try {
        loadConfig(path, {});
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected loadConfig to throw');
    })();
    expect(error).toBeInstanceOf(ConfigInvalidError);
    expect(error).toHaveProperty('code', 'RM_CONFIG_INVALID');
    expect(error.message).toContain(path);
    expect(error.message).toContain('targets[0].name');
    expect(error.message).toContain('targets[0].watchURL');
    expect(error.message).toContain('targets[0].methods[0]');
    expect(error.message).toContain('cookeNames');
  });

  it('rejects two targets with the same name', () => {
    expect(() =>
      loadConfig(
        file(`
targets:
  - { name: a, watchURL: "http://x/", methods: [GET] }
  - { name: a, watchURL: "http://y/", methods: [POST] }
`),
        {},
      ),
    ).toThrow(/duplicate target name "a"[\s\S]*targets\[1\]\.name/);
  });

  it('reports YAML syntax errors with their position', () => {
    expect(() => loadConfig(file('targets: [\n  - {'), {})).toThrow(ConfigUnreadableError);
  });

  it('reports a missing file as unreadable', () => {
    expect(() => loadConfig(join(dir, 'nope.yaml'), {})).toThrow(/nope\.yaml: cannot read/);
  });

  it('hot-reloads a valid change and keeps the old config on an invalid one', async () => {
    const path = file(minimal);
    const changes: Config[] = [];
    const errors: Error[] = [];
    const watcher = watchConfig(path, (c) => changes.push(c), (e) => errors.push(e), {});
    try {
      writeFileSync(path, minimal.replace('[GET, POST]', '[PUT]'));
      await expect.poll(() => changes.length, { timeout: 5000 }).toBe(1);
      expect(changes[0]?.targets[0]?.methods).toEqual(['PUT']);
      writeFileSync(path, 'targets: 5\n');
      await expect.poll(() => errors.length, { timeout: 5000 }).toBe(1);
      expect(errors[0]).toBeInstanceOf(ConfigInvalidError);
      expect(changes).toHaveLength(1);
    } finally {
      watcher.close();
    }
  });
});

import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig, mayMoveConfig, RELOAD_BOUND_MS, watchConfig } from '../../contract/config-file.ts';
import type { Config } from '../../contract/config.ts';
import { ConfigInvalidError, ConfigUnreadableError } from '../../contract/errors.ts';
import { busyNeighbour, configMapDir, tempConfigFiles } from '../support/config-dir.ts';

const { dir, file } = tempConfigFiles('rm-config-');

/**
 * Lets `ms` pass, for the claims that nothing happens within a bound (RELOAD_BOUND_MS): the only wait that is not on
 * a condition, since what it waits for is that no condition comes true.
 */
function quietFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The error `fn` throws; fails the test when it returns. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
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
    const error = thrown(() => loadConfig(path, {}));
    expect(error).toBeInstanceOf(ConfigInvalidError);
    expect(error).toHaveProperty('code', 'RM_CONFIG_INVALID');
    expect(error.message).toContain(path);
    expect(error.message).toContain('targets[0].name');
    expect(error.message).toContain('targets[0].watchURL');
    expect(error.message).toContain('targets[0].methods[0]');
    expect(error.message).toContain('cookeNames');
  });

  it('points each bad field at its line and column with the value found, in file order, and calls a missing key missing', () => {
    const path = file(`targets:
  - name: a
    watchURL: http://a.example/
    methods: [GET]
    timeoutMs: -1
  - name: b
    watchURL: ftp://x
`);
    const message = thrown(() => loadConfig(path, {})).message;
    expect(message).toBe(
      [
        `config ${path} is invalid:`,
        '✖ Too small: expected number to be >=1',
        '  → at targets[0].timeoutMs (line 5, column 16): -1',
        '✖ missing: required, expected array',
        '  → at targets[1].methods (line 6, column 5)',
        '✖ an absolute http:// or https:// URL',
        '  → at targets[1].watchURL (line 7, column 15): "ftp://x"',
      ].join('\n'),
    );
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
    const path = file('targets: [\n  - {');
    const error = thrown(() => loadConfig(path, {}));
    expect(error).toBeInstanceOf(ConfigUnreadableError);
    expect(error).toHaveProperty('code', 'RM_CONFIG_UNREADABLE');
    // Each of the parser's messages, one after the other, with the line, the column and the excerpt pointing at it.
    expect(error.message).toBe(
      `config ${path}: not valid YAML:\n` +
        'Flow map in block collection must be sufficiently indented and end with a } at line 2, column 6:\n\n  - {\n     ^\n\n' +
        'Block collections are not allowed within flow collections at line 2, column 3:\n\ntargets: [\n  - {\n  ^^^\n\n' +
        'Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 6:\n\n  - {\n     ^\n',
    );
  });

  it('reports a missing file as unreadable, with the file system error as its cause', () => {
    const path = join(dir, 'nope.yaml');
    const error = thrown(() => loadConfig(path, {}));
    expect(error).toBeInstanceOf(ConfigUnreadableError);
    expect(error).toHaveProperty('code', 'RM_CONFIG_UNREADABLE');
    expect(error.message).toBe(`config ${path}: cannot read: ENOENT: no such file or directory, open '${path}'`);
    expect(error.cause).toHaveProperty('code', 'ENOENT');
  });

  it('refuses a nats.url that names no server, and keeps the schema error as the cause', () => {
    const error = thrown(() => loadConfig(file('nats: { url: " , " }'), {}));
    expect(error).toBeInstanceOf(ConfigInvalidError);
    expect(error.message).toContain('✖ name at least one server\n  → at nats.url');
    expect(error.cause).toBeInstanceOf(z.ZodError);
  });

  it('refuses a NATS_URL override the client cannot dial, as it refuses the same nats.url in the file', () => {
    const error = thrown(() => loadConfig(file(minimal), { NATS_URL: 'nats://ok:4222,http//nats:4222' }));
    expect(error).toBeInstanceOf(ConfigInvalidError);
    expect(error.message).toContain('env NATS_URL (overrides nats.url of ');
    expect(error.message).toContain('✖ "http//nats:4222" is not a server address');
    expect(thrown(() => loadConfig(file(minimal), { NATS_URL: ' , ' })).message).toContain('✖ name at least one server');
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

describe('config reload', () => {
  // Every way a config file gets changed in practice. `setup` lays the file out in a fresh directory and returns
  // its path and how to change it.
  const WAYS: [string, (dir: string, text: string) => { path: string; change: (text: string) => void }][] = [
    ['written in place', (d, text) => {
      const path = join(d, 'config.yaml');
      writeFileSync(path, text);
      return { path, change: (t) => { writeFileSync(path, t); } };
    }],
    ['replaced by a rename, as editors save', (d, text) => {
      const path = join(d, 'config.yaml');
      writeFileSync(path, text);
      let k = 0;
      return { path, change: (t) => {
        const tmp = join(d, `.config.yaml.${k++}.swp`);
        writeFileSync(tmp, t);
        renameSync(tmp, path);
      } };
    }],
    ['swapped as Kubernetes updates a mounted ConfigMap', (d, text) => {
      const cm = configMapDir(d, 'config.yaml', text);
      return { path: cm.path, change: (t) => { cm.swap(t); } };
    }],
    ['a symlink repointed to a new file', (d, text) => {
      const path = join(d, 'config.yaml');
      let k = 0;
      const target = (t: string) => {
        const f = join(d, `config-${k++}.yaml`);
        writeFileSync(f, t);
        return f;
      };
      symlinkSync(target(text), path);
      return { path, change: (t) => {
        symlinkSync(target(t), join(d, 'config.yaml.new'));
        renameSync(join(d, 'config.yaml.new'), path);
      } };
    }],
    ['a symlink to a file in another directory, edited there', (d, text) => {
      const elsewhere = join(d, 'elsewhere');
      mkdirSync(elsewhere);
      const real = join(elsewhere, 'real.yaml');
      writeFileSync(real, text);
      const watched = join(d, 'watched');
      mkdirSync(watched);
      const path = join(watched, 'config.yaml');
      symlinkSync(real, path);
      return { path, change: (t) => { writeFileSync(real, t); } };
    }],
  ];

  it.each(WAYS)('applies a valid change and reports an invalid one within the bound when the file is %s, beside a log appended every 20 ms', async (_way, setup) => {
    const d = mkdtempSync(join(dir, 'reload-'));
    const { path, change } = setup(d, minimal);
    const changes: Config[] = [];
    const errors: Error[] = [];
    const watcher = watchConfig(path, (c) => changes.push(c), (e) => errors.push(e), {});
    const log = busyNeighbour(join(path, '..', 'access.log'), 20);
    try {
      // The log is busy before the change, as it would be in production.
      await expect.poll(() => log.appends(), { timeout: 5000 }).toBeGreaterThanOrEqual(5);
      change(minimal.replace('[GET, POST]', '[PUT]'));
      await expect.poll(() => changes.length, { timeout: RELOAD_BOUND_MS, interval: 10 }).toBe(1);
      expect(changes[0]?.targets[0]?.methods).toEqual(['PUT']);
      change('targets: 5\n');
      await expect.poll(() => errors.length, { timeout: RELOAD_BOUND_MS, interval: 10 }).toBe(1);
      expect(errors[0]).toBeInstanceOf(ConfigInvalidError);
      const before = log.appends();
      change(minimal.replace('[GET, POST]', '[DELETE]'));
      await expect.poll(() => changes.length, { timeout: RELOAD_BOUND_MS, interval: 10 }).toBe(2);
      expect(changes[1]?.targets[0]?.methods).toEqual(['DELETE']);
      // The log kept going all along, and was never taken for a change of the config.
      expect(log.appends()).toBeGreaterThan(before);
      expect(errors).toHaveLength(1);
    } finally {
      log.stop();
      watcher.close();
    }
  });

  it('looks at the config file itself and at what a ConfigMap update swaps, never at other entries of the directory', () => {
    for (const name of ['config.yaml', '..data', '..data_tmp', '..2026_11_30_12_00_00.000000001', null]) {
      expect(mayMoveConfig(name, 'config.yaml'), String(name)).toBe(true);
    }
    for (const name of ['access.log', 'config.yaml.new', 'config.yml', 'tap.log', '.config.yaml.swp']) {
      expect(mayMoveConfig(name, 'config.yaml'), name).toBe(false);
    }
  });

  it('applies a file that is rewritten without pause within the bound of its first change', async () => {
    const d = mkdtempSync(join(dir, 'reload-'));
    const path = join(d, 'config.yaml');
    writeFileSync(path, minimal);
    const changes: Config[] = [];
    const watcher = watchConfig(path, (c) => changes.push(c), () => undefined, {});
    const text = minimal.replace('[GET, POST]', '[PUT]');
    const rewrite = setInterval(() => {
      writeFileSync(path, text);
    }, 20);
    try {
      writeFileSync(path, text);
      await expect.poll(() => changes.length, { timeout: RELOAD_BOUND_MS, interval: 10 }).toBeGreaterThanOrEqual(1);
      expect(changes[0]?.targets[0]?.methods).toEqual(['PUT']);
      // The rewrites go on with the same text: each one is seen, none is a change.
      await quietFor(RELOAD_BOUND_MS);
      expect(changes).toHaveLength(1);
    } finally {
      clearInterval(rewrite);
      watcher.close();
    }
  });

  it('reads a file written in two steps 30 ms apart once, after the second step', async () => {
    const d = mkdtempSync(join(dir, 'reload-'));
    const path = join(d, 'config.yaml');
    writeFileSync(path, minimal);
    const changes: Config[] = [];
    const errors: Error[] = [];
    const watcher = watchConfig(path, (c) => changes.push(c), (e) => errors.push(e), {});
    try {
      const whole = minimal.replace('[GET, POST]', '[PUT]');
      // A writer that stops half-way (the first step alone is not a valid config) and finishes 30 ms later.
      writeFileSync(path, whole.slice(0, whole.indexOf('methods')));
      setTimeout(() => {
        writeFileSync(path, whole);
      }, 30);
      await expect.poll(() => changes.length, { timeout: RELOAD_BOUND_MS, interval: 10 }).toBe(1);
      expect(changes[0]?.targets[0]?.methods).toEqual(['PUT']);
      expect(errors).toEqual([]);
    } finally {
      watcher.close();
    }
  });

  it('reports nothing once closed, whatever happens to the file', async () => {
    const d = mkdtempSync(join(dir, 'reload-'));
    const path = join(d, 'config.yaml');
    writeFileSync(path, minimal);
    const calls: string[] = [];
    const watcher = watchConfig(path, () => calls.push('change'), () => calls.push('error'), {});
    watcher.close();
    writeFileSync(path, minimal.replace('[GET, POST]', '[PUT]'));
    await quietFor(RELOAD_BOUND_MS);
    writeFileSync(path, 'targets: 5\n');
    await quietFor(RELOAD_BOUND_MS);
    expect(calls).toEqual([]);
  });
});

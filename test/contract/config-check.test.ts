import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempConfigFiles } from '../support/config-dir.ts';
import {
  commonWarnings,
  errorFinding,
  exitOnConfigErrors,
  finishValidation,
  formatFindings,
  loadForStartup,
  readConfig,
  validateFile,
  type ConfigFinding,
} from '../../contract/config-check.ts';
import type { Config } from '../../contract/config.ts';
import { ConfigInvalidError } from '../../contract/errors.ts';
import { runCommand } from '../support/process-exit.ts';

// What the services and the validator print about a config file before they start: every finding at once, errors
// first, exit status 2 on any error. The commands themselves are run as child processes in
// test/contract/command-line.test.ts and test/tools/; here the same verdicts are pinned in-process.

const { dir, file } = tempConfigFiles('rm-config-check-');

const target = (name: string) => `  - name: ${name}\n    watchURL: http://${name}.internal/events\n    methods: [POST]\n`;
const oneTarget = file(`targets:\n${target('audit')}`);
const twoTargets = file(`targets:\n${target('audit')}${target('spam')}`);
const noTargets = file('targets: []\n');
const invalid = file('targets:\n  - name: audit\n');

/** The config a file that loads gives; fails the test when it does not load. */
function loaded(path: string): Config {
  const { config, findings } = readConfig(path, {});
  if (!config) throw new Error(`${path} did not load: ${JSON.stringify(findings)}`);
  return config;
}

const error = (code: string, message: string): ConfigFinding => ({ severity: 'error', code, message });
const warning = (code: string, message: string): ConfigFinding => ({ severity: 'warning', code, message });

describe('config findings', () => {
  it('warns that a config with no targets publishes and delivers nothing', () => {
    expect(commonWarnings(loaded(noTargets))).toEqual([
      warning(
        'RM_CONFIG_NO_TARGETS',
        'targets is empty: no target wants any request, so the tap publishes nothing (not even to NATS) and the dispatcher delivers nothing',
      ),
    ]);
  });

  it('has no common warning for a config with a target', () => {
    expect(commonWarnings(loaded(oneTarget))).toEqual([]);
  });

  it('reads a valid file with no findings, and an invalid one as its single error finding', () => {
    expect(readConfig(oneTarget, {})).toMatchObject({ config: { targets: [{ name: 'audit' }] }, findings: [] });
    const bad = readConfig(invalid, {});
    expect(bad.config).toBeUndefined();
    expect(bad.findings).toHaveLength(1);
    expect(bad.findings[0]).toMatchObject({ severity: 'error', code: 'RM_CONFIG_INVALID' });
    expect(bad.findings[0]?.message).toContain('watchURL');
  });

  it('turns a RequestMirrorError into an error finding with its code, and rethrows anything else', () => {
    expect(errorFinding(new ConfigInvalidError('bad'))).toEqual(error('RM_CONFIG_INVALID', 'bad'));
    const bug = new TypeError('a bug');
    expect(() => errorFinding(bug)).toThrow(bug);
  });

  it('prints errors before warnings, one indented entry each, continuation lines further in', () => {
    const text = formatFindings('header:', [warning('W1', 'first warning'), error('E1', 'line one\nline two'), warning('W2', 'w2'), error('E2', 'e2')]);
    expect(text).toBe(
      ['header:', '  error E1: line one', '      line two', '  error E2: e2', '  warning W1: first warning', '  warning W2: w2', ''].join('\n'),
    );
  });

  it('prints the header alone when there is nothing to report', () => {
    expect(formatFindings('all good', [])).toBe('all good\n');
  });
});

describe('exitOnConfigErrors', () => {
  it('returns without printing when no finding is an error', async () => {
    const r = await runCommand(() => {
      exitOnConfigErrors('dispatcher', 'c.yaml', [warning('W', 'w')]);
    });
    expect(r).toEqual({ exited: false, exitCode: undefined, value: undefined, stdout: '', stderr: '' });
  });

  it('prints every finding on stderr, counted, and exits 2 when one is an error', async () => {
    const r = await runCommand(() => {
      exitOnConfigErrors('dispatcher', 'c.yaml', [warning('W', 'w'), error('E', 'e')]);
    });
    expect(r).toMatchObject({ exited: true, exitCode: 2, stdout: '' });
    expect(r.stderr).toBe('dispatcher: config c.yaml cannot be used (1 error, 1 warning):\n  error E: e\n  warning W: w\n');
  });

  it('counts in the plural past one and at none', async () => {
    const r = await runCommand(() => {
      exitOnConfigErrors('ingress-tap', 'c.yaml', [error('E', 'a'), error('E', 'b')]);
    });
    expect(r.stderr.split('\n')[0]).toBe('ingress-tap: config c.yaml cannot be used (2 errors, 0 warnings):');
  });
});

describe('finishValidation', () => {
  it('prints that the file is valid for the scope, counting its targets, and exits 0', async () => {
    const { config } = readConfig(oneTarget, {});
    const r = await runCommand(() => finishValidation('make validate', 'c.yaml', 'both services', config, []));
    expect(r).toMatchObject({ exited: true, exitCode: 0, stderr: '' });
    expect(r.stdout).toBe('c.yaml: valid for both services (1 target)\n');
  });

  it('lists the warnings of a valid file under the verdict', async () => {
    const { config } = readConfig(twoTargets, {});
    const r = await runCommand(() => finishValidation('make validate', 'c.yaml', 'the dispatcher', config, [warning('W', 'w1'), warning('W', 'w2')]));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('c.yaml: valid for the dispatcher (2 targets), 2 warnings:\n  warning W: w1\n  warning W: w2\n');
  });

  it('exits 2 with the findings, and prints no verdict, when one is an error', async () => {
    const r = await runCommand(() => finishValidation('make validate', 'c.yaml', 'the tap', undefined, [error('E', 'e')]));
    expect(r).toMatchObject({ exited: true, exitCode: 2, stdout: '' });
    expect(r.stderr).toBe('make validate: config c.yaml cannot be used (1 error, 0 warnings):\n  error E: e\n');
  });
});

describe('loadForStartup', () => {
  it("returns the config with the service's own warnings and the common ones", async () => {
    const r = await runCommand(() => loadForStartup('dispatcher', noTargets, () => [warning('OWN', 'own')]));
    expect(r).toMatchObject({ exited: false, stdout: '', stderr: '' });
    expect(r.value?.config.targets).toEqual([]);
    expect(r.value?.warnings.map((f) => f.code)).toEqual(['OWN', 'RM_CONFIG_NO_TARGETS']);
  });

  it("exits 2 with the service's errors and the warnings together", async () => {
    const r = await runCommand(() => loadForStartup('ingress-tap', noTargets, () => Promise.resolve([error('OWN', 'refused')])));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(
      `ingress-tap: config ${noTargets} cannot be used (1 error, 1 warning):\n  error OWN: refused\n  warning RM_CONFIG_NO_TARGETS: ${commonWarnings(loaded(noTargets))[0]?.message ?? 'missing'}\n`,
    );
  });

  it('exits 2 on a file that does not load, without running the checks', async () => {
    let checked = false;
    const r = await runCommand(() =>
      loadForStartup('dispatcher', invalid, () => {
        checked = true;
        return [];
      }),
    );
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^dispatcher: config ${invalid} cannot be used \\(1 error, 0 warnings\\):\\n  error RM_CONFIG_INVALID: `));
    expect(checked).toBe(false);
  });
});

describe('validateFile', () => {
  it('runs the checks and prints the verdict with every warning', async () => {
    const r = await runCommand(() => validateFile('make validate', noTargets, 'both services', () => [warning('OWN', 'own')]));
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([
      `${noTargets}: valid for both services (0 targets), 2 warnings:`,
      '  warning OWN: own',
      expect.stringMatching(/^ {2}warning RM_CONFIG_NO_TARGETS: targets is empty/),
    ]);
  });

  it('exits 2 on an error a check finds', async () => {
    const r = await runCommand(() => validateFile('make validate', oneTarget, 'the tap', () => [error('OWN', 'no')]));
    expect(r).toMatchObject({ exitCode: 2, stdout: '' });
    expect(r.stderr).toBe(`make validate: config ${oneTarget} cannot be used (1 error, 0 warnings):\n  error OWN: no\n`);
  });

  it('exits 2 on a file that does not load', async () => {
    const r = await runCommand(() => validateFile('make validate', join(dir, 'missing.yaml'), 'the tap', () => []));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('error RM_CONFIG_UNREADABLE: ');
  });
});

import type { Config } from './config.ts';
import { loadConfig, type Env } from './config-file.ts';
import { EXIT_USAGE } from './command-line.ts';
import { RequestMirrorError } from './errors.ts';

// What the services check in a config file before they start, as findings rather than a first thrown error, so
// that the validator (`make validate`, `main.ts validate`) and the services' start-up print the same message:
// every problem at once, one readable block, exit status 2.

export interface ConfigFinding {
  /** An error stops a service from starting; a warning is printed and the service starts. */
  readonly severity: 'error' | 'warning';
  /** A stable code from docs/errors.md. */
  readonly code: string;
  /** Names the field (`targets[0] "audit"`); may span several lines. */
  readonly message: string;
}

/** A finding for a thrown RequestMirrorError; anything else is a bug and is rethrown. */
export function errorFinding(error: unknown): ConfigFinding {
  if (!(error instanceof RequestMirrorError)) throw error;
  return { severity: 'error', code: error.code, message: error.message };
}

/** Warnings about the config as a whole, for both services. */
export function commonWarnings(config: Config): ConfigFinding[] {
  if (config.targets.length > 0) return [];
  return [
    {
      severity: 'warning',
      code: 'RM_CONFIG_NO_TARGETS',
      message: 'targets is empty: no target wants any request, so the tap publishes nothing (not even to NATS) and the dispatcher delivers nothing',
    },
  ];
}

/** Loads the file; an unreadable or invalid file is the single error finding. */
export function readConfig(path: string, env: Env = process.env): { config?: Config; findings: ConfigFinding[] } {
  try {
    return { config: loadConfig(path, env), findings: [] };
  } catch (error) {
    return { findings: [errorFinding(error)] };
  }
}

/** `header` then one indented entry per finding, errors first. */
export function formatFindings(header: string, findings: readonly ConfigFinding[]): string {
  const ordered = [...findings].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
  const entries = ordered.map((f) => {
    const [first = '', ...rest] = f.message.split('\n');
    return [`  ${f.severity} ${f.code}: ${first}`, ...rest.map((line) => `      ${line}`)].join('\n');
  });
  return `${[header, ...entries].join('\n')}\n`;
}

function count(findings: readonly ConfigFinding[], severity: ConfigFinding['severity']): string {
  const n = findings.filter((f) => f.severity === severity).length;
  return `${n} ${severity}${n === 1 ? '' : 's'}`;
}

/**
 * Prints the findings on stderr and exits 2 when any is an error; otherwise returns. `command` starts the message
 * (`ingress-tap`, `dispatcher`, `make validate`).
 */
export function exitOnConfigErrors(command: string, path: string, findings: readonly ConfigFinding[]): void {
  if (!findings.some((f) => f.severity === 'error')) return;
  process.stderr.write(formatFindings(`${command}: config ${path} cannot be used (${count(findings, 'error')}, ${count(findings, 'warning')}):`, findings));
  process.exit(EXIT_USAGE);
}

/**
 * The validator's verdict: exits 2 with the findings when any is an error, else prints that the file is valid for
 * `scope` (with its warnings) on stdout and exits 0.
 */
export function finishValidation(command: string, path: string, scope: string, config: Config | undefined, findings: readonly ConfigFinding[]): never {
  exitOnConfigErrors(command, path, findings);
  const targets = config?.targets.length ?? 0;
  const warnings = findings.length === 0 ? '' : `, ${count(findings, 'warning')}:`;
  process.stdout.write(formatFindings(`${path}: valid for ${scope} (${targets} target${targets === 1 ? '' : 's'})${warnings}`, findings));
  process.exit(0);
}

export type ConfigChecks = (config: Config) => ConfigFinding[] | Promise<ConfigFinding[]>;

/**
 * Loads the file and runs `checks` on it: a service's start-up. Exits 2 with every finding when any is an error;
 * otherwise returns the config and the warnings, for the service to log.
 */
export async function loadForStartup(command: string, path: string, checks: ConfigChecks): Promise<{ config: Config; warnings: ConfigFinding[] }> {
  const { config, findings } = readConfig(path);
  const all = config ? [...findings, ...(await checks(config)), ...commonWarnings(config)] : findings;
  exitOnConfigErrors(command, path, all);
  if (!config) throw new Error('unreachable: a config that did not load is an error finding');
  return { config, warnings: all };
}

/** `validate`: the same checks as `loadForStartup`, then the verdict (exit 0 or 2). */
export async function validateFile(command: string, path: string, scope: string, checks: ConfigChecks): Promise<never> {
  const { config, findings } = readConfig(path);
  const all = config ? [...findings, ...(await checks(config)), ...commonWarnings(config)] : findings;
  return finishValidation(command, path, scope, config, all);
}

import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

// The one argument parser of every command we ship (the services, the validator, the demo, tail and the
// benchmarks), so that all of them answer `--help` the same way and refuse a mistyped option with one line and
// exit status 2 instead of a stack trace.

/** Exit statuses shared by every command: 0 done, 1 a failure while running, 2 bad usage or an unusable config. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface CommandSpec<O extends ParseArgsOptionsConfig> {
  /** How the user typed the command, e.g. `node tools/demo/tail.ts`; starts every message. */
  readonly name: string;
  /** Printed by `--help`: the synopsis lines and one line per option. */
  readonly usage: string;
  readonly options: O;
  /** Positional arguments accepted (subcommands, files); none by default. */
  readonly maxPositionals?: number;
}

/**
 * Parses `argv` (default: this process's arguments). `--help`/`-h` prints the usage on stdout and exits 0; an unknown
 * option, a missing option value or an unexpected argument prints one line on stderr and exits 2.
 */
export function parseCommandLine<O extends ParseArgsOptionsConfig>(spec: CommandSpec<O>, argv: string[] = process.argv.slice(2)) {
  const end = argv.indexOf('--');
  if ((end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`${spec.usage.trim()}\n`);
    process.exit(0);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: spec.options, strict: true, allowPositionals: true });
  } catch (error) {
    usageError(spec.name, describeParseError(error as Error));
  }
  const max = spec.maxPositionals ?? 0;
  if (parsed.positionals.length > max) usageError(spec.name, `unexpected argument ${JSON.stringify(parsed.positionals[max])}`);
  return parsed;
}

/** One line on stderr naming the command and what was wrong, pointing at `--help`; exits 2. */
export function usageError(name: string, message: string): never {
  process.stderr.write(`${name}: ${message} (--help lists the options)\n`);
  process.exit(EXIT_USAGE);
}

/** A whole-number option value in [min, max], or a usage error naming the option. */
export function integerOption(name: string, option: string, value: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) usageError(name, `--${option} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

function describeParseError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  const option = /'(-[^' ]*)/.exec(error.message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    if (error.message.includes('does not take an argument')) return `option ${option} takes no value`;
    // `--server --once`: parseArgs calls a value that starts with a dash ambiguous and takes it only after `=`.
    return `option ${option} needs a value${error.message.includes('ambiguous') ? ` (write ${option}=VALUE for one that starts with "-")` : ''}`;
  }
  // What is left are mistakes in an options table (a bad type or short name), one line, no trailing period.
  return error.message.split('\n')[0] ?? '';
}

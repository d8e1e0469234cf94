import { vi } from 'vitest';

// Runs a command-line function in this process and reports what it printed and the status it exited with. The
// functions under test end the process (`process.exit`); here the exit is stopped and recorded so that the test
// process survives, and `make mutate` (whose per-test coverage cannot see into child processes) sees the code run.
// The child-process tests (test/contract/command-line.test.ts) check that the real commands exit the same way.

class Exited extends Error {
  readonly code: number | undefined;
  constructor(code: number | undefined) {
    super(`process.exit(${code})`);
    this.code = code;
  }
}

export interface CommandOutcome<T> {
  /** Whether the function called `process.exit`, and with which status (undefined: none given). */
  readonly exited: boolean;
  readonly exitCode: number | undefined;
  /** What the function returned (or resolved to), when it did not exit. */
  readonly value: T | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/** Calls `fn`, capturing stdout, stderr and a `process.exit`; any other throw propagates. */
export async function runCommand<T>(fn: () => T | Promise<T>): Promise<CommandOutcome<T>> {
  let stdout = '';
  let stderr = '';
  const exit = vi.spyOn(process, 'exit').mockImplementation((code?: string | number | null) => {
    throw new Exited(code === undefined || code === null ? undefined : Number(code));
  });
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const value = await fn();
    return { exited: false, exitCode: undefined, value, stdout, stderr };
  } catch (error) {
    if (!(error instanceof Exited)) throw error;
    return { exited: true, exitCode: error.code, value: undefined, stdout, stderr };
  } finally {
    exit.mockRestore();
    out.mockRestore();
    err.mockRestore();
  }
}

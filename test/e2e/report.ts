import { afterEach } from 'vitest';
import type { Stack } from '../../tools/stack/stack.ts';

/** Prints every process's output after a failed test, so the reason is in the log next to the failure. */
export function reportOnFailure(stack: () => Stack | undefined): void {
  afterEach((ctx) => {
    const s = stack();
    if (ctx.task.result?.state === 'fail' && s) {
      process.stderr.write(`\n===== process output for "${ctx.task.name}" =====\n${s.report()}\n`);
    }
  });
}

import { afterAll, beforeAll } from 'vitest';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { startStack, type Stack, type StackOptions } from '../../tools/stack/stack.ts';
import { reportOnFailure } from './report.ts';

/**
 * Registers the file's hooks: one stack started in beforeAll (from options, or from a function that prepares them),
 * closed in afterAll, with every process's output printed after a failed test. Returns the running stack's accessor.
 */
export function useStack(options: StackOptions | (() => Promise<StackOptions>)): () => Stack {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack(typeof options === 'function' ? await options() : options);
  });
  afterAll(async () => {
    await stack?.close();
  });
  reportOnFailure(() => stack);
  return () => {
    if (!stack) throw new Error('stack did not start');
    return stack;
  };
}

/** The stack's webhook receiver called `name`. */
export function receiverOf(stack: Stack, name: string): HttpReceiver {
  const r = stack.receivers[name];
  if (!r) throw new Error(`no receiver ${name}`);
  return r;
}

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

/**
 * The sum of a tap metric's samples whose labels include `labels`, read from the running tap's /metrics. Throws
 * when the tap does not export the metric at all, so a renamed metric cannot pass for a zero.
 */
export async function tapMetric(stack: Stack, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${stack.tapAdminUrl}/metrics`)).text();
  if (!text.includes(`# TYPE ${name} `)) throw new Error(`the tap exports no metric ${name}`);
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) {
    const have = new Map([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[2]);
  }
  return sum;
}

import { waitUntil } from '../../tools/stack/process.ts';

/** Waits until a synchronous check holds (polling, with a deadline); `waitUntil` for checks that need no I/O. */
export function eventually(what: string, check: () => boolean, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<void> {
  return waitUntil(what, () => Promise.resolve(check()), options);
}

export { waitUntil };

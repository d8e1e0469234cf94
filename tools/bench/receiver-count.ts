import { sleep } from './processes.ts';

// Reads a peers/receiver.ts counter and waits on it.

export interface Counts {
  readonly count: number;
  readonly byPath: Readonly<Record<string, number>>;
}

export async function readCounts(url: string): Promise<Counts> {
  const res = await fetch(`${url}/__count`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as Counts;
}

/** Resolves with the milliseconds since `started` at which `done` became true, or null on timeout. */
export async function waitForCounts(
  url: string,
  done: (c: Counts) => boolean,
  started: number,
  timeoutMs: number,
  pollMs = 10,
): Promise<number | null> {
  for (;;) {
    const c = await readCounts(url);
    const now = performance.now();
    if (done(c)) return now - started;
    if (now - started > timeoutMs) return null;
    await sleep(pollMs);
  }
}

import { sleep } from '../bench/processes.ts';
import { readMetrics, type Sample } from '../fuzz/metrics.ts';

/**
 * A service's /metrics once `done` holds for them, or as they are after `timeoutMs` (what is still in flight then
 * shows in the accounting as pending or as a gap, never hidden).
 */
export async function settled(adminUrl: string, done: (samples: readonly Sample[]) => boolean, timeoutMs = 15_000): Promise<Sample[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const samples = await readMetrics(adminUrl);
    if (done(samples) || performance.now() > deadline) return samples;
    await sleep(200);
  }
}

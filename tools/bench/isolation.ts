import { makePayloads, startPublisher } from './events.ts';
import { startPipeline, type Pipeline, type TargetInput } from './pipeline.ts';
import type { Plan } from './plan.ts';
import { nodeScript, sleep, startPeer } from './processes.ts';
import { readCounts, waitForCounts } from './receiver-count.ts';
import type { World } from './world.ts';

// One dispatcher, four targets. Case A: all four healthy. Case B: the fourth blackholed (accepts, never answers).
// The same burst of events goes to each; the figure is how fast the three healthy targets receive all of it in B
// compared with A. Rounds alternate A and B.

export interface Isolation {
  readonly events: number;
  /** Events per second per healthy target (mean of targets 1-3), per round. */
  readonly allHealthyEps: readonly number[];
  readonly oneBlackholedEps: readonly (number | null)[];
  readonly ratio: number;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

export async function isolation(world: World, plan: Plan, log: (l: string) => void): Promise<Isolation> {
  const recv = nodeScript('peers/receiver.ts');
  const receiver = await startPeer('iso-receiver', recv.command, recv.args, world.dir);
  const blackhole = await startPeer('iso-blackhole', recv.command, [...recv.args, '--mode', 'blackhole'], world.dir);
  const n = plan.isolationEvents;
  const target = (name: string, url: string): TargetInput => ({
    name,
    watchURL: url,
    methods: ['*'],
    queue: { maxEvents: n * 2, maxBytes: 512 * 1024 * 1024 },
  });
  const pipelines: Pipeline[] = [];
  try {
    const cases = {
      healthy: await startPipeline({
        name: 'iso-healthy',
        natsUrl: world.nats.url,
        targets: ['t1', 't2', 't3', 't4'].map((t) => target(t, `${receiver.url}/healthy/${t}`)),
        dir: world.dir,
        tap: false,
      }),
      blackholed: await startPipeline({
        name: 'iso-blackholed',
        natsUrl: world.nats.url,
        targets: [
          ...['t1', 't2', 't3'].map((t) => target(t, `${receiver.url}/blackholed/${t}`)),
          target('t4', `${blackhole.url}/t4`),
        ],
        dir: world.dir,
        tap: false,
      }),
    };
    pipelines.push(cases.healthy, cases.blackholed);
    const payloads = makePayloads(n);
    const allHealthyEps: number[] = [];
    const oneBlackholedEps: (number | null)[] = [];
    for (let r = 0; r < plan.throughputRounds; r++) {
      const order: ('healthy' | 'blackholed')[] = r % 2 === 0 ? ['healthy', 'blackholed'] : ['blackholed', 'healthy'];
      for (const which of order) {
        log(`isolation ${which} round ${r + 1} (${n} events)`);
        const paths = ['t1', 't2', 't3'].map((t) => `/${which}/${t}`);
        const before = (await readCounts(receiver.url)).byPath;
        const publisher = await startPublisher(world.nats.url, cases[which].subjectPrefix);
        const started = performance.now();
        await publisher.burst(payloads);
        const ms = await waitForCounts(
          receiver.url,
          (c) => paths.every((p) => (c.byPath[p] ?? 0) - (before[p] ?? 0) >= n),
          started,
          120_000,
        );
        await publisher.close();
        const eps = ms === null ? null : (n / ms) * 1000;
        if (which === 'healthy') allHealthyEps.push(eps ?? 0);
        else oneBlackholedEps.push(eps);
        await sleep(plan.pauseMs);
      }
    }
    const b = oneBlackholedEps.filter((x): x is number => x !== null);
    return {
      events: n,
      allHealthyEps,
      oneBlackholedEps,
      ratio: b.length === oneBlackholedEps.length ? mean(b) / mean(allHealthyEps) : 0,
    };
  } finally {
    for (const p of pipelines) await p.stop();
    await receiver.process.stop();
    await blackhole.process.stop();
  }
}

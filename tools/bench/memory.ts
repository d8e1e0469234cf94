import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPublisher } from './events.ts';
import { startPipeline } from './pipeline.ts';
import type { Plan } from './plan.ts';
import { startSampler } from './proc-stats.ts';
import { nodeScript, sleep, startPeer } from './processes.ts';
import { slope } from './stats.ts';
import { attack, targetsText } from './vegeta.ts';
import type { World } from './world.ts';

// Memory under the two loads that could make it grow without bound: many large uploads at once through each way of
// attaching the tap, and a dispatcher whose every target is a blackhole while events keep coming.

export interface UploadMemory {
  readonly attachment: string;
  readonly concurrency: number;
  readonly durationS: number;
  readonly requests: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly traefikBeforeMiB: number;
  readonly traefikPeakMiB: number;
  readonly tapBeforeMiB: number;
  readonly tapPeakMiB: number;
  readonly command: string;
}

export interface DispatcherSoak {
  readonly rate: number;
  readonly durationS: number;
  readonly published: number;
  readonly targets: number;
  /** RSS (MiB) at 0, 10, 20, ... seconds. */
  readonly rssEvery10s: readonly { t: number; rssMiB: number }[];
  readonly series: readonly { t: number; rssMiB: number }[];
  /** Least-squares slope of RSS over the second half of the run, MiB per minute. */
  readonly lastHalfSlopeMiBPerMin: number;
  readonly peakMiB: number;
}

const ATTACHMENTS = [
  { id: 'm2', attachment: 'forwardAuth (body not forwarded to the tap)' },
  { id: 'm8', attachment: 'forwardAuth with forwardBody' },
  { id: 'm7', attachment: 'Mirroring' },
] as const;

export async function uploads(world: World, plan: Plan, log: (l: string) => void): Promise<UploadMemory[]> {
  const tapPid = world.pipelines.get('healthy')?.tap?.pid;
  if (!tapPid) throw new Error('pipelines unavailable');
  const body = join(world.dir, 'upload-1MiB.bin');
  writeFileSync(body, Buffer.alloc(1024 * 1024, 'a'));
  const out: UploadMemory[] = [];
  for (const a of ATTACHMENTS) {
    log(`memory: ${plan.uploadWorkers} concurrent 1 MiB uploads via ${a.attachment}`);
    const file = join(world.dir, `targets-${a.id}.txt`);
    writeFileSync(
      file,
      targetsText([{ method: 'POST', url: `${world.traefik.url}/${a.id}/upload`, headers: { 'Content-Type': 'application/octet-stream' }, bodyFile: body }]),
    );
    const sampler = startSampler(
      [
        { name: 'traefik', pids: () => [world.traefik.process.pid] },
        { name: 'tap', pids: () => [tapPid] },
      ],
      200,
    );
    const before = { traefik: sampler.series('traefik').rssMiB[0] ?? 0, tap: sampler.series('tap').rssMiB[0] ?? 0 };
    const res = await attack({
      name: `upload-${a.id}`,
      targetsFile: file,
      rate: 0,
      workers: plan.uploadWorkers,
      maxWorkers: plan.uploadWorkers,
      durationS: plan.uploadS,
      outDir: world.dir,
    });
    // Mirrors run after the response; give them time to land before the last samples.
    await sleep(plan.pauseMs);
    const figs = sampler.stop();
    out.push({
      attachment: a.attachment,
      concurrency: plan.uploadWorkers,
      durationS: plan.uploadS,
      requests: res.requests,
      errors: res.errors,
      errorSamples: res.errorSamples,
      traefikBeforeMiB: before.traefik,
      traefikPeakMiB: figs.traefik?.rssPeakMiB ?? 0,
      tapBeforeMiB: before.tap,
      tapPeakMiB: figs.tap?.rssPeakMiB ?? 0,
      command: res.command,
    });
    await sleep(2 * plan.pauseMs);
  }
  return out;
}

export async function dispatcherSoak(world: World, plan: Plan, log: (l: string) => void): Promise<DispatcherSoak> {
  const recv = nodeScript('peers/receiver.ts');
  const blackhole = await startPeer('soak-blackhole', recv.command, [...recv.args, '--mode', 'blackhole'], world.dir);
  // Production defaults for queues, timeouts, retries and the circuit breaker: this is the memory they bound.
  const pipeline = await startPipeline({
    name: 'soak',
    natsUrl: world.nats.url,
    targets: ['a', 'b'].map((t) => ({ name: t, watchURL: `${blackhole.url}/${t}`, methods: ['*'] })),
    dir: world.dir,
    tap: false,
  });
  try {
    const pid = pipeline.dispatcher?.pid ?? -1;
    log(`memory: dispatcher with every target blackholed, ${plan.soakRate} events/s for ${plan.soakS} s`);
    const sampler = startSampler([{ name: 'dispatcher', pids: () => [pid] }], 1000);
    const publisher = await startPublisher(world.nats.url, pipeline.subjectPrefix);
    const published = await publisher.paced(plan.soakRate, plan.soakS);
    await publisher.close();
    const series = sampler.series('dispatcher');
    sampler.stop();
    const points = series.t.map((t, i) => ({ t, rssMiB: series.rssMiB[i] ?? 0 }));
    const half = points.filter((p) => p.t >= plan.soakS / 2);
    const every10 = [];
    for (let t = 0; t <= plan.soakS; t += 10) {
      const nearest = points.reduce((best, p) => (Math.abs(p.t - t) < Math.abs(best.t - t) ? p : best), points[0] ?? { t: 0, rssMiB: 0 });
      every10.push({ t, rssMiB: nearest.rssMiB });
    }
    return {
      rate: plan.soakRate,
      durationS: plan.soakS,
      published,
      targets: 2,
      rssEvery10s: every10,
      series: points,
      lastHalfSlopeMiBPerMin: slope(half.map((p) => p.t), half.map((p) => p.rssMiB)) * 60,
      peakMiB: Math.max(...points.map((p) => p.rssMiB)),
    };
  } finally {
    await pipeline.stop();
    await blackhole.process.stop();
  }
}

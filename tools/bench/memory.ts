import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from './plan.ts';
import { startSampler } from './proc-stats.ts';
import { sleep } from './processes.ts';
import { attack, targetsText } from './vegeta.ts';
import type { World } from './world.ts';

// Memory under many large uploads at once through each way of attaching the tap. The long soaks (a dispatcher whose
// every target is blackholed, a tap with NATS down, 1 MiB bodies for ten minutes) are `make soak`'s (tools/soak/).

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

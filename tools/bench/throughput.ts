import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePayloads, startPublisher } from './events.ts';
import { startPipeline, type Pipeline } from './pipeline.ts';
import type { Plan } from './plan.ts';
import { nodeScript, sleep, startLogged, startPeer } from './processes.ts';
import { readCounts, waitForCounts } from './receiver-count.ts';
import { attack, targetsText } from './vegeta.ts';
import type { World } from './world.ts';

// Closed-loop ceilings, each measured against its reference in the same run, alternating rounds:
// the tap's forwardAuth listener against a bare fastify 200 responder (vegeta, fixed workers, no rate limit), and
// the dispatcher delivering N events from NATS against a raw undici loop POSTing the same payloads.

export interface TapThroughput {
  readonly workers: number;
  readonly durationS: number;
  readonly tapRps: readonly number[];
  readonly fastifyRps: readonly number[];
  readonly tapErrors: number;
  readonly ratio: number;
  readonly commands: readonly string[];
}

export interface DispatcherThroughput {
  readonly events: number;
  readonly concurrency: number;
  readonly payloadBytes: number;
  readonly dispatcherEps: readonly (number | null)[];
  readonly undiciEps: readonly number[];
  readonly ratio: number;
}

const FORWARD_AUTH_HEADERS = {
  'X-Forwarded-Method': 'GET',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-Host': 'shop.example.com',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Uri': '/api/items?id=42&page=1',
  'X-Forwarded-For': '203.0.113.7',
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  Accept: 'application/json',
  Cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark',
};

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

export async function tapThroughput(world: World, plan: Plan, log: (l: string) => void): Promise<TapThroughput> {
  const fast = world.pipelines.get('healthy');
  if (!fast) throw new Error('pipelines unavailable');
  // The tap alone: no dispatcher competing for the two cores; NATS drops events nobody subscribes to.
  const pipeline = await startPipeline({
    name: 'tput',
    natsUrl: world.nats.url,
    targets: [{ name: 'hook', watchURL: 'http://127.0.0.1:9/hook', methods: ['*'] }],
    dir: world.dir,
    dispatcher: false,
  });
  try {
    const files = {
      tap: join(world.dir, 'targets-tput-tap.txt'),
      fastify: join(world.dir, 'targets-tput-fastify.txt'),
    };
    writeFileSync(files.tap, targetsText([{ method: 'GET', url: `http://127.0.0.1:${pipeline.forwardAuthPort}/`, headers: FORWARD_AUTH_HEADERS }]));
    writeFileSync(files.fastify, targetsText([{ method: 'GET', url: `${world.fastifyH1.url}/`, headers: FORWARD_AUTH_HEADERS }]));
    const tapRps: number[] = [];
    const fastifyRps: number[] = [];
    const commands: string[] = [];
    let tapErrors = 0;
    for (let r = 0; r < plan.throughputRounds; r++) {
      const order: ('tap' | 'fastify')[] = r % 2 === 0 ? ['tap', 'fastify'] : ['fastify', 'tap'];
      for (const which of order) {
        log(`throughput ${which} round ${r + 1}`);
        const res = await attack({
          name: `tput-${which}-r${r + 1}`,
          targetsFile: files[which],
          rate: 0,
          workers: plan.throughputWorkers,
          maxWorkers: plan.throughputWorkers,
          durationS: plan.throughputS,
          outDir: world.dir,
        });
        commands.push(res.command);
        if (which === 'tap') {
          tapRps.push(res.throughput);
          tapErrors += res.errors;
        } else fastifyRps.push(res.throughput);
        await sleep(plan.pauseMs);
      }
    }
    return {
      workers: plan.throughputWorkers,
      durationS: plan.throughputS,
      tapRps,
      fastifyRps,
      tapErrors,
      ratio: mean(tapRps) / mean(fastifyRps),
      commands,
    };
  } finally {
    await pipeline.stop();
  }
}

export async function dispatcherThroughput(world: World, plan: Plan, log: (l: string) => void): Promise<DispatcherThroughput> {
  const recv = nodeScript('peers/receiver.ts');
  const receiver = await startPeer('dput-receiver', recv.command, recv.args, world.dir);
  let pipeline: Pipeline | undefined;
  try {
    const n = plan.dispatcherEvents;
    pipeline = await startPipeline({
      name: 'dput',
      natsUrl: world.nats.url,
      targets: [
        {
          name: 'hook',
          watchURL: `${receiver.url}/hook`,
          methods: ['*'],
          concurrency: plan.dispatcherConcurrency,
          // The whole burst must fit in the queue: this measures delivery speed, not the drop policy.
          queue: { maxEvents: n * 2, maxBytes: 512 * 1024 * 1024 },
        },
      ],
      dir: world.dir,
      tap: false,
    });
    const payloads = makePayloads(n);
    const payloadFile = join(world.dir, 'dput-payloads.ndjson');
    writeFileSync(payloadFile, payloads.join('\n'));
    const publisher = await startPublisher(world.nats.url, pipeline.subjectPrefix);
    const dispatcherEps: (number | null)[] = [];
    const undiciEps: number[] = [];
    try {
      for (let r = 0; r < plan.throughputRounds; r++) {
        const order: ('dispatcher' | 'undici')[] = r % 2 === 0 ? ['dispatcher', 'undici'] : ['undici', 'dispatcher'];
        for (const which of order) {
          log(`throughput ${which} round ${r + 1} (${n} events)`);
          const base = (await readCounts(receiver.url)).count;
          if (which === 'dispatcher') {
            const started = performance.now();
            await publisher.burst(payloads);
            const ms = await waitForCounts(receiver.url, (c) => c.count >= base + n, started, 120_000);
            dispatcherEps.push(ms === null ? null : (n / ms) * 1000);
          } else {
            const loop = nodeScript('peers/undici-loop.ts');
            const child = startLogged(`undici-loop-r${r + 1}`, loop.command, [
              ...loop.args,
              '--url',
              `${receiver.url}/hook`,
              '--payloads',
              payloadFile,
              '--concurrency',
              String(plan.dispatcherConcurrency),
            ], world.dir);
            await child.exit;
            const out = JSON.parse(child.output().trim().split('\n').pop() ?? '{}') as { sent: number; ms: number };
            undiciEps.push((out.sent / out.ms) * 1000);
          }
          await sleep(plan.pauseMs);
        }
      }
    } finally {
      await publisher.close();
    }
    const d = dispatcherEps.filter((x): x is number => x !== null);
    return {
      events: n,
      concurrency: plan.dispatcherConcurrency,
      payloadBytes: Math.round(payloads.reduce((a, p) => a + p.length, 0) / payloads.length),
      dispatcherEps,
      undiciEps,
      ratio: d.length === dispatcherEps.length ? mean(d) / mean(undiciEps) : 0,
    };
  } finally {
    await pipeline?.stop();
    await receiver.process.stop();
  }
}

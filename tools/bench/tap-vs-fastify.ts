import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { integerOption, parseCommandLine } from '../../contract/command-line.ts';
import { startNatsServer } from '../stack/nats-server.ts';
import { answers2xx, waitUntil } from '../stack/process.ts';
import { freePort } from '../stack/free-port.ts';
import { scratchDir } from '../stack/scratch-dir.ts';
import { nodeScript, REPO_ROOT, startLogged, startPeer } from './processes.ts';
import { alternateClosedLoop, FORWARD_AUTH_HEADERS, spreadOf, tapThroughputOf, type ClosedLoopOptions } from './throughput.ts';
import { targetsText } from './vegeta.ts';

// The tap's own throughput probe, the twin of dispatcher-vs-undici.ts: the tap's forwardAuth listener (a real
// `node ingress-tap/main.ts` publishing to a real nats-server) against bare fastify, closed loop with vegeta,
// alternating rounds, the same method as `make bench`'s throughput part without Traefik and the rest. For judging a
// change to ingress-tap/ in a minute (run under `flock /tmp/bench.lock`, after `. tools/env.sh && _rm_bench_tools`):
//
//   node tools/bench/tap-vs-fastify.ts [--rounds 3] [--seconds 8] [--warmup 3] [--workers 32] [--cpu-prof DIR]
//                                      [--tap OTHER_CHECKOUT/ingress-tap/main.ts]

const NAME = 'node tools/bench/tap-vs-fastify.ts';
const { values } = parseCommandLine({
  name: NAME,
  usage: `
usage: node tools/bench/tap-vs-fastify.ts [--rounds N] [--seconds N] [--warmup N] [--workers N] [--cpu-prof DIR]
                                         [--tap OTHER_CHECKOUT/ingress-tap/main.ts]

Compares the tap's forwardAuth req/s with bare fastify's (vegeta closed loop, GET with forwardAuth's headers).
  --rounds N     rounds, alternating tap/fastify in ABBA order (default 3)
  --seconds N    seconds per side per round (default 8)
  --warmup N     untimed seconds of load on each side first (default 3; 0 shows a cold process)
  --workers N    vegeta workers, i.e. requests in flight (default 32)
  --cpu-prof DIR write the tap's CPU profile here
  --tap FILE     another checkout's ingress-tap/main.ts, to compare a change with its parent
  -h, --help     this text`,
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    workers: { type: 'string', default: '32' },
    'cpu-prof': { type: 'string' },
    tap: { type: 'string' },
  },
});

const counts = {
  rounds: integerOption(NAME, 'rounds', values.rounds, 1),
  durationS: integerOption(NAME, 'seconds', values.seconds, 1),
  warmupS: integerOption(NAME, 'warmup', values.warmup, 0),
  workers: integerOption(NAME, 'workers', values.workers, 1),
};
// Configs, vegeta results and the children's logs: what matters of them is printed (the figures, or a child's output
// when it fails), so nothing is kept once the run ends, however it ends.
const dir = scratchDir('rm-tvf-').path;
const options: ClosedLoopOptions = { ...counts, pauseMs: 1000, settleTimeoutMs: 8000, outDir: dir };
const nats = await startNatsServer();
const [faPort, adminPort] = [await freePort(), await freePort()];
const configFile = join(dir, 'config.yaml');
// A target that wants every request, so each one is built and published; no dispatcher (NATS drops the events).
writeFileSync(
  configFile,
  `nats: { url: "${nats.url}", subjectPrefix: bench }
tap:
  forwardAuth: { host: 127.0.0.1, port: ${faPort} }
  mirror: { host: 127.0.0.1, port: ${await freePort()} }
  plugin: { host: 127.0.0.1, port: ${await freePort()} }
  admin: { host: 127.0.0.1, port: ${adminPort} }
targets:
  - name: hook
    watchURL: "http://127.0.0.1:9/hook"
    methods: ["*"]
`,
);
const profDir = values['cpu-prof'];
const tapProcess = startLogged(
  'tap',
  process.execPath,
  [...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), values.tap ?? join(REPO_ROOT, 'ingress-tap/main.ts'), '--config', configFile],
  dir,
  { ...process.env, LOG_LEVEL: 'warn' },
);
const bare = nodeScript('peers/bare-fastify.ts');
const fastify = await startPeer('fastify', bare.command, bare.args, dir);
try {
  await waitUntil('tap /readyz', () => answers2xx(`http://127.0.0.1:${adminPort}/readyz`), { process: tapProcess });
  const tap = { name: 'tap', targetsFile: join(dir, 'targets-tap.txt'), pid: tapProcess.pid };
  const ref = { name: 'fastify', targetsFile: join(dir, 'targets-fastify.txt'), pid: fastify.process.pid };
  writeFileSync(tap.targetsFile, targetsText([{ method: 'GET', url: `http://127.0.0.1:${faPort}/`, headers: FORWARD_AUTH_HEADERS }]));
  writeFileSync(ref.targetsFile, targetsText([{ method: 'GET', url: `${fastify.url}/`, headers: FORWARD_AUTH_HEADERS }]));
  const t = tapThroughputOf(await alternateClosedLoop(tap, ref, options, (l) => process.stderr.write(`${l}\n`)), options);
  const r = (x: number) => Math.round(x);
  const f = (x: number) => Number(x.toFixed(3));
  const cpu = (xs: readonly number[]) => Number(spreadOf(xs).median.toFixed(1));
  // Last, so `| tail -1` gives the figures.
  process.stdout.write(
    `${JSON.stringify({
      rounds: options.rounds,
      seconds: options.durationS,
      workers: options.workers,
      tapRps: t.tapRps.map(r),
      fastifyRps: t.fastifyRps.map(r),
      tapErrors: t.tapErrors,
      spread: {
        tapRps: [r(Math.min(...t.tapRps)), r(Math.max(...t.tapRps))],
        fastifyRps: [r(Math.min(...t.fastifyRps)), r(Math.max(...t.fastifyRps))],
      },
      ratioPerRound: t.ratioPerRound.map(f),
      ratio: { min: f(t.ratioSpread.min), median: f(t.ratioSpread.median), max: f(t.ratioSpread.max) },
      cpuUsPerRequest: { tap: cpu(t.tapCpuUsPerRequest), fastify: cpu(t.fastifyCpuUsPerRequest) },
      busyPctBeforeRound: t.busyPctBeforeRound.map(r),
    })}\n`,
  );
} finally {
  await tapProcess.stop();
  await fastify.process.stop();
  await nats.stop();
}

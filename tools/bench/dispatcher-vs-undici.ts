import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Pool } from 'undici';
import { integerOption, parseCommandLine } from '../../contract/command-line.ts';
import { makeEvent } from './events.ts';
import { requestSubject } from '../../contract/subjects.ts';
import { startNatsServer } from '../stack/nats-server.ts';
import { atExit } from '../stack/at-exit.ts';
import { scratchDir } from '../stack/scratch-dir.ts';

// The dispatcher's own throughput probe (issue goal: dispatcher deliveries/s ≥ 0.7 × a raw undici loop POSTing the
// same payloads to the same receiver, in the same run). Quicker than the full harness (tools/bench/main.ts) and
// without Traefik, so a change to dispatcher/ can be judged in a minute:
//
//   node tools/bench/dispatcher-vs-undici.ts [--events 20000] [--rounds 3] [--concurrency 8] [--cpu-prof DIR]
//                                            [--dispatcher OTHER_CHECKOUT/dispatcher/main.ts]
//
// Every party is its own process so none shares an event loop with another: the receiver (node:http, 204), the raw
// undici loop, a real `node dispatcher/main.ts` and a real nats-server. Rounds alternate loop/dispatcher (the order
// flips each round) because other work on the machine comes and goes. The dispatcher's time runs from the first
// publish until the receiver has counted every event.

const ROOT = join(import.meta.dirname, '../..');
const SELF = import.meta.filename;

const { values } = parseCommandLine({
  name: 'node tools/bench/dispatcher-vs-undici.ts',
  usage: `
usage: node tools/bench/dispatcher-vs-undici.ts [--events N] [--rounds N] [--concurrency N] [--cpu-prof DIR]
                                              [--dispatcher OTHER_CHECKOUT/dispatcher/main.ts] [--node-args ARGS]

Compares the dispatcher's deliveries/s with a raw undici loop POSTing the same payloads to the same receiver.
  --events N          events per round (default 20000)
  --rounds N          rounds, alternating loop/dispatcher (default 3)
  --concurrency N     requests in flight (default 8)
  --cpu-prof DIR      write the dispatcher's CPU profile here
  --dispatcher FILE   another checkout's dispatcher/main.ts, to compare a change with its parent
  --node-args ARGS    extra node flags for the dispatcher, space-separated: --node-args='--trace-gc'
  -h, --help          this text`,
  options: {
    // Internal: the same file runs the receiver and the undici loop as child processes.
    role: { type: 'string', default: 'orchestrate' },
    events: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '8' },
    url: { type: 'string' },
    payloads: { type: 'string' },
    'cpu-prof': { type: 'string' },
    dispatcher: { type: 'string' },
    'node-args': { type: 'string', default: '' },
  },
});

function makePayloads(n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(makeEvent(i)));
}

/** node:http answering 204; `GET /__wait?n=N` answers once N requests have been counted in all. */
function receiver(): void {
  let count = 0;
  let waiters: { n: number; res: import('node:http').ServerResponse }[] = [];
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/__wait')) {
      const n = Number(new URL(req.url, 'http://x').searchParams.get('n'));
      if (count >= n) res.end(String(count));
      else waiters.push({ n, res });
      return;
    }
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(204).end();
      if (waiters.length > 0) {
        waiters = waiters.filter((w) => {
          if (count < w.n) return true;
          w.res.end(String(count));
          return false;
        });
      }
    });
  });
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', 4096, () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
}

/** The reference: the same bytes, the same number in flight, a keep-alive pool, nothing else. */
async function loop(): Promise<void> {
  const url = new URL(values.url ?? '');
  const concurrency = integerOption('node tools/bench/dispatcher-vs-undici.ts', 'concurrency', values.concurrency, 1);
  const payloads = readFileSync(values.payloads ?? '', 'utf8').split('\n').filter((l) => l !== '');
  const pool = new Pool(url.origin, { connections: concurrency, pipelining: 1 });
  const run = async (list: string[]) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < list.length; i = next++) {
          const res = await pool.request({
            method: 'POST',
            path: url.pathname,
            headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
            body: list[i],
          });
          await res.body.dump();
        }
      }),
    );
  };
  // The dispatcher process is warm by the time it is measured; warm the loop the same way.
  await run(payloads.slice(0, 2000));
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run(payloads);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await pool.close();
  process.stdout.write(`${JSON.stringify({ ms, cpuUs: used.user + used.system })}\n`);
}

/** User + system CPU of a process so far, in µs (Linux /proc; clock ticks are 100 Hz here). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function child(args: string[], nodeArgs: string[] = []): { proc: ChildProcess; line: (re: RegExp) => Promise<RegExpExecArray>; out: () => string } {
  const proc = spawn(process.execPath, [...nodeArgs, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  atExit(() => proc.kill('SIGKILL'));
  return {
    proc,
    out: () => out,
    line: (re) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            proc.stdout.off('data', check);
            resolve(m);
          }
        };
        proc.stdout.on('data', check);
        proc.once('exit', (code) => {
          reject(new Error(`${args[0]} exited (${code}) before ${re}:\n${out}`));
        });
        check();
      }),
  };
}

async function orchestrate(): Promise<void> {
  const events = integerOption('node tools/bench/dispatcher-vs-undici.ts', 'events', values.events, 1);
  const rounds = integerOption('node tools/bench/dispatcher-vs-undici.ts', 'rounds', values.rounds, 1);
  const concurrency = integerOption('node tools/bench/dispatcher-vs-undici.ts', 'concurrency', values.concurrency, 1);
  // Removed however the run ends, except for the dispatcher's output after a run that finished (see below).
  const scratch = scratchDir('rm-dvu-');
  const dir = scratch.path;
  const nats = await startNatsServer();
  const rcv = child([SELF, '--role', 'receiver']);
  const port = Number((await rcv.line(/listening (\d+)/))[1]);
  const url = `http://127.0.0.1:${port}/hook`;
  const wait = async (n: number) => {
    const res = await fetch(`http://127.0.0.1:${port}/__wait?n=${n}`, { signal: AbortSignal.timeout(600_000) });
    return Number(await res.text());
  };
  let received = 0;

  const payloads = makePayloads(events);
  const payloadFile = join(dir, 'payloads.ndjson');
  writeFileSync(payloadFile, `${payloads.join('\n')}\n`);

  const configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    `nats: { url: "${nats.url}", subjectPrefix: bench }
dispatcher:
  admin: { host: 127.0.0.1, port: 0 }
  network: { allowLoopback: true }
targets:
  - name: fast
    watchURL: "${url}"
    methods: ["*"]
    concurrency: ${concurrency}
    queue: { maxEvents: ${events + 1000}, maxBytes: 1073741824 }
`,
  );
  const profDir = values['cpu-prof'];
  const disp = child([values.dispatcher ?? join(ROOT, 'dispatcher/main.ts'), '--config', configFile], [
    ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
    ...values['node-args'].split(' ').filter((a) => a !== ''),
  ]);
  await disp.line(/"msg":"subscribed"/);
  const nc = await connect({ servers: nats.url });
  const subject = requestSubject('bench', 'POST');
  const burst = async (list: readonly string[]) => {
    for (const p of list) nc.publish(subject, p);
    await nc.flush();
  };

  // Warm-up, as the loop warms itself.
  await burst(payloads.slice(0, 2000));
  received = await wait(received + 2000);

  const dispatcherEps: number[] = [];
  const undiciEps: number[] = [];
  // CPU per delivery is steadier than deliveries/s on a shared machine: it says what a change saves even when
  // other work takes the cores.
  const dispatcherCpuUs: number[] = [];
  const undiciCpuUs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['undici', 'dispatcher'] : ['dispatcher', 'undici'];
    for (const which of order) {
      if (which === 'undici') {
        const l = child([SELF, '--role', 'loop', '--url', url, '--payloads', payloadFile, '--concurrency', String(concurrency)]);
        const { ms, cpuUs } = JSON.parse((await l.line(/\{"ms":[^}]+\}/))[0]) as { ms: number; cpuUs: number };
        received = await wait(received + events + 2000);
        undiciEps.push((events / ms) * 1000);
        undiciCpuUs.push(cpuUs / events);
      } else {
        const pid = disp.proc.pid ?? 0;
        const cpu = cpuOf(pid);
        const started = performance.now();
        await burst(payloads);
        received = await wait(received + events);
        const ms = performance.now() - started;
        dispatcherEps.push((events / ms) * 1000);
        dispatcherCpuUs.push((cpuOf(pid) - cpu) / events);
      }
      const last = which === 'undici' ? undiciEps.at(-1) : dispatcherEps.at(-1);
      process.stdout.write(`round ${r + 1} ${which.padEnd(10)} ${last?.toFixed(0)} /s\n`);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const ratios = dispatcherEps.map((d, i) => d / (undiciEps[i] ?? Number.NaN));
  const summary = `${JSON.stringify({
      events,
      concurrency,
      dispatcherEps: dispatcherEps.map(Math.round),
      undiciEps: undiciEps.map(Math.round),
      ratioPerRound: ratios.map((x) => Number(x.toFixed(3))),
      // min-max of each side and of the per-round ratios: how far one run's figure can be trusted on this machine.
      spread: {
        dispatcherEps: [Math.round(Math.min(...dispatcherEps)), Math.round(Math.max(...dispatcherEps))],
        undiciEps: [Math.round(Math.min(...undiciEps)), Math.round(Math.max(...undiciEps))],
        ratio: [Number(Math.min(...ratios).toFixed(3)), Number(Math.max(...ratios).toFixed(3))],
      },
      ratio: Number((mean(dispatcherEps) / mean(undiciEps)).toFixed(3)),
      medianRatio: Number(median(ratios).toFixed(3)),
      cpuUsPerEvent: { dispatcher: Number(median(dispatcherCpuUs).toFixed(1)), undici: Number(median(undiciCpuUs).toFixed(1)) },
    })}\n`;
  await nc.close();
  disp.proc.kill('SIGTERM');
  await new Promise((resolve) => disp.proc.once('exit', resolve));
  // Its output is what --node-args='--trace-gc' is for, so it stays, alone (the payload file grows with --events).
  rmSync(payloadFile);
  rmSync(configFile);
  writeFileSync(join(dir, 'dispatcher.log'), disp.out());
  scratch.keep();
  process.stdout.write(`dispatcher output kept in ${join(dir, 'dispatcher.log')}\n`);
  // Last, so `| tail -1` gives the figures.
  process.stdout.write(summary);
  rcv.proc.kill('SIGTERM');
  await nats.stop();
}

switch (values.role) {
  case 'receiver':
    receiver();
    break;
  case 'loop':
    await loop();
    break;
  default:
    await orchestrate();
}

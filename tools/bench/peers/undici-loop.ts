import { readFileSync } from 'node:fs';
import { integerOption, parseCommandLine, usageError } from '../../../contract/command-line.ts';
import { Pool } from 'undici';

// The ceiling for the dispatcher: POST each payload of a file (one JSON document per line) to one URL with a fixed
// number of requests in flight over a keep-alive pool, nothing else. With --warmup N the first N payloads go once
// untimed first, as a warm dispatcher has. Prints `{"sent":N,"failed":N,"ms":T,"cpuUs":C}` (C: this process's CPU
// time over the timed part).

const { values } = parseCommandLine({
  name: 'node tools/bench/peers/undici-loop.ts',
  usage: `
usage: node tools/bench/peers/undici-loop.ts --url URL --payloads FILE [--concurrency N] [--warmup N]
POSTs each line of FILE to URL with N requests in flight; prints {"sent":N,"failed":N,"ms":T,"cpuUs":C}.`,
  options: {
    url: { type: 'string' },
    payloads: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '0' },
  },
});
if (!values.url || !values.payloads) usageError('node tools/bench/peers/undici-loop.ts', '--url and --payloads are required');
const url = new URL(values.url);
const concurrency = integerOption('node tools/bench/peers/undici-loop.ts', 'concurrency', values.concurrency, 1);
const payloads = readFileSync(values.payloads, 'utf8')
  .split('\n')
  .filter((l) => l !== '');
const warmup = integerOption('node tools/bench/peers/undici-loop.ts', 'warmup', values.warmup, 0);
const pool = new Pool(url.origin, { connections: concurrency, pipelining: 1 });

let next = 0;
let failed = 0;
async function worker(list: readonly string[]): Promise<void> {
  for (;;) {
    const i = next++;
    const body = list[i];
    if (body === undefined) return;
    const res = await pool.request({
      method: 'POST',
      path: url.pathname,
      headers: { 'content-type': 'application/cloudevents+json' },
      body,
    });
    await res.body.dump();
    if (res.statusCode >= 300) failed++;
  }
}
if (warmup > 0) {
  await Promise.all(Array.from({ length: concurrency }, () => worker(payloads.slice(0, warmup))));
  next = 0;
  failed = 0;
}
const cpu = process.cpuUsage();
const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, () => worker(payloads)));
const ms = performance.now() - started;
const used = process.cpuUsage(cpu);
await pool.close();
process.stdout.write(`${JSON.stringify({ sent: payloads.length, failed, ms, cpuUs: used.user + used.system })}\n`);

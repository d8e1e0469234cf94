import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startProcess } from '../stack/process.ts';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { repoRelative } from './processes.ts';

// Open-model load with vegeta: requests leave at the offered rate whether or not earlier ones have answered, so a
// slow response cannot hide the queueing it causes (no coordinated omission). Percentiles are computed by us from
// every per-request result (`vegeta encode -to json`), not taken from vegeta's histogram.

export function vegetaBin(): string {
  const bin = process.env.VEGETA_BIN;
  if (!bin) throw new Error('VEGETA_BIN is not set: run through `make bench` (tools/env.sh _rm_bench_setup builds it)');
  return bin;
}

export interface AttackOptions {
  readonly name: string;
  readonly targetsFile: string;
  /** Requests per second; 0 means as fast as `workers` allow (closed loop). */
  readonly rate: number;
  readonly durationS: number;
  readonly workers?: number;
  readonly maxWorkers?: number;
  /** Cap on vegeta's connections per host (it keeps them alive); 0 for no cap. */
  readonly maxConnections?: number;
  readonly timeoutS?: number;
  readonly outDir: string;
  /**
   * Delete vegeta's per-request result file (`<outDir>/<name>.bin`, ~100 bytes per request) once read: long runs
   * (make soak: 60-75 MB per 10 minutes) keep only the figures. The benchmark keeps it for a second look.
   */
  readonly discardResults?: boolean;
}

export interface AttackResult {
  readonly name: string;
  readonly command: string;
  readonly offeredRate: number;
  /** Requests sent per second over the attack (vegeta's `rate`). */
  readonly sentRate: number;
  /** Successful responses per second (vegeta's `throughput`). */
  readonly throughput: number;
  readonly requests: number;
  /** Non-2xx answers and transport errors. */
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly statusCodes: Readonly<Record<string, number>>;
  readonly latenciesMs: Float64Array;
}

function run(args: readonly string[], onLine?: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(vegetaBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });

    let out = '';
    let err = '';
    if (onLine) createInterface({ input: child.stdout }).on('line', onLine);
    else child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`vegeta ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

interface EncodedResult {
  code: number;
  latency: number;
  error: string;
}

interface VegetaReport {
  rate: number;
  throughput: number;
}

export async function attack(options: AttackOptions): Promise<AttackResult> {
  const bin = join(options.outDir, `${options.name}.bin`);
  const args = [
    'attack',
    `-name=${options.name}`,
    '-format=http',
    `-targets=${options.targetsFile}`,
    `-rate=${options.rate}/s`,
    `-duration=${options.durationS}s`,
    `-timeout=${options.timeoutS ?? 30}s`,
    '-max-body=0',
    ...(options.workers ? [`-workers=${options.workers}`] : []),
    ...(options.maxWorkers ? [`-max-workers=${options.maxWorkers}`] : []),
    ...(options.maxConnections ? [`-connections=${options.maxConnections}`, `-max-connections=${options.maxConnections}`] : []),
    `-output=${bin}`,
  ];
  // Through the test process launcher: an attack must not outlive the benchmark, however it ends.
  const attacker = startProcess({ name: `vegeta ${options.name}`, command: vegetaBin(), args });
  const code = await attacker.exit;
  if (code !== 0) throw new Error(`vegeta ${args.join(' ')} exited ${code}: ${attacker.output().slice(-2000)}`);
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const errorSamples = new Set<string>();
  let errors = 0;
  await run(['encode', '-to=json', bin], (line) => {
    if (!line) return;
    const r = JSON.parse(line) as EncodedResult;
    latencies.push(r.latency / 1e6);
    statusCodes[String(r.code)] = (statusCodes[String(r.code)] ?? 0) + 1;
    if (r.error || r.code < 200 || r.code > 299) {
      errors++;
      if (errorSamples.size < 5) errorSamples.add(r.error || `HTTP ${r.code}`);
    }
  });
  const report = JSON.parse(await run(['report', '-type=json', bin])) as VegetaReport;
  if (options.discardResults) rmSync(bin, { force: true });
  return {
    name: options.name,
    command: `vegeta ${args.map(repoRelative).join(' ')}`,
    offeredRate: options.rate,
    sentRate: report.rate,
    throughput: report.throughput,
    requests: latencies.length,
    errors,
    errorSamples: [...errorSamples],
    statusCodes,
    latenciesMs: Float64Array.from(latencies),
  };
}

export interface Target {
  readonly method: string;
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Path of a file holding the body. */
  readonly bodyFile?: string;
}

/** vegeta's http targets format; vegeta cycles through the list round-robin. */
export function targetsText(targets: readonly Target[]): string {
  return targets
    .map((t) =>
      [
        `${t.method} ${t.url}`,
        ...Object.entries(t.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
        ...(t.bodyFile ? [`@${t.bodyFile}`] : []),
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

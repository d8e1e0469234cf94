import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { integerOption, parseCommandLine, usageError } from '../../contract/command-line.ts';

// Where a service's CPU time goes, by function and by layer, from the V8 CPU profiles that `--profile-dir` (main.ts),
// `--cpu-prof` (tap-vs-fastify.ts, dispatcher-vs-undici.ts) or `node --cpu-prof` write: issue #9 asks for the tap's
// and the dispatcher's CPU per request by function. Self time only (what the function itself ran, not its callees),
// from the profile's samples; idle time, when the process waited in epoll, is left out of every share.
//
//   node tools/bench/cpu-profile.ts DIR_OR_FILE... [--top 25] [--requests N]
//
// With --requests, each line also gives microseconds per request: the profile's busy time over N requests.

/** V8's `.cpuprofile` JSON (Chrome DevTools protocol Profiler.Profile): the fields read here. */
interface CpuProfile {
  readonly nodes: readonly { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  readonly samples: readonly number[];
  /** Microseconds between a sample and the one before it. */
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  /** Sampled time, idle excluded, microseconds. */
  readonly busyUs: number;
  /** Self time by function (`name url:line`), microseconds, largest first. */
  readonly functions: readonly (readonly [string, number])[];
  /** Self time by layer (see `layerOf`), microseconds, largest first. */
  readonly layers: readonly (readonly [string, number])[];
}

const IDLE = new Set(['(idle)', '(root)']);

/**
 * The layer a frame belongs to: the project's own folders, each npm package by name, Node's own modules by their
 * internal module (node:internal/http2/core → `node:http2`), and V8's pseudo-frames (`(garbage collector)`,
 * `(program)`: native code outside JavaScript, such as the TLS and HTTP/2 parsers and the syscalls) as they are.
 */
export function layerOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg?.[1]) return pkg[1];
  const internal = /^node:(?:internal\/)?([a-z_0-9]+)/.exec(url);
  if (internal?.[1]) return `node:${internal[1]}`;
  const own = /\/(ingress-tap|dispatcher|contract|kubernetes|tools)\//.exec(url);
  return own?.[1] ? `${own[1]}/` : url;
}

export function summarise(profiles: readonly CpuProfile[]): ProfileSummary {
  const byFunction = new Map<string, number>();
  const byLayer = new Map<string, number>();
  let busyUs = 0;
  for (const profile of profiles) {
    const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    // A sample's time is the gap to the next one: what the process ran until it was sampled again.
    for (let i = 0; i + 1 < profile.samples.length; i++) {
      const frame = nodes.get(profile.samples[i] ?? -1);
      const us = profile.timeDeltas[i + 1] ?? 0;
      if (!frame || IDLE.has(frame.functionName)) continue;
      busyUs += us;
      const file = frame.url.replace(/^.*?\/(node_modules\/|ingress-tap\/|dispatcher\/|contract\/)/, '$1');
      const key = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + us);
      const layer = layerOf(frame.url, frame.functionName);
      byLayer.set(layer, (byLayer.get(layer) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { busyUs, functions: sorted(byFunction), layers: sorted(byLayer) };
}

function profileFiles(paths: readonly string[]): string[] {
  return paths.flatMap((p) => (p.endsWith('.cpuprofile') ? [p] : readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f))));
}

if (import.meta.main) {
  const { values, positionals } = parseCommandLine({
    name: 'node tools/bench/cpu-profile.ts',
    usage: `
usage: node tools/bench/cpu-profile.ts DIR_OR_FILE... [--top N] [--requests N]

Self CPU time by layer and by function, summed over the .cpuprofile files given (or found in the directories).
  --top N        functions listed (default 25)
  --requests N   also give microseconds per request over N requests
  -h, --help     this text`,
    options: { top: { type: 'string', default: '25' }, requests: { type: 'string' } },
    maxPositionals: 1000,
  });
  const NAME = 'node tools/bench/cpu-profile.ts';
  if (positionals.length === 0) usageError(NAME, 'no profiles: name a directory of .cpuprofile files, or the files');
  let files: string[] = [];
  try {
    files = profileFiles(positionals);
  } catch (error) {
    usageError(NAME, `cannot read ${positionals.join(', ')}: ${(error as Error).message}`);
  }
  if (files.length === 0) usageError(NAME, `no .cpuprofile files in ${positionals.join(', ')}`);
  const top = integerOption(NAME, 'top', values.top, 1);
  const requests = values.requests === undefined ? undefined : integerOption(NAME, 'requests', values.requests, 1);
  const s = summarise(files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile));
  // A reader that stops early (`| head`) closes the pipe: what it did not read is not wanted.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  const line = (name: string, us: number) => {
    const share = `${((100 * us) / s.busyUs).toFixed(1).padStart(5)}%`;
    const perRequest = requests === undefined ? '' : `${(us / requests).toFixed(1).padStart(8)} µs/req`;
    return `${share}${perRequest}  ${name}`;
  };
  process.stdout.write(`${files.length} profile(s), ${(s.busyUs / 1e6).toFixed(2)} s busy\n\nBy layer:\n`);
  for (const [name, us] of s.layers) if (us / s.busyUs >= 0.005) process.stdout.write(`${line(name, us)}\n`);
  process.stdout.write(`\nTop ${top} functions (self time):\n`);
  for (const [name, us] of s.functions.slice(0, top)) process.stdout.write(`${line(name, us)}\n`);
}

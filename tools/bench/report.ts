import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RouterTiming } from './access-log.ts';
import { cpuCosts, type CpuCost, type Spread } from './cpu-cost.ts';
import {
  added,
  evaluate,
  KNEE_SHARE_OF_S1,
  UPLOAD_GROWTH_ALLOWANCE_MIB,
  UPLOAD_GROWTH_BOUND,
  type Findings,
  type Goal,
  type Section,
} from './goals.ts';
import { judgeKnees, KNEE_FACTOR, knees, sweepRounds, type KneeComparison } from './knee.ts';
import type { PluginAccounting } from './plugin-accounting.ts';
import { BODY_MIX, type ScenarioResult } from './latency.ts';
import type { Machine, Versions } from './machine.ts';
import type { Plan } from './plan.ts';
import { LABELS } from './stats.ts';
import { percentilePlot, ratePlot } from './svg-plot.ts';
import type { TapView } from './tap-metrics.ts';

// docs/benchmarks.md, docs/benchmarks.json and the plots, all written from one run's figures.

export interface Run {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly plan: Plan;
  readonly machine: Machine;
  readonly versions: Versions;
  readonly load1AtStart: number;
  readonly load1AtEnd: number;
  readonly load1Max: number;
  readonly command: string;
  /** Seconds from the harness's start to the report. */
  readonly wallS: number;
  readonly budgetS: number;
  readonly findings: Findings;
  readonly routerTimings: readonly RouterTiming[];
  readonly tapViews: readonly TapView[];
  readonly unavailable: Readonly<Record<string, string>>;
}

const f3 = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3));
const f0 = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(0));
const f2 = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(2));

const STATUS_MARK: Record<Goal['status'], string> = { met: '✅ met', 'not met': '❌ not met', undecided: '❔ undecided', 'not run': '⚪ not run' };

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const PLOTS = {
  latency: { file: 'latency.svg', ids: ['S0', 'S1', 'S2', 'S2h2', 'S3', 'S4', 'S5', 'S6', 'S7', 'S10', 'X1', 'X2'], title: 'GET scenarios through Traefik' },
  bodies: { file: 'latency-bodies.svg', ids: ['S0b', 'S8'], title: 'Bodies up to 1 MiB (forwardBody)' },
  peer: { file: 'latency-nginx.svg', ids: ['S0', 'S1', 'S2', 'S7', 'S9'], title: 'Request Mirror vs nginx mirror (slow mirror)' },
} as const;

function writePlots(run: Run, plotDir: string): string[] {
  mkdirSync(plotDir, { recursive: true });
  const written: string[] = [];
  for (const plot of Object.values(PLOTS)) {
    const curves = run.findings.scenarios
      .filter((s) => (plot.ids as readonly string[]).includes(s.id) && s.curve)
      .map((s) => ({ name: `${s.id} (${f0(s.offeredRate)}/s)`, points: s.curve ?? [] }));
    if (!curves.length) continue;
    writeFileSync(join(plotDir, plot.file), percentilePlot(`Latency by percentile: ${plot.title}`, curves));
    written.push(plot.file);
  }
  const sweep = run.findings.sweep;
  if (sweep.length) {
    const series = run.plan.sweep.scenarios
      .map((id) => ({
        name: id,
        points: sweep.filter((c) => c.id === id && c.latency).map((c) => ({ x: c.offeredRate ?? 0, y: c.latency?.ms.p99 ?? Number.NaN })),
      }))
      .filter((x) => x.points.length);
    writeFileSync(join(plotDir, 'latency-sweep.svg'), ratePlot('p99 versus offered rate (pooled rounds)', series));
    written.push('latency-sweep.svg');
  }
  return written;
}

function scenarioTables(scenarios: readonly ScenarioResult[]): string {
  const ran = scenarios.filter((s) => s.status === 'run');
  const latency = table(
    ['Scenario', 'Offered req/s', 'Sent req/s', 'OK req/s', 'Requests', ...LABELS.map((l) => `${l} ms`), 'p99 ms per round', 'Client errors'],
    ran.map((s) => [
      `**${s.id}** ${s.title}`,
      f0(s.offeredRate),
      f0(s.sentRate),
      f0(s.throughput),
      f0(s.requests),
      ...LABELS.map((l) => f3(s.latency?.ms[l])),
      (s.perRound ?? []).map((r) => f3(r.p99)).join(', '),
      `${s.errors ?? 0}${s.errorSamples?.length ? ` (${s.errorSamples.join('; ').slice(0, 120)})` : ''}`,
    ]),
  );
  const s1 = ran.find((s) => s.id === 'S1');
  const addedRows = ran
    .filter((s) => s.baseline)
    .map((s) => [
      s.id,
      s.baseline ?? '',
      ...LABELS.map((l) => f3(added(s, scenarios, l))),
      ...(['p50', 'p99', 'p99.9'] as const).map((l) => {
        const a = added(s, scenarios, l);
        const b = s1 ? added(s1, scenarios, l) : null;
        return a !== null && b !== null && b > 0 ? `${f2(a / b)}×` : '–';
      }),
    ]);
  const addedTable = table(
    ['Scenario', 'Baseline', ...LABELS.map((l) => `+${l} ms`), '× S1 added p50', '× S1 added p99', '× S1 added p99.9'],
    addedRows,
  );
  const res = (s: ScenarioResult, who: string) => {
    const r = s.resources?.[who];
    return r ? `${f0(r.rssPeakMiB)} / ${f0(r.rssMeanMiB)}` : '–';
  };
  const cpu = (s: ScenarioResult, who: string) => {
    const r = s.resources?.[who];
    return r ? `${f0(r.cpuPeakPct)} / ${f0(r.cpuMeanPct)}` : '–';
  };
  const resources = table(
    [
      'Scenario',
      'Proxy RSS MiB peak / mean',
      'Proxy CPU % peak / mean',
      'Tap RSS',
      'Tap CPU %',
      'Dispatcher RSS',
      'Dispatcher CPU %',
      'Auth server RSS',
      'Auth server CPU %',
      'New conns/s to the called server',
    ],
    ran.map((s) => [
      s.id,
      res(s, 'proxy'),
      cpu(s, 'proxy'),
      res(s, 'tap'),
      cpu(s, 'tap'),
      res(s, 'dispatcher'),
      cpu(s, 'dispatcher'),
      res(s, 'authServer'),
      cpu(s, 'authServer'),
      f0(s.newConnectionsPerSecond),
    ]),
  );
  return [
    '### Latency (client side, vegeta)',
    latency,
    '',
    '### Added latency (minus the baseline, per percentile) and ratio to S1 (the forwardAuth floor)',
    addedTable,
    '',
    '### Resources during each scenario (sampled every 500 ms; CPU in % of one core)',
    'The proxy is Traefik, or nginx (master and workers) for S9. "Auth server" is the Go responder (S1) or bare fastify (X1, X2).',
    '',
    resources,
    '',
    '### CPU time per request (µs, /proc utime+stime over each round and its pause, over the round\'s requests)',
    'Each scenario at its own rate; "added" is Traefik\'s CPU per request minus S0\'s in the same round, plus the tap, NATS, the dispatcher and the server forwardAuth calls; the ratio divides it by S0\'s Traefik CPU per request.',
    '',
    cpuTable(cpuCosts(scenarios)),
  ].join('\n');
}

const spreadText = (x: Spread | undefined, digits = 0) =>
  x && Number.isFinite(x.mean) ? `${x.mean.toFixed(digits)} (${x.min.toFixed(digits)}–${x.max.toFixed(digits)})` : '–';

function cpuTable(costs: readonly CpuCost[]): string {
  return table(
    ['Scenario', 'Offered req/s', 'Traefik', 'tap', 'NATS', 'dispatcher', 'called server', 'receiver (not counted)', 'whole-system added', 'ratio to S0 Traefik'],
    costs.map((c) => [
      c.id,
      f0(c.rate),
      spreadText(c.perProcessUs.proxy),
      spreadText(c.perProcessUs.tap),
      spreadText(c.perProcessUs.nats),
      spreadText(c.perProcessUs.dispatcher),
      spreadText(c.perProcessUs.authServer),
      spreadText(c.perProcessUs.receiver),
      spreadText(c.addedUs),
      c.id === 'S0' ? '–' : `**${spreadText(c.ratio, 2)}**`,
    ]),
  );
}

function sweepSection(run: Run, plotted: boolean): string {
  const cells = run.findings.sweep;
  if (!cells.length) return '';
  const { rates, scenarios } = run.plan.sweep;
  const ids = scenarios.filter((id) => cells.some((c) => c.id === id));
  const cell = (id: string, rate: number) => cells.find((c) => c.id === id && c.offeredRate === rate);
  const p99Table = table(
    ['Scenario', ...rates.map((r) => `${r} req/s: p99 ms (rounds)`)],
    ids.map((id) => [
      id,
      ...rates.map((r) => {
        const c = cell(id, r);
        if (!c?.latency) return '–';
        const per = (c.perRound ?? []).map((x) => x.p99);
        const short = (c.sentRate ?? r) < 0.98 * r ? `, sent ${f0(c.sentRate)}/s` : '';
        const errors = c.errors ? `, ${c.errors} errors` : '';
        return `${f3(c.latency.ms.p99)} (${f2(Math.min(...per))}–${f2(Math.max(...per))}${short}${errors})`;
      }),
    ]),
  );
  const pooled = knees(cells);
  const rounds = sweepRounds(cells);
  const perRound = Array.from({ length: rounds }, (_, r) => knees(cells, r));
  const kneeTable = table(
    ['Scenario', ...rates.map((r) => `p99 / S0 p99 at ${r}`), `Knee (p99 first > ${KNEE_FACTOR} × S0's)`, 'Knee of each round alone'],
    pooled.map((k) => [
      k.id,
      ...rates.map((r) => f2(k.ratios.find((x) => x.rate === r)?.ratio)),
      `**${k.label}**`,
      perRound.map((ks) => ks.find((x) => x.id === k.id)?.label ?? '–').join('; '),
    ]),
  );
  const vsS1 = pooled
    .filter((k) => k.id !== 'S1')
    .map((k) => judgeKnees(cells, k.id, 'S1', KNEE_SHARE_OF_S1))
    .filter((c): c is KneeComparison => c !== null)
    .map((c) => `- ${c.text}`);
  return [
    '## Latency versus offered rate',
    '',
    `${ids.join(', ')} at ${rates.join(', ')} req/s (vegeta, open model). Every (scenario, rate) pair is a cell of its own in the rotation described above: ${run.plan.rounds} round(s) of ${run.plan.roundS} s per cell, the order shifted each round, interleaved with the single-rate scenarios; the rounds are pooled per cell.`,
    `The knee of a scenario is the offered rate at which its p99 first exceeds ${KNEE_FACTOR} × S0's p99 at the same rate (S0's cell at that rate, in the same rounds), from the p99 pooled over the rounds and from each round's p99 alone. Between the two grid rates around the crossing, the ratio is taken as linear in log(rate) and the knee is where it reaches ${KNEE_FACTOR}; "> R" means the ratio never exceeded ${KNEE_FACTOR} up to the highest rate R, "≤ R" that it already did at the lowest rate R. Comparisons between knees carry those bounds: a comparison the grid cannot settle says "undecided".`,
    '',
    ...(plotted ? ['![p99 versus offered rate](benchmarks/latency-sweep.svg)', ''] : []),
    p99Table,
    '',
    kneeTable,
    '',
    ...(vsS1.length
      ? [
          `Against S1 (forwardAuth to a minimal Go responder, the floor of any forwardAuth attachment), pooled and round by round; a goal is decided only when they all agree. X1 and X2 are bare fastify answering 200 and doing nothing else: their knees are the floor of a Node.js forwardAuth server on this machine, so the part of a tap scenario's gap to S1 that X1 (HTTP/1.1) or X2 (HTTP/2 with TLS) shares is Node's, not the tap's work:`,
          '',
          ...vsS1,
          '',
        ]
      : []),
    '### CPU time per request across the sweep (µs; mean over the rounds, range of the rounds in brackets)',
    '',
    `Per process, from /proc/PID/stat utime+stime read before each round and after its ${run.plan.pauseMs} ms settling pause (the tap, NATS and the dispatcher finish the round's events in it), divided by the round's requests of the scenario; Traefik's share of the S0 probes is taken out at S0's CPU per request in the same round; 10 ms tick resolution. Idle CPU over the round counts too, so low rates read high. "Whole-system added" = Traefik's µs per request minus S0's in the same round, plus the tap, NATS, the dispatcher and the server forwardAuth calls (S1: the Go responder); the webhook receiver is the user's and is shown apart. The ratio divides the added figure by S0's Traefik µs per request: the mean of the added µs over the mean of S0's, and the range of the per-round ratios.`,
    '',
    cpuTable(cpuCosts(cells)),
  ].join('\n');
}

function accountingSection(acc: Section<PluginAccounting>): string {
  const a = acc.value;
  if (!a) return `S10 accounting not measured: ${acc.reason ?? ''}`;
  const drops = Object.entries(a.dropped);
  return [
    '### S10: where every plugin snapshot went',
    '',
    "Requests on S10's router (Traefik's access log, warm-up included) against snapshots the tap's plugin listener received and the drops the plugin reported by reason (its counters ride with its batches; after the rounds the harness waits for the tap's count to hold still, then sends one more request through S10, whose batch carries the final counters, and is counted like the others).",
    '',
    table(
      ['Requests on S10', 'Snapshots received by the tap', ...drops.map(([r]) => `dropped: ${r}`), 'Unaccounted'],
      [[String(a.requests), String(a.received), ...drops.map(([, n]) => String(n)), `**${a.unaccounted}**`]],
    ),
  ].join('\n');
}

function goalTable(goals: readonly Goal[]): string {
  return table(['Goal', 'Measured', 'Status'], goals.map((g) => [g.goal, g.measured, STATUS_MARK[g.status]]));
}

export function writeReport(run: Run, outDir: string): { markdown: string; json: string; goals: Goal[] } {
  mkdirSync(outDir, { recursive: true });
  const goals = evaluate(run.findings, run.plan.rate);
  const plots = writePlots(run, join(outDir, 'benchmarks'));
  const f = run.findings;
  const notRun = f.scenarios.filter((s) => s.status === 'not run');
  const md: string[] = [
    '# Benchmarks',
    '',
    `<!-- Written by \`${run.command}\` (tools/bench/main.ts) from the run of ${run.finishedAt}. Do not edit by hand. -->`,
    '',
    `Issues #4 and #9: prove Request Mirror never delays traffic, with goals judged from figures measured side by side in one run. ${run.plan.smoke ? '**Smoke run: tiny rates and durations; these figures prove only that the harness works.**' : ''}`,
    '',
    '## Goals',
    '',
    goalTable(goals),
    '',
    '## Machine and versions',
    '',
    table(
      ['', ''],
      [
        ['CPU', `${run.machine.nproc} × ${run.machine.cpuModel}`],
        ['Memory', `${run.machine.memoryGiB} GiB`],
        ['Kernel', run.machine.kernel],
        ['Load average (1 min)', `${run.load1AtStart} at start, ${run.load1AtEnd} at end, ${run.load1Max} highest seen between scenarios`],
        ['Node.js', run.versions.node],
        ['Traefik', run.versions.traefik],
        ['nats-server', run.versions.natsServer],
        ['nginx', run.versions.nginx],
        ['vegeta', run.versions.vegeta],
        [
          'Code measured',
          `commit ${run.versions.commit}${run.versions.uncommitted.length ? ` plus uncommitted changes to ${run.versions.uncommitted.join(', ')}` : ', services clean'}`,
        ],
        ['Run', `${run.startedAt} → ${run.finishedAt}`],
        ['Wall time', `${f0(run.wallS)} s (budget of a full \`make bench\`: ${f0(run.budgetS)} s)`],
      ],
    ),
    '',
    '## Method',
    '',
    `- \`${run.command}\` starts everything on loopback: one Traefik (file provider, one router per scenario on \`PathPrefix(/<id>/)\`, JSON access log buffered, only RouterName/Duration/OriginDuration/Overhead/DownstreamStatus kept), the pinned nats-server, one ingress-tap + dispatcher pair per webhook condition (own subject prefix and queue group) plus a healthy one for S2h2 whose forwardAuth listener serves HTTP/2 over TLS (self-signed certificate, Traefik's forwardAuth \`https\` with \`tls.ca\`, as for X2), the Go responder (tools/go/responder) as upstream and as the S1 floor, bare fastify (HTTP/1.1, and HTTP/2 over TLS), webhook receivers in their own process, and Debian's nginx for S9.`,
    `- Load: vegeta, open model (requests leave at the offered rate whatever the latency, so queueing is not hidden). The sweep's scenarios (${run.plan.sweep.scenarios.join(', ')}) at ${run.plan.sweep.rates.join(', ')} req/s, each (scenario, rate) a cell of its own; the tables below show them at ${run.plan.rate} req/s, the sweep section at every rate. The other GET scenarios at ${run.plan.rate} req/s; the body scenarios S0b and S8 at ${run.plan.bodyRate} req/s because their bodies (${BODY_MIX.map((b) => (b >= 1024 * 1024 ? `${b / 1024 / 1024} MiB` : `${b / 1024} KiB`)).join(', ')}, cycled) cost far more per request. ${run.plan.rounds} round(s) of ${run.plan.roundS} s per cell (the scenarios outside the sweep in the first ${run.plan.singleRateRounds} only), the order rotating each round, after ${run.plan.warmupS} s of warm-up per scenario; results pooled per cell. Percentiles are nearest-rank over every request (\`vegeta encode -to json\`), not vegeta's histogram.`,
    '- Added latency = scenario percentile minus the same percentile of its baseline (S0; S0b for S8). "× S1" divides that by S1\'s added latency at the same percentile.',
    '- RSS from /proc/PID/status VmRSS, CPU from /proc/PID/stat utime+stime, sampled every 500 ms during each round; peak is the highest sample, mean the time average.',
    '- New connections per second to the server Traefik calls (tap, Go responder, bare fastify): distinct ephemeral ports seen at either end of a socket to that port in /proc/net/tcp, sampled every second (TIME_WAIT keeps closed sockets visible for 60 s); a lower bound.',
    '',
    'Example commands (first round of each scenario):',
    '',
    '```sh',
    ...f.scenarios.filter((s) => s.commands?.[0]).map((s) => s.commands?.[0] ?? ''),
    '```',
    '',
    '## Latency',
    '',
    ...plots.filter((p) => p.startsWith('latency') && p !== 'latency-sweep.svg').map((p) => `![${p}](benchmarks/${p})`),
    '',
    scenarioTables(f.scenarios),
    '',
    ...(notRun.length ? ['Not run:', '', ...notRun.map((s) => `- **${s.id}** ${s.title}: ${(s.reason ?? '').split('\n')[0] ?? ''}`), ''] : []),
    '### Traefik\'s own split (access log, per router; warm-up included)',
    '',
    'Overhead = Duration − OriginDuration: time spent in Traefik and its middlewares (the forwardAuth call included).',
    '',
    table(
      ['Router', 'Requests', 'Duration p50 / p99 ms', 'OriginDuration p50 / p99 ms', 'Overhead p50 / p99 ms'],
      run.routerTimings.map((t) => [
        t.router,
        String(t.requests),
        `${f3(t.durationMs.p50)} / ${f3(t.durationMs.p99)}`,
        `${f3(t.originMs.p50)} / ${f3(t.originMs.p99)}`,
        `${f3(t.overheadMs.p50)} / ${f3(t.overheadMs.p99)}`,
      ]),
    ),
    '',
    tapViewSection(run.tapViews),
    '',
    accountingSection(f.pluginAccounting),
    '',
    sweepSection(run, plots.includes('latency-sweep.svg')),
    '',
    '## Throughput',
    '',
  ];
  const tt = f.tapThroughput.value;
  const spreadText = (x: { min: number; median: number; max: number }, digits: number) =>
    `${x.median.toFixed(digits)} (${x.min.toFixed(digits)}–${x.max.toFixed(digits)})`;
  md.push(
    tt
      ? [
          `Closed loop, vegeta \`-rate=0 -workers=${tt.workers} -max-workers=${tt.workers}\`, ${tt.durationS} s per side per round after ${tt.warmupS} s of untimed load on each, ${tt.tapRps.length} rounds in ABBA order, each after the machine settled${tt.busyPctBeforeRound.length > 0 ? ` (busy share of both cores in the second before: ${tt.busyPctBeforeRound.map(f0).join(', ')} %)` : ''}, GET with the headers Traefik's forwardAuth sends, straight to the listener (no Traefik). The tap runs without a dispatcher; NATS drops its events. CPU per request: the server process's user + system time (/proc) over the round, divided by its requests.`,
          '',
          table(
            ['Server', 'OK req/s per round', 'Mean', 'CPU µs per request, per round'],
            [
              ['ingress-tap forwardAuth listener', tt.tapRps.map(f0).join(', '), f0(mean(tt.tapRps)), tt.tapCpuUsPerRequest.map((x) => x.toFixed(1)).join(', ')],
              ['bare fastify 200 responder', tt.fastifyRps.map(f0).join(', '), f0(mean(tt.fastifyRps)), tt.fastifyCpuUsPerRequest.map((x) => x.toFixed(1)).join(', ')],
            ],
          ),
          '',
          `Tap / bare fastify, median (min–max) of the per-round ratios: **${spreadText(tt.ratioSpread, 2)}×**; tap errors: ${tt.tapErrors}.`,
        ].join('\n')
      : `Tap throughput not measured: ${f.tapThroughput.reason ?? ''}`,
    '',
  );
  const dt = f.dispatcherThroughput.value;
  md.push(
    dt
      ? [
          `${dt.events} events (~${dt.payloadBytes} bytes of JSON each) published at once to NATS; the time until a fast receiver (its own process) has all of them. Reference: an undici Pool loop (its own process) POSTing the same payloads to the same receiver. Both with ${dt.concurrency} requests in flight; the dispatcher's queue is sized to hold the whole burst; ${dt.warmupEvents} untimed events through each first; rounds in ABBA order, each after the machine settled.`,
          '',
          table(
            ['Sender', 'Events/s per round', 'Mean', 'CPU µs per event, per round'],
            [
              ['dispatcher (NATS → webhook)', dt.dispatcherEps.map((x) => (x === null ? 'timed out' : f0(x))).join(', '), f0(mean(dt.dispatcherEps.map((x) => x ?? 0))), dt.dispatcherCpuUsPerEvent.map((x) => x.toFixed(1)).join(', ')],
              ['raw undici loop', dt.undiciEps.map(f0).join(', '), f0(mean(dt.undiciEps)), dt.undiciCpuUsPerEvent.map((x) => x.toFixed(1)).join(', ')],
            ],
          ),
          '',
          `Dispatcher / raw undici, median (min–max) of the per-round ratios: **${spreadText(dt.ratioSpread, 2)}×**.`,
        ].join('\n')
      : `Dispatcher throughput not measured: ${f.dispatcherThroughput.reason ?? ''}`,
    '',
    '## Isolation',
    '',
  );
  const iso = f.isolation.value;
  md.push(
    iso
      ? [
          `One dispatcher, four targets; ${iso.events} events published at once; events/s at which each of targets 1-3 received all of them (mean of the three), with target 4 healthy vs blackholed.`,
          '',
          table(
            ['Case', 'Events/s per healthy target, per round', 'Mean'],
            [
              ['all four healthy', iso.allHealthyEps.map(f0).join(', '), f0(mean(iso.allHealthyEps))],
              ['target 4 blackholed', iso.oneBlackholedEps.map((x) => (x === null ? 'timed out' : f0(x))).join(', '), f0(mean(iso.oneBlackholedEps.map((x) => x ?? 0)))],
            ],
          ),
          '',
          `Ratio: **${f2(iso.ratio)}**.`,
        ].join('\n')
      : `Isolation not measured: ${f.isolation.reason ?? ''}`,
    '',
    '## Memory',
    '',
  );
  const up = f.uploads.value;
  md.push(
    up
      ? [
          `${up[0]?.concurrency ?? 0} concurrent 1 MiB uploads (vegeta closed loop, ${up[0]?.durationS ?? 0} s) through each attachment; RSS sampled every 200 ms. Bound used for the goal: tap growth ≤ ${UPLOAD_GROWTH_ALLOWANCE_MIB} MiB + ${UPLOAD_GROWTH_BOUND} MiB per concurrent upload (capture + encoded copy + serialised event).`,
          '',
          table(
            ['Attachment', 'Requests', 'Errors', 'Traefik RSS before → peak MiB', 'Tap RSS before → peak MiB'],
            up.map((u) => [
              u.attachment,
              String(u.requests),
              `${u.errors}${u.errorSamples.length ? ` (${u.errorSamples.join('; ').slice(0, 100)})` : ''}`,
              `${f0(u.traefikBeforeMiB)} → ${f0(u.traefikPeakMiB)}`,
              `${f0(u.tapBeforeMiB)} → ${f0(u.tapPeakMiB)}`,
            ]),
          ),
        ].join('\n')
      : `Upload memory not measured: ${f.uploads.reason ?? ''}`,
    '',
  );
  // The long memory soaks (dispatcher with blackholed targets, tap with NATS down, 1 MiB bodies) need ten minutes each
  // to judge a plateau: they are `make soak`'s, reported in docs/soak.md.
  md.push('Memory soaks (a dispatcher whose targets are all blackholed, a tap with NATS down, 1 MiB bodies through the whole pipeline, ten minutes each) are not part of this run: see `make soak` and [soak.md](soak.md).', '');
  const unavailable = Object.entries(run.unavailable);
  if (unavailable.length) {
    md.push('## Parts that could not start', '', ...unavailable.map(([k, v]) => `- ${k}: ${v.split('\n')[0] ?? ''}`), '');
  }
  const markdown = `${md.join('\n')}\n`;
  const strip = (s: ScenarioResult) => {
    const { curve, ...rest } = s;
    return { ...rest, curve: curve?.filter((_, i) => i % 5 === 0) };
  };
  const json = `${JSON.stringify({ ...run, findings: { ...f, scenarios: f.scenarios.map(strip) }, goals }, null, 2)}\n`;
  writeFileSync(join(outDir, 'benchmarks.md'), markdown);
  writeFileSync(join(outDir, 'benchmarks.json'), json);
  return { markdown, json, goals };
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

function tapViewSection(views: readonly TapView[]): string {
  if (!views.length) return '';
  const bounds = ['5e-05', '0.0001', '0.00025', '0.001', '0.005'];
  const label = (le: string) => `≤ ${Number(le) * 1e6 >= 1000 ? `${Number(le) * 1000} ms` : `${Number(le) * 1e6} µs`}`;
  const rows: string[][] = [];
  for (const v of views) {
    for (const [attachment, buckets] of Object.entries(v.handling)) {
      rows.push([
        `${v.pipeline} (${attachment})`,
        ...bounds.map((b) => {
          const hit = buckets.find((x) => Number(x.le) === Number(b));
          return hit ? `${(hit.fraction * 100).toFixed(2)} %` : '–';
        }),
        `${f3(v.eventLoopLagMs.p50)} / ${f3(v.eventLoopLagMs.p99)} / ${f3(v.eventLoopLagMs.max)}`,
      ]);
    }
  }
  const counters = views.map((v) => {
    const c = Object.entries(v.counters)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k.replace(/^request_mirror_tap_/, '')} ${n}`);
    return `- ${v.pipeline}: ${c.join(', ') || 'no requests'}`;
  });
  return [
    "### The tap's own view (its /metrics after the latency rounds)",
    '',
    'Share of requests the tap answered within each bound, from seeing the request to writing the 200 (request_mirror_tap_handling_seconds), and its event-loop lag (prom-client, since its last scrape).',
    '',
    table(['Pipeline', ...bounds.map(label), 'Event-loop lag p50 / p99 / max ms'], rows),
    '',
    ...counters,
  ].join('\n');
}

import { cpus, loadavg } from 'node:os';
import type { FuzzReport } from './run.ts';

// The figures `make fuzz` prints: plain text for a terminal and for pasting into the README's release section.

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

export function formatReport(r: FuzzReport): string {
  const kv = (o: Record<string, number | string>) => Object.entries(o).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const q = r.requests;
  const lines = [
    `fuzz run: seed ${r.seed}, ${r.seconds.toFixed(0)} s, ${new Date().toISOString()}, ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `requests sent            ${q.sent} (${kv(q.byRoute)})`,
    `  refused by the client  ${q.refusedByClient} (not sent: a method or header the HTTP client library will not write)`,
    `  tap non-2xx (straight) ${q.tapNon2xx}`,
    `  200 without an event   ${q.answeredWithoutEvent} (straight to the tap; Node's HTTP/1.1 parser refused the request: counted as rejected input)`,
    `  raw exchanges          ${q.rawExchanges}, answered other than 200: ${q.rawNon200}`,
    `  Traefik's answers      ${kv(q.traefikStatuses)}`,
    `  from the tap via Traefik, non-2xx or 5xx: ${q.traefikNon2xxFromTap}`,
    `  upstream got ${q.upstreamLetThrough} from the forwardAuth router; its parser refused ${q.upstreamRefused} more (Traefik answers those 400/502)`,
    `crashes                  ${kv(r.crashes)}`,
    ...Object.entries(r.rss).map(
      ([name, s]) =>
        `RSS ${name.padEnd(20)} after the warm-up: first third ${s.firstThirdMiB.toFixed(1)} MiB, last third ${s.lastThirdMiB.toFixed(1)} MiB (${pct(s.growth)}), peak ${s.peakMiB.toFixed(1)} MiB${s.judged ? (s.flat ? ', flat' : ', GROWING') : ', not judged (run too short)'}\n` +
        `  over the run (MiB)     RSS ${s.rssDecilesMiB.map((v) => v.toFixed(0)).join(' ')}; V8 heap used ${s.heapDecilesMiB.map((v) => v.toFixed(0)).join(' ')} (${pct(s.heapGrowth)})`,
    ),
    `tap received             ${kv(r.tap.received)}`,
    `  published ${r.tap.published}, dropped ${kv(r.tap.dropped)}, skipped ${r.tap.skipped}, unaccounted ${r.tap.unaccounted}`,
    `  forwardAuth calls not let through ${r.tap.forwardAuthNotLetThrough}`,
    `  connections accepted   ${kv(r.tap.connections)}`,
    `  rejected input (answered 200 anyway) ${kv(r.tap.rejectedInput)}`,
    `dispatcher               ${r.dispatcher.messages} messages on NATS (tap + generated): received ${r.dispatcher.received}, invalid ${r.dispatcher.invalid} (contract says ${r.dispatcher.invalidExpected}), unaccounted ${r.dispatcher.unaccountedMessages}`,
    `  delivered ${r.dispatcher.delivered}, dropped ${kv(r.dispatcher.dropped)}, pending ${r.dispatcher.pending}, unaccounted ${r.dispatcher.unaccountedEvents}; webhook got ${r.dispatcher.webhookReceived}`,
    r.failures.length === 0 ? 'PASS: every check held' : `FAIL: ${r.failures.length} failure(s)${r.failures.length >= 20 ? ' (first 20)' : ''}:`,
    ...r.failures.map((f) => `  - ${f.what}${f.index === undefined ? '' : ` [seed ${r.seed}, case ${f.index}]`}${f.input ? `\n    input: ${f.input.slice(0, 2000)}` : ''}`),
  ];
  return `${lines.join('\n')}\n`;
}

import { PLUGIN_DROP_REASONS } from '../../contract/plugin-batch.ts';
import type { RouterTiming } from './access-log.ts';
import { waitUntil } from '../stack/process.ts';
import { sleep } from './processes.ts';
import type { TapView } from './tap-metrics.ts';
import type { World } from './world.ts';

// S10's accounting: every request Traefik routed through the plugin (its access log, warm-up included) must end as a
// snapshot the tap received or a drop the plugin counted with its reason. The plugin reports its counters inside its
// batches, as they stood when the batch was encoded, so drops counted after its last batch (a failed POST, a full
// queue at the end of a round) reach the tap only with a later batch. settlePluginCounters waits for the plugin's
// queue to drain, then sends one more request through S10's router: its batch carries the final counters.

const RECEIVED = 'request_mirror_tap_requests_received_total{attachment="plugin"}';

async function received(world: World): Promise<number | null> {
  const p = world.pipelines.get('healthy');
  if (!p) return null;
  const text = await (await fetch(`${p.tapAdminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(RECEIVED));
  return line ? Number(line.slice(RECEIVED.length).trim()) : 0;
}

/** Waits until the tap's count of plugin snapshots holds still for 2 s, then sends the request that flushes the counters. */
export async function settlePluginCounters(world: World, log: (line: string) => void): Promise<void> {
  let last = await received(world);
  if (last === null) return;
  const deadline = Date.now() + 60_000;
  for (;;) {
    await sleep(2000);
    const now = await received(world);
    if (now === last || Date.now() > deadline) break;
    last = now;
  }
  log(`S10: the tap holds ${last} plugin snapshots; one more request carries the plugin's final counters`);
  const res = await fetch(`${world.traefik.url}/s10/counters-flush`, { signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  const before = last ?? 0;
  await waitUntil('the flush request\'s snapshot at the tap', async () => ((await received(world)) ?? 0) > before, { timeoutMs: 15_000 });
}

export interface PluginAccounting {
  /** Requests Traefik's access log shows on S10's router. */
  readonly requests: number;
  /** Snapshots the tap's plugin listener received. */
  readonly received: number;
  /** Drops the plugin reported, by reason. */
  readonly dropped: Readonly<Record<string, number>>;
  /** requests − received − every drop: 0 when every request is accounted for. */
  readonly unaccounted: number;
}

export function pluginAccounting(timings: readonly RouterTiming[], views: readonly TapView[]): PluginAccounting | null {
  const router = timings.find((t) => t.router === 's10');
  const view = views.find((v) => v.pipeline === 'healthy');
  if (!router || !view) return null;
  const got = view.counters[RECEIVED] ?? 0;
  const dropped = Object.fromEntries(
    PLUGIN_DROP_REASONS.map((reason) => [reason, view.counters[`request_mirror_plugin_snapshots_dropped_total{reason="${reason}"}`] ?? 0]),
  );
  const drops = Object.values(dropped).reduce((a, b) => a + b, 0);
  return { requests: router.requests, received: got, dropped, unaccounted: router.requests - got - drops };
}

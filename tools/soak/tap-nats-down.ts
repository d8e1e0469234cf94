import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPipeline } from '../bench/pipeline.ts';
import { attack, targetsText } from '../bench/vegeta.ts';
import { byLabel, sum } from '../fuzz/metrics.ts';
import { startNatsServer } from '../stack/nats-server.ts';
import { fmt, pipelineConfig, tapHeldBytes } from './config-limits.ts';
import { settled } from './settle.ts';
import { mib, NODE_RUNTIME_ALLOWANCE_MIB, type SoakContext, type SoakSetup } from './soak.ts';

// Soak (b): a tap whose NATS server has gone (started, connected, then stopped), under a high request rate straight
// to its forwardAuth listener, half of them POSTs with a body as Traefik's forwardBody sends them. Every event is
// dropped (nats_disconnected) while the client keeps trying to reconnect: nothing may pile up meanwhile.

const T = 'request_mirror_tap_';
const BODY_BYTES = 16 * 1024;
const MAX_IN_FLIGHT = 64;

const HEADERS = {
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-Host': 'shop.example.com',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Uri': '/api/orders?page=1',
  'X-Forwarded-For': '203.0.113.7',
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  Accept: 'application/json',
  Cookie: 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark',
};

export async function startTapNatsDown(ctx: SoakContext, rate: number): Promise<SoakSetup> {
  const nats = await startNatsServer();
  let stopped = false;
  try {
    const pipeline = await startPipeline({
      name: 'nats-down',
      natsUrl: nats.url,
      // Never dialled: the tap only needs a target that wants every request, so that each one becomes an event.
      targets: [{ name: 'hook', watchURL: 'http://127.0.0.1:9/hook', methods: ['*'] }],
      dir: ctx.dir,
      dispatcher: false,
    });
    const tap = pipeline.tap;
    if (!tap) throw new Error('the nats-down pipeline has no tap');
    await nats.stop();
    stopped = true;
    const config = pipelineConfig(ctx.dir, pipeline);
    const held = tapHeldBytes(config, MAX_IN_FLIGHT, BODY_BYTES);
    const bodyFile = join(ctx.dir, 'body-16KiB.json');
    writeFileSync(bodyFile, JSON.stringify({ note: 'x'.repeat(BODY_BYTES - 12) }));
    const targetsFile = join(ctx.dir, 'targets-nats-down.txt');
    const url = `http://127.0.0.1:${pipeline.forwardAuthPort}/`;
    writeFileSync(
      targetsFile,
      targetsText([
        { method: 'GET', url, headers: { ...HEADERS, 'X-Forwarded-Method': 'GET' } },
        { method: 'POST', url, headers: { ...HEADERS, 'X-Forwarded-Method': 'POST', 'Content-Type': 'application/json' }, bodyFile },
      ]),
    );
    return {
      id: 'tap-nats-down',
      title: 'Tap, NATS down',
      setup:
        `One tap (no dispatcher) that connected to its nats-server, which was then stopped for the whole soak; the client ` +
        `keeps reconnecting (every ${config.nats.reconnectTimeWaitMs} ms). vegeta sends alternately a GET and a POST with a ${fmt(BODY_BYTES)} JSON body ` +
        `straight to the forwardAuth listener with Traefik's X-Forwarded-* headers, at most ${MAX_IN_FLIGHT} in flight.`,
      watched: [
        {
          name: 'tap (NATS down)',
          pid: tap.pid,
          adminUrl: pipeline.tapAdminUrl,
          bound: { heldMiB: mib(held.bytes), derivation: held.derivation, allowanceMiB: NODE_RUNTIME_ALLOWANCE_MIB },
        },
      ],
      async drive(durationS) {
        const res = await attack({ name: 'nats-down', targetsFile, rate, durationS, maxWorkers: MAX_IN_FLIGHT, outDir: ctx.dir, timeoutS: 10, discardResults: true });
        return {
          offered: `${rate} requests/s to the forwardAuth listener`,
          sent: res.requests,
          achievedPerS: res.sentRate,
          unit: 'requests/s',
          statusCodes: res.statusCodes,
          command: res.command,
        };
      },
      async account(load) {
        const m = await settled(pipeline.tapAdminUrl, (s) => sum(s, `${T}requests_received_total`) >= load.sent);
        const received = sum(m, `${T}requests_received_total`);
        const published = sum(m, `${T}events_published_total`);
        const skipped = sum(m, `${T}requests_skipped_total`);
        const dropped = byLabel(m, `${T}events_dropped_total`, 'reason');
        const droppedSum = Object.values(dropped).reduce((a, b) => a + b, 0);
        const answered2xx = Object.entries(load.statusCodes ?? {}).reduce((a, [code, n]) => a + (code.startsWith('2') ? n : 0), 0);
        return {
          lines: [
            { label: 'requests sent by vegeta', value: load.sent },
            { label: 'answered 2xx', value: answered2xx },
            { label: 'tap: requests received', value: received },
            { label: 'tap: events published', value: published },
            { label: 'tap: requests skipped (no target wants them)', value: skipped },
            ...Object.entries(dropped).map(([reason, value]) => ({ label: `tap: events dropped, ${reason}`, value })),
          ],
          checks: [
            { identity: 'every request answered 2xx', holds: answered2xx === load.sent },
            { identity: 'tap received = requests sent', holds: received === load.sent },
            { identity: 'received = published + dropped + skipped', holds: received === published + droppedSum + skipped },
          ],
        };
      },
      async stop() {
        await pipeline.stop();
      },
    };
  } finally {
    if (!stopped) await nats.stop();
  }
}

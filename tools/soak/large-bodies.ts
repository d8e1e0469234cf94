import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPipeline } from '../bench/pipeline.ts';
import { nodeScript, requireBin, startPeer, type Peer } from '../bench/processes.ts';
import { readCounts } from '../bench/receiver-count.ts';
import { startBenchTraefik } from '../bench/traefik.ts';
import { attack, targetsText } from '../bench/vegeta.ts';
import { byLabel, readMetrics, sum, type Sample } from '../fuzz/metrics.ts';
import { dispatcherHeldBytes, fmt, pipelineConfig, tapHeldBytes } from './config-limits.ts';
import { settled } from './settle.ts';
import { GO_RUNTIME_ALLOWANCE_MIB, MiB, mib, NODE_RUNTIME_ALLOWANCE_MIB, type SoakContext, type SoakSetup } from './soak.ts';

// Soak (c): 1 MiB uploads through Traefik's forwardAuth with forwardBody into the tap, on through NATS to a
// dispatcher and a webhook that answers at once. The whole pipeline carries every body in full: Traefik buffers it,
// the tap captures it (binary, so base64 in the event), NATS carries it, the dispatcher parses and delivers it.

const T = 'request_mirror_tap_';
const D = 'request_mirror_dispatcher_';
const BODY_BYTES = MiB;
const MAX_IN_FLIGHT = 32;

export async function startLargeBodies(ctx: SoakContext, rate: number): Promise<SoakSetup> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const upstream = await startPeer('upstream', requireBin('RESPONDER_BIN', 'run through `make soak`'), ['-listen', '127.0.0.1:0'], ctx.dir);
    stops.push(() => upstream.process.stop());
    const recv = nodeScript('peers/receiver.ts');
    const webhook: Peer = await startPeer('webhook', recv.command, recv.args, ctx.dir);
    stops.push(() => webhook.process.stop());
    const pipeline = await startPipeline({
      name: 'bodies',
      natsUrl: ctx.natsUrl,
      targets: [{ name: 'hook', watchURL: `${webhook.url}/hook`, methods: ['*'] }],
      dir: ctx.dir,
    });
    stops.push(() => pipeline.stop());
    const { tap, dispatcher } = pipeline;
    if (!tap || !dispatcher) throw new Error('the bodies pipeline lacks a tap or a dispatcher');
    const maxBodySize = BODY_BYTES;
    const traefik = await startBenchTraefik(
      {
        http: {
          routers: { bodies: { rule: 'PathPrefix(`/bodies/`)', entryPoints: ['web'], service: 'upstream', middlewares: ['tap-body'] } },
          middlewares: {
            'tap-body': {
              forwardAuth: {
                address: `http://127.0.0.1:${pipeline.forwardAuthPort}/`,
                trustForwardHeader: true,
                authResponseHeaders: ['X-Request-Mirror-Id'],
                forwardBody: true,
                maxBodySize,
              },
            },
          },
          services: { upstream: { loadBalancer: { servers: [{ url: upstream.url }] } } },
        },
      },
      ['bodies'],
      ctx.dir,
    );
    stops.push(() => traefik.stop());

    const config = pipelineConfig(ctx.dir, pipeline);
    // Binary, so the tap carries it base64-encoded: the event is about 4/3 of the body.
    const eventBytes = Math.ceil((BODY_BYTES * 4) / 3) + 4096;
    const tapHeld = tapHeldBytes(config, MAX_IN_FLIGHT, BODY_BYTES);
    const dispatcherHeld = dispatcherHeldBytes(config, { minBytes: eventBytes, maxBytes: eventBytes });
    const bodyFile = join(ctx.dir, 'body-1MiB.bin');
    writeFileSync(bodyFile, randomBytes(BODY_BYTES));
    const targetsFile = join(ctx.dir, 'targets-bodies.txt');
    writeFileSync(
      targetsFile,
      targetsText([{ method: 'POST', url: `${traefik.url}/bodies/upload`, headers: { 'Content-Type': 'application/octet-stream' }, bodyFile }]),
    );
    return {
      id: 'large-bodies',
      title: '1 MiB bodies, Traefik → tap → NATS → dispatcher → webhook',
      setup:
        `Traefik \`forwardAuth\` with forwardBody (maxBodySize ${fmt(maxBodySize)}) to the tap; the tap publishes to NATS; one dispatcher ` +
        `delivers to a webhook that answers 204 once it has read the body. vegeta POSTs a ${fmt(BODY_BYTES)} random (binary) body through ` +
        `Traefik, at most ${MAX_IN_FLIGHT} in flight; each event is about ${fmt(eventBytes)} (the body in base64).`,
      watched: [
        {
          name: 'Traefik',
          pid: traefik.process.pid,
          bound: {
            heldMiB: mib(MAX_IN_FLIGHT * 2 * (maxBodySize + 1)),
            derivation: `${MAX_IN_FLIGHT} requests in flight × 2 × (maxBodySize + 1) (forwardAuth reads the body into a buffer of maxBodySize + 1; ×2 for Go's GC letting the heap reach twice the live data)`,
            allowanceMiB: GO_RUNTIME_ALLOWANCE_MIB,
          },
        },
        {
          name: 'tap (1 MiB bodies)',
          pid: tap.pid,
          adminUrl: pipeline.tapAdminUrl,
          bound: { heldMiB: mib(tapHeld.bytes), derivation: tapHeld.derivation, allowanceMiB: NODE_RUNTIME_ALLOWANCE_MIB },
        },
        {
          name: 'dispatcher (1 MiB bodies)',
          pid: dispatcher.pid,
          adminUrl: pipeline.dispatcherAdminUrl,
          bound: { heldMiB: mib(dispatcherHeld.bytes), derivation: dispatcherHeld.derivation, allowanceMiB: NODE_RUNTIME_ALLOWANCE_MIB },
        },
      ],
      async drive(durationS) {
        const res = await attack({ name: 'bodies', targetsFile, rate, durationS, maxWorkers: MAX_IN_FLIGHT, outDir: ctx.dir, timeoutS: 30, discardResults: true });
        return {
          offered: `${rate} uploads/s of ${fmt(BODY_BYTES)} through Traefik`,
          sent: res.requests,
          achievedPerS: res.sentRate,
          unit: 'uploads/s',
          statusCodes: res.statusCodes,
          command: res.command,
        };
      },
      async account(load) {
        const tapM = await settled(pipeline.tapAdminUrl, (s) => sum(s, `${T}requests_received_total`) >= load.sent);
        const published = sum(tapM, `${T}events_published_total`);
        const finished = (s: readonly Sample[]) =>
          sum(s, `${D}events_received_total`) >= published && sum(s, `${D}events_pending`) === 0;
        const dM = await settled(pipeline.dispatcherAdminUrl, finished, 30_000);
        const received = sum(tapM, `${T}requests_received_total`);
        const skipped = sum(tapM, `${T}requests_skipped_total`);
        const dropped = byLabel(tapM, `${T}events_dropped_total`, 'reason');
        const truncated = byLabel(tapM, `${T}bodies_truncated_total`, 'reason');
        const dReceived = sum(dM, `${D}events_received_total`);
        const delivered = sum(dM, `${D}events_delivered_total`);
        const pending = sum(dM, `${D}events_pending`);
        const dDropped = byLabel(dM, `${D}events_dropped_total`, 'reason');
        const disconnects = byLabel(dM, `${D}nats_disconnects_total`, 'cause');
        const webhookGot = (await readCounts(webhook.url)).count;
        const answered2xx = Object.entries(load.statusCodes ?? {}).reduce((a, [code, n]) => a + (code.startsWith('2') ? n : 0), 0);
        const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
        // Re-read: the webhook may have counted a delivery the dispatcher's last snapshot had not.
        const dFinal = await readMetrics(pipeline.dispatcherAdminUrl);
        return {
          lines: [
            { label: 'uploads sent by vegeta', value: load.sent },
            { label: 'answered 2xx', value: answered2xx },
            { label: 'tap: requests received', value: received },
            { label: 'tap: events published', value: published },
            { label: 'tap: requests skipped', value: skipped },
            ...Object.entries(dropped).map(([reason, value]) => ({ label: `tap: events dropped, ${reason}`, value })),
            ...Object.entries(truncated).map(([reason, value]) => ({ label: `tap: bodies truncated, ${reason}`, value })),
            ...Object.entries(disconnects).map(([cause, value]) => ({ label: `dispatcher: NATS connection lost, ${cause}`, value })),
            { label: 'dispatcher: received', value: dReceived },
            { label: 'dispatcher: delivered', value: delivered },
            ...Object.entries(dDropped).map(([reason, value]) => ({ label: `dispatcher: dropped, ${reason}`, value })),
            { label: 'dispatcher: pending at the end', value: pending },
            { label: 'webhook: requests received', value: webhookGot },
          ],
          checks: [
            { identity: 'every upload answered 2xx', holds: answered2xx === load.sent },
            { identity: 'tap received = uploads sent', holds: received === load.sent },
            { identity: 'tap: received = published + dropped + skipped', holds: received === published + total(dropped) + skipped },
            {
              identity: "dispatcher received = tap published, or fewer only if the dispatcher's NATS connection was lost (NATS core is at-most-once)",
              holds: dReceived === published || (dReceived < published && total(disconnects) > 0),
            },
            { identity: 'dispatcher: received = delivered + dropped + pending', holds: dReceived === delivered + total(dDropped) + pending },
            { identity: 'webhook received = delivered', holds: webhookGot === sum(dFinal, `${D}events_delivered_total`) },
          ],
        };
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

import { makePayloads, startPublisher } from '../bench/events.ts';
import { startPipeline } from '../bench/pipeline.ts';
import { nodeScript, startPeer } from '../bench/processes.ts';
import { byLabel, sum } from '../fuzz/metrics.ts';
import { settled } from './settle.ts';
import { dispatcherHeldBytes, fmt, pipelineConfig } from './config-limits.ts';
import { mib, NODE_RUNTIME_ALLOWANCE_MIB, type SoakContext, type SoakSetup } from './soak.ts';

// Soak (a): a dispatcher whose every target accepts connections and never answers, fed events from NATS at a high
// rate. One target keeps the production defaults, so its circuit breaker opens and most events are dropped at once;
// the other never opens its breaker and has room for 100,000 events, so its queue fills to queue.maxBytes and stays
// full, with every delivery slot waiting out its timeout: the bound that matters is then the queue's.

const P = 'request_mirror_dispatcher_';

export async function startDispatcherBlackholed(ctx: SoakContext, rate: number): Promise<SoakSetup> {
  const recv = nodeScript('peers/receiver.ts');
  const blackhole = await startPeer('blackhole', recv.command, [...recv.args, '--mode', 'blackhole'], ctx.dir);
  try {
    const pipeline = await startPipeline({
      name: 'blackholed',
      natsUrl: ctx.natsUrl,
      targets: [
        { name: 'defaults', watchURL: `${blackhole.url}/defaults`, methods: ['*'] },
        {
          name: 'breaker-never-opens',
          watchURL: `${blackhole.url}/never-opens`,
          methods: ['*'],
          queue: { maxEvents: 100_000 },
          circuitBreaker: { failureThreshold: 1_000_000_000 },
        },
      ],
      dir: ctx.dir,
      tap: false,
    });
    const dispatcher = pipeline.dispatcher;
    if (!dispatcher) throw new Error('the blackholed pipeline has no dispatcher');
    const config = pipelineConfig(ctx.dir, pipeline);
    const sizes = makePayloads(100).map((p) => Buffer.byteLength(p));
    const eventBytes = Math.max(...sizes);
    const held = dispatcherHeldBytes(config, { minBytes: Math.min(...sizes), maxBytes: eventBytes });
    const publisher = await startPublisher(ctx.natsUrl, pipeline.subjectPrefix);
    return {
      id: 'dispatcher-blackholed',
      title: 'Dispatcher, every target blackholed',
      setup:
        `One dispatcher, two targets on a peer that accepts connections and never reads or answers. \`defaults\`: production ` +
        `defaults (concurrency ${config.targets[0]?.concurrency}, timeoutMs ${config.targets[0]?.timeoutMs}, ${config.targets[0]?.retry.maxAttempts} attempts, ` +
        `breaker opens after ${config.targets[0]?.circuitBreaker.failureThreshold} failures for ${config.targets[0]?.circuitBreaker.cooldownMs} ms). ` +
        `\`breaker-never-opens\`: the same but queue.maxEvents 100,000 and a breaker that never opens, so its queue stays full at ` +
        `queue.maxBytes (${fmt(config.targets[1]?.queue.maxBytes ?? 0)}). Events of up to ${fmt(eventBytes)} published straight to NATS by the harness.`,
      watched: [
        {
          name: 'dispatcher (blackholed)',
          pid: dispatcher.pid,
          adminUrl: pipeline.dispatcherAdminUrl,
          bound: { heldMiB: mib(held.bytes), derivation: held.derivation, allowanceMiB: NODE_RUNTIME_ALLOWANCE_MIB },
        },
      ],
      async drive(durationS) {
        const sent = await publisher.paced(rate, durationS);
        return { offered: `${rate} events/s published to NATS`, sent, achievedPerS: sent / durationS, unit: 'events/s' };
      },
      async account(load) {
        // NATS hands over the last published events within moments; read once every target has counted them all.
        const m = await settled(pipeline.dispatcherAdminUrl, (s) =>
          config.targets.every((t) => sum(s, `${P}events_received_total`, { target: t.name }) >= load.sent),
        );
        // NATS core keeps nothing for a client while it is away: events published while the dispatcher was cut off
        // (a stale connection or a slow consumer, both counted by cause) never reach it.
        const disconnects = byLabel(m, `${P}nats_disconnects_total`, 'cause');
        const disconnectCount = Object.values(disconnects).reduce((a, b) => a + b, 0);
        const lines = [
          { label: 'events published to NATS by the harness', value: load.sent },
          ...Object.entries(disconnects).map(([cause, value]) => ({ label: `dispatcher's NATS connection lost, ${cause}`, value })),
        ];
        const checks = [];
        for (const t of config.targets) {
          const where = { target: t.name };
          const received = sum(m, `${P}events_received_total`, where);
          const delivered = sum(m, `${P}events_delivered_total`, where);
          const pending = sum(m, `${P}events_pending`, where);
          const dropped = byLabel(m.filter((s) => s.labels.target === t.name), `${P}events_dropped_total`, 'reason');
          const droppedSum = Object.values(dropped).reduce((a, b) => a + b, 0);
          lines.push(
            { label: `${t.name}: received`, value: received },
            { label: `${t.name}: delivered`, value: delivered },
            ...Object.entries(dropped).map(([reason, value]) => ({ label: `${t.name}: dropped, ${reason}`, value })),
            { label: `${t.name}: pending at the end (queued or in flight)`, value: pending },
          );
          lines.push({ label: `${t.name}: published and never received (lost in NATS while disconnected)`, value: load.sent - received });
          checks.push(
            { identity: `${t.name}: received = delivered + dropped + pending`, holds: received === delivered + droppedSum + pending },
            {
              identity: `${t.name}: received = published, or fewer only if the dispatcher's NATS connection was lost (NATS core is at-most-once)`,
              holds: received === load.sent || (received < load.sent && disconnectCount > 0),
            },
          );
        }
        return { lines, checks };
      },
      async stop() {
        await publisher.close();
        await pipeline.stop();
        await blackhole.process.stop();
      },
    };
  } catch (error) {
    await blackhole.process.stop();
    throw error;
  }
}

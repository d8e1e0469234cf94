import { readFileSync } from 'node:fs';
import { Config } from '../../contract/config.ts';
import { MAX_UNBUILT_BYTES } from '../../ingress-tap/request-handler.ts';
import { pipelineConfigPath, type Pipeline } from '../bench/pipeline.ts';

// The limits a soak's bound is derived from, read back from the config file the pipeline's services were started
// with and parsed by the contract, so a default changed there changes the bound here.

export function pipelineConfig(dir: string, pipeline: Pipeline): Config {
  // startPipeline writes JSON (which is YAML) there.
  const file = pipelineConfigPath(dir, pipeline.name);
  return Config.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/**
 * What each event a dispatcher holds costs besides its payload: the queue entry, the Buffer and its ArrayBuffer in the
 * V8 heap, the native backing store and the allocator's header and slack. Not a config figure: estimated from this
 * harness's own second run (a dispatcher holding 54,099 queued events of 1.2 KiB, 64 MiB of payload, had an RSS of
 * 305 MiB a minute in against 173 MiB idle: ~68 MiB beyond the payload, ~1.3 KiB an event), rounded up to a power of two.
 */
export const HELD_EVENT_OVERHEAD_BYTES = 2048;

/**
 * Bytes a dispatcher may hold for its targets: per target, what its queue admits (at most `queue.maxEvents` events and
 * `queue.maxBytes` of payload) plus one event per concurrent delivery, each event costing its payload plus
 * HELD_EVENT_OVERHEAD_BYTES; the payload in all at most `dispatcher.maxQueuedBytes`. Events are `minBytes` to `maxBytes`
 * long (the smallest ones make for the most entries).
 */
export function dispatcherHeldBytes(config: Config, event: { readonly minBytes: number; readonly maxBytes: number }): { bytes: number; derivation: string } {
  const parts = config.targets.map((t) => {
    const events = Math.min(t.queue.maxEvents, Math.ceil(t.queue.maxBytes / event.minBytes)) + t.concurrency;
    const payload = Math.min(t.queue.maxBytes, t.queue.maxEvents * event.maxBytes) + t.concurrency * event.maxBytes;
    return {
      payload,
      events,
      text:
        `${t.name}: min(queue.maxBytes ${fmt(t.queue.maxBytes)}, queue.maxEvents ${t.queue.maxEvents} × ${fmt(event.maxBytes)}) + concurrency ${t.concurrency} × ${fmt(event.maxBytes)} ` +
        `of payload in ${events} events at most`,
    };
  });
  const payload = Math.min(parts.reduce((a, p) => a + p.payload, 0), config.dispatcher.maxQueuedBytes);
  const events = parts.reduce((a, p) => a + p.events, 0);
  return {
    bytes: payload + events * HELD_EVENT_OVERHEAD_BYTES,
    derivation:
      `payload min(maxQueuedBytes ${fmt(config.dispatcher.maxQueuedBytes)}, ${parts.map((p) => p.text).join(' + ')}) = ${fmt(payload)}, ` +
      `plus ${events} events × ${fmt(HELD_EVENT_OVERHEAD_BYTES)} of per-event overhead (entry, Buffer, backing store, allocator)`,
  };
}

export function fmt(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${Number((bytes / 1024 / 1024).toFixed(1))} MiB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${bytes} B`;
}

/**
 * Body and event bytes a tap may hold: events waiting for their build pass (MAX_UNBUILT_BYTES), events handed to NATS
 * and not yet confirmed (`tap.maxPendingPublishBytes`) and the bodies of the requests in flight, each captured up to
 * `tap.maxBodyBytes` (the load caps requests in flight at `inFlight`, of `bodyBytes` each).
 */
export function tapHeldBytes(config: Config, inFlight: number, bodyBytes: number): { bytes: number; derivation: string } {
  const perRequest = Math.min(config.tap.maxBodyBytes, bodyBytes);
  return {
    bytes: MAX_UNBUILT_BYTES + config.tap.maxPendingPublishBytes + inFlight * perRequest,
    derivation:
      `build queue ${fmt(MAX_UNBUILT_BYTES)} + maxPendingPublishBytes ${fmt(config.tap.maxPendingPublishBytes)} + ` +
      `${inFlight} requests in flight × min(maxBodyBytes ${fmt(config.tap.maxBodyBytes)}, body ${fmt(bodyBytes)})`,
  };
}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Config } from '../../contract/config.ts';
import { MAX_UNBUILT_BYTES } from '../../ingress-tap/request-handler.ts';
import type { Pipeline } from '../bench/pipeline.ts';

// The limits a soak's bound is derived from, read back from the config file the pipeline's services were started
// with and parsed by the contract, so a default changed there changes the bound here.

export function pipelineConfig(dir: string, pipeline: Pipeline): Config {
  // startPipeline writes JSON (which is YAML) under this name.
  const file = join(dir, `config-${pipeline.name}.yaml`);
  return Config.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/**
 * Payload bytes a dispatcher may hold for its targets: per target, what its queue admits (events × their size, at
 * most `queue.maxBytes`) plus one event per concurrent delivery; in all at most `dispatcher.maxQueuedBytes`.
 * `eventBytes` is the largest event the soak sends.
 */
export function dispatcherHeldBytes(config: Config, eventBytes: number): { bytes: number; derivation: string } {
  const parts = config.targets.map((t) => {
    const queued = Math.min(t.queue.maxBytes, t.queue.maxEvents * eventBytes);
    return { name: t.name, bytes: queued + t.concurrency * eventBytes, text: `${t.name}: min(queue.maxBytes ${fmt(t.queue.maxBytes)}, queue.maxEvents ${t.queue.maxEvents} × ${fmt(eventBytes)}) + concurrency ${t.concurrency} × ${fmt(eventBytes)}` };
  });
  const sum = parts.reduce((a, p) => a + p.bytes, 0);
  const bytes = Math.min(sum, config.dispatcher.maxQueuedBytes);
  return { bytes, derivation: `min(maxQueuedBytes ${fmt(config.dispatcher.maxQueuedBytes)}, ${parts.map((p) => p.text).join(' + ')})` };
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

import { z } from 'zod';

// What the Request Mirror Traefik plugin (traefik-plugin/frame.go) POSTs to the tap's plugin listener at
// `/v1/snapshots` with Content-Type `application/vnd.request-mirror.snapshots.v1`: a sequence of frames, each
//
//   uint32 big-endian meta length | meta (UTF-8 JSON) | uint32 big-endian body length | body bytes
//
// The first frame's meta is a BatchHeader and carries no bytes; every further frame is one PluginSnapshot and its
// captured body, raw. Raw rather than base64 in JSON because it was measured cheaper on both sides (docs/traefik-plugin.md).

export const PLUGIN_BATCH_PATH = '/v1/snapshots';
export const PLUGIN_BATCH_CONTENT_TYPE = 'application/vnd.request-mirror.snapshots.v1';

const count = z.int().min(0);

/** Why a plugin dropped a snapshot: its queue was full in events or in bytes, the POST failed, the tap refused it, the batch could not be encoded, or the plugin panicked (recovered) while shipping it. */
export const PLUGIN_DROP_REASONS = ['queue_full', 'queue_bytes', 'send_failed', 'rejected', 'encode_failed', 'internal_error'] as const;

export const PluginCounters = z
  .object({
    queued: count.describe('Snapshots handed to the queue.'),
    sent: count.describe('Snapshots the tap accepted (2xx).'),
    sentBodyBytes: count.describe('Body bytes in those snapshots.'),
    budgetCuts: count.describe('Bodies cut short because the byte budget (maxQueueBytes) was spent.'),
    dropped: z.partialRecord(z.enum(PLUGIN_DROP_REASONS), count).describe('Snapshots dropped, by reason.'),
  })
  .describe("A plugin worker pool's counters, cumulative since Traefik started it.");

export const BatchHeader = z.object({
  version: z.literal(1),
  reporter: z.string().min(1).max(64).describe('Random id of the sending worker pool, new at every Traefik start.'),
  counters: PluginCounters,
});

export const PluginSnapshot = z
  .object({
    timeMs: z.int().min(0).describe('When Traefik saw the request (ms since the epoch).'),
    method: z.string().min(1),
    scheme: z.string().describe('`https` when TLS reached Traefik, else X-Forwarded-Proto as Traefik set it.'),
    uri: z.string().describe('Request target as the client sent it.'),
    remoteIp: z.string().describe("Traefik's peer address."),
    headers: z.array(z.string()).refine((h) => h.length % 2 === 0, 'name/value pairs').describe('Name, value, name, value…; Host first.'),
    declaredLength: z.int().min(-1).describe('Content-Length, or -1 when unknown (chunked).'),
    receivedBytes: count.describe('Body bytes the upstream read through the plugin (at least the captured ones).'),
    complete: z.boolean().describe('False when the body was neither read to its end nor past the cap.'),
  })
  .describe('One request as the plugin saw it.');

export type PluginCounters = z.infer<typeof PluginCounters>;
export type BatchHeader = z.infer<typeof BatchHeader>;
export type PluginSnapshot = z.infer<typeof PluginSnapshot>;

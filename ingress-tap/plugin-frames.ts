import { z } from 'zod';
import { BatchHeader, PluginSnapshot } from '../contract/plugin-batch.ts';
import { PluginBatchInvalidError } from './errors.ts';

// Reads a plugin batch (contract/plugin-batch.ts). Bodies are views into the request buffer, never copies.

export interface FramedSnapshot {
  readonly snapshot: PluginSnapshot;
  readonly body: Buffer;
}

export interface PluginBatch {
  readonly header: BatchHeader;
  readonly snapshots: FramedSnapshot[];
}

/** Throws `PluginBatchInvalidError` naming the frame when the batch is cut short or a frame's meta does not parse. */
export function decodePluginBatch(data: Buffer): PluginBatch {
  let offset = 0;
  let index = 0;
  const next = (): { meta: unknown; body: Buffer } => {
    const metaLength = readLength(data, offset, index, 'meta');
    const metaEnd = offset + 4 + metaLength;
    const bodyLength = readLength(data, metaEnd, index, 'body');
    const bodyEnd = metaEnd + 4 + bodyLength;
    if (bodyEnd > data.length) throw new PluginBatchInvalidError(`frame ${index}: body of ${bodyLength} bytes runs past the batch`);
    let meta: unknown;
    try {
      meta = JSON.parse(data.toString('utf8', offset + 4, metaEnd));
    } catch (cause) {
      throw new PluginBatchInvalidError(`frame ${index}: meta is not JSON`, { cause });
    }
    const body = data.subarray(metaEnd + 4, bodyEnd);
    offset = bodyEnd;
    index++;
    return { meta, body };
  };
  const first = next();
  const header = parse(BatchHeader, first.meta, 0);
  const snapshots: FramedSnapshot[] = [];
  while (offset < data.length) {
    const at = index;
    const { meta, body } = next();
    snapshots.push({ snapshot: parse(PluginSnapshot, meta, at), body });
  }
  return { header, snapshots };
}

function readLength(data: Buffer, at: number, index: number, what: string): number {
  if (at + 4 > data.length) throw new PluginBatchInvalidError(`frame ${index}: ${what} length runs past the batch`);
  const n = data.readUInt32BE(at);
  if (what === 'meta' && at + 4 + n > data.length) throw new PluginBatchInvalidError(`frame ${index}: meta of ${n} bytes runs past the batch`);
  return n;
}

function parse<T>(schema: z.ZodType<T>, meta: unknown, index: number): T {
  const result = schema.safeParse(meta);
  if (!result.success) throw new PluginBatchInvalidError(`frame ${index}: ${z.prettifyError(result.error)}`);
  return result.data;
}

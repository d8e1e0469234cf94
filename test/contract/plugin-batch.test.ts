import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BatchHeader,
  PLUGIN_BATCH_CONTENT_TYPE,
  PLUGIN_BATCH_PATH,
  PLUGIN_DROP_REASONS,
  PluginCounters,
  PluginSnapshot,
} from '../../contract/plugin-batch.ts';

// The wire contract between the Go plugin (traefik-plugin/) and the tap's plugin listener. Both sides are ours and
// written in two languages; these tests read the Go source so that a change on one side alone fails here, and pin
// which frames the tap refuses (test/ingress-tap/plugin-ingest.test.ts checks that a refused batch is answered 400).

const PLUGIN = join(import.meta.dirname, '../../traefik-plugin');
const go = (file: string) => readFileSync(join(PLUGIN, file), 'utf8');

/** The `json:"…"` names of a Go struct's fields, in order. */
function goJsonFields(source: string, struct: string): string[] {
  const body = new RegExp(`type ${struct} struct \\{([\\s\\S]*?)\\n\\}`).exec(source)?.[1];
  if (body === undefined) throw new Error(`no struct ${struct}`);
  return [...body.matchAll(/`json:"([^",]+)/g)].map((m) => m[1] ?? '');
}

function goString(source: string, name: string): string {
  const value = new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`).exec(source)?.[1];
  if (value === undefined) throw new Error(`no string constant ${name}`);
  return value;
}

const counters = { queued: 3, sent: 2, sentBodyBytes: 10, budgetCuts: 0, dropped: { queue_full: 1 } };
const snapshot = {
  timeMs: 1_700_000_000_000,
  method: 'POST',
  scheme: 'https',
  uri: '/a?b=c',
  remoteIp: '192.0.2.1',
  headers: ['Host', 'shop.test', 'X-A', '1'],
  declaredLength: -1,
  receivedBytes: 0,
  complete: false,
};

describe('plugin batch contract', () => {
  it('is POSTed to the path and with the content type the Go plugin uses', () => {
    expect(PLUGIN_BATCH_PATH).toBe(goString(go('pool.go'), 'ingestPath'));
    expect(PLUGIN_BATCH_CONTENT_TYPE).toBe(goString(go('frame.go'), 'batchContentType'));
  });

  it('has the fields the Go plugin encodes', () => {
    expect(Object.keys(BatchHeader.shape)).toEqual(goJsonFields(go('frame.go'), 'BatchHeader'));
    expect(Object.keys(PluginSnapshot.shape)).toEqual(goJsonFields(go('frame.go'), 'Snapshot'));
    expect(Object.keys(PluginCounters.shape)).toEqual(goJsonFields(go('counters.go'), 'Report'));
  });

  it('knows every drop reason the Go plugin counts', () => {
    const names = /reasonNames = \[reasonCount\]string\{([^}]*)\}/.exec(go('counters.go'))?.[1] ?? '';
    expect([...names.matchAll(/"([^"]+)"/g)].map((m) => m[1])).toEqual([...PLUGIN_DROP_REASONS]);
  });

  it('takes a header of version 1 with a reporter id and counters', () => {
    expect(BatchHeader.parse({ version: 1, reporter: 'r', counters })).toEqual({ version: 1, reporter: 'r', counters });
    expect(BatchHeader.safeParse({ version: 1, reporter: 'r'.repeat(64), counters: { ...counters, dropped: {} } }).success).toBe(true);
  });

  it.each([
    ['another version', { version: 2 }, ['version']],
    ['an empty reporter id', { reporter: '' }, ['reporter']],
    ['a reporter id past 64 characters', { reporter: 'r'.repeat(65) }, ['reporter']],
    ['a negative counter', { counters: { ...counters, sent: -1 } }, ['counters', 'sent']],
    ['a fractional counter', { counters: { ...counters, queued: 1.5 } }, ['counters', 'queued']],
    ['a drop reason it does not know', { counters: { ...counters, dropped: { lost: 1 } } }, ['counters', 'dropped']],
    ['a negative drop count', { counters: { ...counters, dropped: { rejected: -1 } } }, ['counters', 'dropped', 'rejected']],
  ])('refuses a header with %s', (_what, over, path) => {
    const parsed = BatchHeader.safeParse({ version: 1, reporter: 'r', counters, ...over });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.path)).toEqual([path]);
  });

  it('takes a snapshot of an unknown length whose body was not read to its end', () => {
    expect(PluginSnapshot.parse(snapshot)).toEqual(snapshot);
    expect(PluginSnapshot.safeParse({ ...snapshot, timeMs: 0, declaredLength: 0, headers: [] }).success).toBe(true);
  });

  it.each([
    ['a negative time', { timeMs: -1 }, 'timeMs'],
    ['a fractional time', { timeMs: 1.5 }, 'timeMs'],
    ['an empty method', { method: '' }, 'method'],
    ['a declared length below -1', { declaredLength: -2 }, 'declaredLength'],
    ['a negative received count', { receivedBytes: -1 }, 'receivedBytes'],
  ])('refuses a snapshot with %s', (_what, over, field) => {
    const parsed = PluginSnapshot.safeParse({ ...snapshot, ...over });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.path)).toEqual([[field]]);
  });

  it('refuses an odd number of header strings as not name/value pairs', () => {
    const parsed = PluginSnapshot.safeParse({ ...snapshot, headers: ['Host', 'a', 'X-A'] });
    expect(parsed.error?.issues.map((i) => [i.path, i.message])).toEqual([[['headers'], 'name/value pairs']]);
  });

  it('takes long header values and methods: only emptiness is refused', () => {
    expect(PluginSnapshot.safeParse({ ...snapshot, method: 'PROPFIND', headers: ['Host', 'h'.repeat(10_000)] }).success).toBe(true);
  });
});

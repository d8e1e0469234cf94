import { describe, expect, it } from 'vitest';
import { PLUGIN_BATCH_CONTENT_TYPE, PLUGIN_BATCH_PATH, type BatchHeader, type PluginSnapshot } from '../../contract/plugin-batch.ts';
import { send, target, useTap } from './tap-harness.ts';

// The tap's side of the Traefik plugin: batches in, the same events out. The real plugin's batches are exercised
// end to end in test/e2e/traefik-plugin.test.ts; here frames are built by hand to reach what the plugin never
// sends (broken batches) and to pin the tap's arithmetic on reported counters.

const { tap } = useTap({
  config: { targets: [target('all', { cookieNames: ['session'] }), target('small', { methods: ['PATCH'], maxBodyBytes: 4 })] },
});

function frame(meta: unknown, body: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(meta));
  const metaLength = Buffer.alloc(4);
  metaLength.writeUInt32BE(json.length);
  const bodyLength = Buffer.alloc(4);
  bodyLength.writeUInt32BE(body.length);
  return Buffer.concat([metaLength, json, bodyLength, body]);
}

const counters = (sent: number, dropped: Partial<Record<string, number>> = {}): BatchHeader['counters'] => ({
  queued: sent,
  sent,
  sentBodyBytes: 0,
  budgetCuts: 0,
  dropped,
});

function snapshot(over: Partial<PluginSnapshot> = {}): PluginSnapshot {
  return {
    timeMs: Date.now(),
    method: 'POST',
    scheme: 'http',
    uri: '/orders?id=7',
    remoteIp: '192.0.2.10',
    headers: ['Host', 'Shop.Example.Test:80', 'Cookie', 'session=abc', 'Authorization', 'Bearer x', 'X-Trace', 'a', 'X-Trace', 'b'],
    declaredLength: 5,
    receivedBytes: 5,
    complete: true,
    ...over,
  };
}

async function post(body: Buffer, contentType = PLUGIN_BATCH_CONTENT_TYPE) {
  return send(`${tap.pluginUrl}${PLUGIN_BATCH_PATH}`, { method: 'POST', headers: { 'content-type': contentType }, body });
}

describe('plugin ingest', () => {
  it('publishes each snapshot of a batch as an event with attachment plugin, through the capture policy', async () => {
    const header = { version: 1, reporter: 'r-events', counters: counters(0) };
    const res = await post(Buffer.concat([frame(header), frame(snapshot(), Buffer.from('hello')), frame(snapshot({ method: 'GET', uri: '/', declaredLength: 0, receivedBytes: 0 }))]));
    expect(res.status).toBe(204);
    const events = await tap.waitForEvents(2);
    const post1 = events.find((e) => e.event.data.method === 'POST')?.event;
    expect(post1?.data).toMatchObject({
      attachment: 'plugin',
      scheme: 'http',
      host: 'shop.example.test',
      path: '/orders',
      query: 'id=7',
      clientIp: '192.0.2.10',
      cookies: { session: 'abc' },
      redactedHeaders: ['cookie', 'authorization'],
      body: { encoding: 'utf8', data: 'hello', capturedBytes: 5, declaredLength: 5, receivedBytes: 5, truncated: false },
    });
    expect(post1?.data.headers['x-trace']).toEqual(['a', 'b']);
    expect(post1?.subject).toBe('shop.example.test/orders');
  });

  it('marks a body the upstream never read to its end as truncated, and cuts a body to what the wanting targets take', async () => {
    const header = { version: 1, reporter: 'r-bodies', counters: counters(0) };
    const unread = snapshot({ uri: '/unread', declaredLength: 100, receivedBytes: 3, complete: false });
    const small = snapshot({ method: 'PATCH', uri: '/small', declaredLength: 10, receivedBytes: 10 });
    expect((await post(Buffer.concat([frame(header), frame(unread, Buffer.from('abc')), frame(small, Buffer.from('0123456789'))]))).status).toBe(204);
    const events = await tap.waitForEvents(2);
    expect(events.find((e) => e.event.data.path === '/unread')?.event.data.body).toMatchObject({ data: 'abc', receivedBytes: 3, declaredLength: 100, truncated: true });
    // Both targets want the PATCH: the larger limit (the tap's 1 MiB via `all`) applies, so nothing is cut.
    expect(events.find((e) => e.event.data.path === '/small')?.event.data.body).toMatchObject({ data: '0123456789', truncated: false });
  });

  it('adds what each reporter’s counters grew by to /metrics, and takes a lower count as a restarted reporter', async () => {
    const sentBefore = await tap.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' });
    const fullBefore = await tap.metric('request_mirror_plugin_snapshots_dropped_total', { reason: 'queue_full' });
    const batch = (reporter: string, sent: number, full: number) => post(frame({ version: 1, reporter, counters: counters(sent, { queue_full: full }) }));
    expect((await batch('r-a', 10, 1)).status).toBe(204);
    expect((await batch('r-a', 15, 4)).status).toBe(204);
    expect((await batch('r-b', 7, 0)).status).toBe(204);
    // r-a's Traefik restarted: its counters start again from zero.
    expect((await batch('r-a', 2, 0)).status).toBe(204);
    expect((await tap.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' })) - sentBefore).toBe(15 + 7 + 2);
    expect((await tap.metric('request_mirror_plugin_snapshots_dropped_total', { reason: 'queue_full' })) - fullBefore).toBe(4);
  });

  it.each([
    ['cut short', () => frame({ version: 1, reporter: 'r', counters: counters(0) }).subarray(0, 10), 'meta of'],
    ['a meta that is not JSON', () => Buffer.concat([frame({ version: 1, reporter: 'r', counters: counters(0) }), Buffer.from([0, 0, 0, 2]), Buffer.from('{x'), Buffer.alloc(4)]), 'meta is not JSON'],
    ['a snapshot missing fields', () => Buffer.concat([frame({ version: 1, reporter: 'r', counters: counters(0) }), frame({ method: 'GET' })]), 'frame 1'],
    ['an unknown version', () => frame({ version: 2, reporter: 'r', counters: counters(0) }), 'frame 0'],
    ['whose body runs past its end', () => Buffer.concat([frame({ version: 1, reporter: 'r', counters: counters(0) }), frame(snapshot(), Buffer.from('hello')).subarray(0, -1)]), 'frame 1: body of 5 bytes runs past the batch'],
    ['cut in the last bytes of its first meta', () => frame({ version: 1, reporter: 'r', counters: counters(0) }).subarray(0, -7), 'frame 0: meta of'],
    ['cut right after a meta', () => { const f = frame(snapshot()); return Buffer.concat([frame({ version: 1, reporter: 'r', counters: counters(0) }), f.subarray(0, f.length - 4)]); }, 'frame 1: body length runs past the batch'],
    ['cut after a meta', () => { const f = frame(snapshot()); return Buffer.concat([frame({ version: 1, reporter: 'r', counters: counters(0) }), f.subarray(0, f.length - 2)]); }, 'frame 1: body length runs past the batch'],
    ['with bytes after its last frame', () => Buffer.concat([frame({ version: 1, reporter: 'r', counters: counters(0) }), frame(snapshot(), Buffer.from('hello')), Buffer.from([0, 0])]), 'frame 2: meta length runs past the batch'],
  ])('refuses a batch %s with 400 naming the frame, counts it, and publishes none of it', async (_name, batch, message) => {
    const before = await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'plugin_batch_invalid' });
    const res = await post(batch());
    expect(res.status).toBe(400);
    expect(res.body).toContain(message);
    expect(await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'plugin_batch_invalid' })).toBe(before + 1);
    // A valid batch after it: its event is the first to arrive, so nothing of the refused one was published.
    const marker = Buffer.concat([frame({ version: 1, reporter: 'r-marker', counters: counters(0) }), frame(snapshot({ method: 'GET', uri: '/marker', declaredLength: 0, receivedBytes: 0 }))]);
    expect((await post(marker)).status).toBe(204);
    const [first] = await tap.waitForEvents(1);
    expect(first?.event.data.path).toBe('/marker');
  });

  it('takes a batch of counters alone, without snapshots, with 204', async () => {
    const before = await tap.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' });
    expect((await post(frame({ version: 1, reporter: 'r-alone', counters: counters(3) }))).status).toBe(204);
    expect((await tap.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' })) - before).toBe(3);
  });

  it('refuses another content type with 415', async () => {
    expect((await post(Buffer.from('{}'), 'application/json')).status).toBe(415);
  });
  it('takes header values of a snapshot as the text they are, and keeps headers named like Object.prototype members', async () => {
    const header = { version: 1, reporter: 'r-text', counters: counters(0) };
    const headers = ['Host', 'h.example', 'X-Filename', 'résumé.pdf', 'X-Text', 'é € 😀', '__proto__', 'p', 'Constructor', 'c'];
    const batch = Buffer.concat([frame(header), frame(snapshot({ uri: '/text', headers }), Buffer.from('hello'))]);
    expect((await post(batch)).status).toBe(204);
    const [received] = await tap.waitForEvents(1);
    const data = received?.event.data;
    expect(data?.headers['x-filename']).toEqual(['résumé.pdf']);
    expect(data?.headers['x-text']).toEqual(['é € 😀']);
    expect(data?.latin1Headers).toBeUndefined();
    expect(Object.hasOwn(data?.headers ?? {}, '__proto__')).toBe(true);
    expect(data?.headers['__proto__']).toEqual(['p']);
    expect(data?.headers['constructor']).toEqual(['c']);
  });
});

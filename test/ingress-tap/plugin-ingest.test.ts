import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { PLUGIN_BATCH_CONTENT_TYPE, PLUGIN_BATCH_PATH, PLUGIN_DROP_REASONS, type BatchHeader, type PluginSnapshot } from '../../contract/plugin-batch.ts';
import { observePublishes, send, startTap, target, useTap, type TapHarness, type TapHarnessOptions } from './tap-harness.ts';

// The tap's side of the Traefik plugin: batches in, the same events out. The real plugin's batches are exercised
// end to end in test/e2e/traefik-plugin.test.ts; here frames are built by hand to reach what the plugin never
// sends (broken batches) and to pin the tap's arithmetic on reported counters.

const { tap, nats } = useTap({
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

async function post(body: Buffer, contentType = PLUGIN_BATCH_CONTENT_TYPE, to: TapHarness = tap) {
  return send(`${to.pluginUrl}${PLUGIN_BATCH_PATH}`, { method: 'POST', headers: { 'content-type': contentType }, body });
}

const header = (reporter: string, c: BatchHeader['counters'] = counters(0)) => frame({ version: 1, reporter, counters: c });

// A tap of its own, for a test that needs other targets or counts every reporter the tap has heard from.
let own: TapHarness | undefined;
afterEach(async () => {
  await own?.close();
  own = undefined;
});
async function ownTap(options: Omit<TapHarnessOptions, 'natsUrl'>): Promise<TapHarness> {
  own = await startTap({ ...options, natsUrl: nats.url });
  return own;
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

  it('adds what each reporter’s counters grew by to /metrics, and takes a lower count as a late batch, adding nothing', async () => {
    const sentBefore = await tap.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' });
    const fullBefore = await tap.metric('request_mirror_plugin_snapshots_dropped_total', { reason: 'queue_full' });
    const sent = async () => (await tap.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' })) - sentBefore;
    const full = async () => (await tap.metric('request_mirror_plugin_snapshots_dropped_total', { reason: 'queue_full' })) - fullBefore;
    const batch = (reporter: string, sent: number, full: number) => post(frame({ version: 1, reporter, counters: counters(sent, { queue_full: full }) }));
    expect((await batch('r-a', 10, 1)).status).toBe(204);
    expect((await batch('r-a', 15, 4)).status).toBe(204);
    expect((await batch('r-b', 7, 0)).status).toBe(204);
    // A batch r-a's workers encoded before the last one, arriving after it: a reporter's counters never restart (a
    // restarted Traefik reports under a new id), so nothing is added.
    expect((await batch('r-a', 12, 2)).status).toBe(204);
    expect([await sent(), await full()]).toEqual([15 + 7, 4]);
    // Growth is counted from the highest value seen, not from the late one.
    expect((await batch('r-a', 20, 5)).status).toBe(204);
    expect([await sent(), await full()]).toEqual([20 + 7, 5]);
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

  it('adds the snapshots queued, drops, body bytes sent and budget cuts each reporter reports, by what they grew', async () => {
    const t = await ownTap({ config: { targets: [target('all')] } });
    const report = (reporter: string, queued: number, sentBodyBytes: number, budgetCuts: number, full: number) =>
      post(header(reporter, { queued, sent: 0, sentBodyBytes, budgetCuts, dropped: { queue_full: full } }), undefined, t);
    expect((await report('r-1', 10, 1000, 2, 1)).status).toBe(204);
    expect((await report('r-1', 12, 1500, 3, 3)).status).toBe(204);
    expect((await report('r-2', 5, 40, 1, 0)).status).toBe(204);
    expect(await t.metric('request_mirror_plugin_snapshots_total', { outcome: 'queued' })).toBe(17);
    expect(await t.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' })).toBe(0);
    expect(await t.metric('request_mirror_plugin_snapshots_dropped_total', { reason: 'queue_full' })).toBe(3);
    expect(await t.metric('request_mirror_plugin_body_bytes_sent_total')).toBe(1540);
    expect(await t.metric('request_mirror_plugin_bodies_cut_total')).toBe(4);
    expect(await t.metric('request_mirror_plugin_reporters')).toBe(2);
    // Each drop reason a plugin reports is named in the counter's help, where an operator looks them up.
    const exposition = (await send(`${t.adminUrl}/metrics`)).body;
    expect(exposition).toContain(`# HELP request_mirror_plugin_snapshots_dropped_total Snapshots Traefik plugins dropped, by reason (${PLUGIN_DROP_REASONS.join(', ')}), as they reported them.`);
    expect(exposition).toMatch(/^request_mirror_plugin_snapshots_dropped_total\{reason="queue_full"\} 3$/m);
  });

  it('remembers the 1024 reporters heard from most recently, and takes a forgotten one as new', async () => {
    const t = await ownTap({ config: { targets: [target('all')] } });
    const report = (reporter: string, sent: number) => post(header(reporter, counters(sent)), undefined, t);
    const sent = () => t.metric('request_mirror_plugin_snapshots_total', { outcome: 'sent' });
    await report('first', 10);
    await report('second', 20);
    // Heard again: 'first' is now more recent than 'second'.
    await report('first', 10);
    for (let i = 0; i < 1023; i += 50) {
      const codes = await Promise.all(Array.from({ length: Math.min(50, 1023 - i) }, (_, k) => report(`filler-${i + k}`, 0)));
      expect(codes.every((c) => c.status === 204)).toBe(true);
    }
    expect(await t.metric('request_mirror_plugin_reporters')).toBe(1024);
    expect(await sent()).toBe(30);
    // 'first' is still remembered (nothing grew); 'second' was forgotten and its 20 count again.
    await report('first', 10);
    await report('second', 20);
    expect(await sent()).toBe(50);
    expect(await t.metric('request_mirror_plugin_reporters')).toBe(1024);
  });

  it('counts a snapshot no target wants as received and skipped, and publishes none', async () => {
    const t = await ownTap({ config: { targets: [target('gets', { methods: ['GET'] })] } });
    const batch = Buffer.concat([header('r-skip'), frame(snapshot({ uri: '/skipped' }), Buffer.from('hello')), frame(snapshot({ method: 'GET', uri: '/wanted', declaredLength: 0, receivedBytes: 0 }))]);
    expect((await post(batch, undefined, t)).status).toBe(204);
    const [first] = await t.waitForEvents(1);
    expect(first?.event.data.path).toBe('/wanted');
    expect(await t.metric('request_mirror_tap_requests_received_total', { attachment: 'plugin' })).toBe(2);
    expect(await t.metric('request_mirror_tap_requests_skipped_total', { attachment: 'plugin' })).toBe(1);
  });

  it('leaves the body out when no wanting target takes bodies, and cuts one to the largest limit among them', async () => {
    const t = await ownTap({ config: { targets: [target('no-bodies', { methods: ['GET'], maxBodyBytes: 0 }), target('small', { methods: ['PUT'], maxBodyBytes: 4 })] } });
    const batch = Buffer.concat([
      header('r-limits'),
      frame(snapshot({ method: 'GET', uri: '/bodiless' }), Buffer.from('hello')),
      // The plugin says more arrived than it kept, and declares no length (-1).
      frame(snapshot({ method: 'PUT', uri: '/cut', declaredLength: -1, receivedBytes: 9 }), Buffer.from('0123456')),
      frame(snapshot({ method: 'PUT', uri: '/within', declaredLength: 3, receivedBytes: 0 }), Buffer.from('abc')),
      frame(snapshot({ method: 'PUT', uri: '/empty', declaredLength: 0, receivedBytes: 0 })),
    ]);
    expect((await post(batch, undefined, t)).status).toBe(204);
    const events = await t.waitForEvents(4);
    const body = (path: string) => events.find((e) => e.event.data.path === path)?.event.data.body;
    expect(body('/bodiless')).toBeNull();
    expect(body('/cut')).toMatchObject({ data: '0123', capturedBytes: 4, receivedBytes: 9, declaredLength: null, truncated: true, interrupted: false });
    // Never fewer bytes received than the snapshot carries.
    expect(body('/within')).toMatchObject({ data: 'abc', capturedBytes: 3, receivedBytes: 3, declaredLength: 3, truncated: false });
    expect(body('/empty')).toMatchObject({ data: '', capturedBytes: 0, declaredLength: 0, truncated: false });
    expect(await t.metric('request_mirror_tap_bodies_truncated_total', { reason: 'limit' })).toBe(1);
    expect(await t.metric('request_mirror_tap_bodies_truncated_total', { reason: 'unread' })).toBe(0);
  });

  it('counts a body the upstream never read to its end as unread, and a malformed cookie', async () => {
    const t = await ownTap({ config: { targets: [target('all', { cookieNames: ['session'] })] } });
    const unread = snapshot({ uri: '/unread', declaredLength: 100, receivedBytes: 3, complete: false, headers: ['Host', 'h.example', 'Cookie', 'session=abc; oops'] });
    expect((await post(Buffer.concat([header('r-unread'), frame(unread, Buffer.from('abc'))]), undefined, t)).status).toBe(204);
    const [received] = await t.waitForEvents(1);
    expect(received?.event.data.body).toMatchObject({ interrupted: true, truncated: true });
    expect(received?.event.data.cookies).toEqual({ session: 'abc' });
    expect(await t.metric('request_mirror_tap_bodies_truncated_total', { reason: 'unread' })).toBe(1);
    expect(await t.metric('request_mirror_tap_rejected_input_total', { reason: 'malformed_cookie' })).toBe(1);
  });

  it('counts a snapshot whose event fails to publish as publish_error, logs it, and takes the rest of the batch', async () => {
    const logLines: { level: number; msg: string; err?: { code?: string; message?: string } }[] = [];
    const t = await ownTap({
      config: { targets: [target('all')] },
      logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) }),
      wrapPublisher: (p) =>
        observePublishes(p, (path) => {
          if (path === '/throws') throw new Error('injected publish failure');
        }),
    });
    const get = (uri: string) => frame(snapshot({ method: 'GET', uri, declaredLength: 0, receivedBytes: 0 }));
    expect((await post(Buffer.concat([header('r-throws'), get('/before'), get('/throws'), get('/after')]), undefined, t)).status).toBe(204);
    await t.waitForEvents(2);
    expect(t.received.map((r) => r.event.data.path)).toEqual(['/before', '/after']);
    expect(await t.metric('request_mirror_tap_publish_errors_total')).toBe(1);
    expect(await t.metric('request_mirror_tap_events_dropped_total', { reason: 'publish_error' })).toBe(1);
    expect(logLines.filter((l) => l.msg === 'building or publishing a plugin event failed')).toEqual([
      expect.objectContaining({ level: 50, err: expect.objectContaining({ message: 'injected publish failure' }) as unknown }),
    ]);
    // Cookies no target asked for are not parsed, so none is counted as malformed.
    expect(await t.metric('request_mirror_tap_rejected_input_total', { reason: 'malformed_cookie' })).toBe(0);
    const refused = await post(header('r-cut').subarray(0, 10), undefined, t);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/^frame 0: meta of .*\n$/);
    expect(refused.headers['content-type']).toBe('text/plain');
    expect(logLines.filter((l) => l.msg === 'plugin batch refused')).toEqual([
      expect.objectContaining({ level: 40, err: expect.objectContaining({ code: 'RM_TAP_PLUGIN_BATCH_INVALID' }) as unknown }),
    ]);
  });

  it('refuses a batch over tap.plugin.maxBatchBytes with 413 and another content type with 415, and publishes neither', async () => {
    const t = await ownTap({ config: { tap: { plugin: { maxBatchBytes: 400 }, keepAliveTimeoutMs: 42_000 }, targets: [target('all')] } });
    const big = Buffer.concat([header('r-big'), frame(snapshot({ uri: '/big' }), Buffer.alloc(500, 'x'))]);
    expect((await post(big, undefined, t)).status).toBe(413);
    const small = Buffer.concat([header('r-small'), frame(snapshot({ method: 'GET', uri: '/small', declaredLength: 0, receivedBytes: 0, headers: [] }))]);
    expect(small.length).toBeLessThanOrEqual(400);
    expect((await post(small, 'application/json', t)).status).toBe(415);
    const taken = await post(small, undefined, t);
    expect(taken.status).toBe(204);
    // Idle connections are kept as long as on the other listeners (tap.keepAliveTimeoutMs).
    expect(taken.headers['keep-alive']).toBe('timeout=42');
    const [first] = await t.waitForEvents(1);
    expect(first?.event.data.path).toBe('/small');
  });

  it('has every status this listener answers listed in the listener table of docs/ingress-tap.md', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/ingress-tap.md'), 'utf8');
    const row = doc.split('\n').find((line) => line.startsWith('| `tap.plugin` |')) ?? '';
    const listed = [...row.matchAll(/`(\d{3})`/g)].map((m) => Number(m[1]));
    // The statuses the tests of this file observe.
    expect(listed.toSorted((a, b) => a - b)).toEqual([204, 400, 413, 415]);
  });
});

describe('the request a plugin snapshot names', () => {
  const get = (uri: string, over: Partial<PluginSnapshot>) => frame(snapshot({ method: 'GET', uri, declaredLength: 0, receivedBytes: 0, ...over }));

  it('takes the first of repeated Host headers, as Node does, and filters targets by it', async () => {
    const t = await ownTap({ config: { targets: [target('a-only', { hosts: ['a.example'] })] } });
    const batch = Buffer.concat([
      header('r-hosts'),
      get('/a-first', { headers: ['Host', 'A.Example', 'Host', 'b.example'] }),
      get('/b-first', { headers: ['Host', 'b.example', 'Host', 'a.example'] }),
    ]);
    expect((await post(batch, undefined, t)).status).toBe(204);
    const [first] = await t.waitForEvents(1);
    expect(first?.event.data).toMatchObject({ path: '/a-first', host: 'a.example' });
    expect(await t.metric('request_mirror_tap_requests_skipped_total', { attachment: 'plugin' })).toBe(1);
    expect(t.received).toHaveLength(1);
  });

  it('takes the client address from the first entry of repeated X-Forwarded-For headers, before the peer', async () => {
    const batch = Buffer.concat([
      header('r-xff'),
      get('/xff', { remoteIp: '192.0.2.10', headers: ['Host', 'h.example', 'X-Forwarded-For', '203.0.113.7, 10.0.0.1', 'X-Forwarded-For', '10.0.0.2'] }),
    ]);
    expect((await post(batch)).status).toBe(204);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.clientIp).toBe('203.0.113.7');
  });

  it('has no client address for a snapshot without remoteIp or X-Forwarded-For', async () => {
    expect((await post(Buffer.concat([header('r-no-ip'), get('/no-ip', { remoteIp: '', headers: ['Host', 'h.example'] })]))).status).toBe(204);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data).toMatchObject({ path: '/no-ip', clientIp: null });
  });

  it('takes the scheme from the snapshot alone: https as sent, http when empty whatever X-Forwarded-Proto it carries', async () => {
    // The plugin already folds X-Forwarded-Proto into `scheme` (traefik-plugin/frame.go); an empty one means none.
    const batch = Buffer.concat([
      header('r-scheme'),
      get('/tls', { scheme: 'https', headers: ['Host', 'h.example'] }),
      get('/empty', { scheme: '', headers: ['Host', 'h.example', 'X-Forwarded-Proto', 'https'] }),
    ]);
    expect((await post(batch)).status).toBe(204);
    const events = await tap.waitForEvents(2);
    expect(events.map((e) => [e.event.data.path, e.event.data.scheme]).sort()).toEqual([['/empty', 'http'], ['/tls', 'https']]);
  });
});

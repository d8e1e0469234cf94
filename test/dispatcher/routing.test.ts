import { createHash } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import type { HttpReceiver, ReceivedRequest } from '../../tools/stack/http-receiver.ts';
import { send, startTap } from '../ingress-tap/tap-harness.ts';
import { makeEvent, metric, PREFIX, publish, startDispatcher, testConfig, useDispatcherFixture, type RunningDispatcher } from './harness.ts';

const { nats, receiver, defer } = useDispatcherFixture();

async function dispatcher(...args: Parameters<typeof startDispatcher>): Promise<RunningDispatcher> {
  const d = await startDispatcher(...args);
  defer(() => d.close());
  return d;
}

const eventOf = (q: ReceivedRequest): MirrorEvent => JSON.parse(q.body.toString()) as MirrorEvent;
const received = (r: HttpReceiver): MirrorEvent[] => r.requests.map(eventOf);
/** Every event `r` has received, once it has at least `count`. */
const waitForEvents = async (r: HttpReceiver, count: number): Promise<MirrorEvent[]> => (await r.waitFor(count)).map(eventOf);

describe('routing', () => {
  it('posts each matching event to the watchURL path as CloudEvents JSON', async () => {
    const r = await receiver();
    const d = await dispatcher(nats.url, testConfig({ targets: [{ name: 'a', watchURL: `${r.url}/hooks/in?x=1`, methods: ['*'] }] }));
    const event = makeEvent({ body: 'hello' });
    await publish(d.nc, event);
    const [req] = await r.waitFor(1);
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/hooks/in?x=1');
    expect(req?.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    expect(req?.headers['webhook-id']).toBe(event.id);
    expect(JSON.parse(req?.body.toString() ?? '')).toEqual(event);
  });

  it('sends a target only the methods, hosts and path prefixes it asked for', async () => {
    const r = await receiver();
    const d = await dispatcher(
      nats.url,
      testConfig({
        targets: [{ name: 'a', watchURL: r.url, methods: ['POST', 'PUT'], hosts: ['api.example.com', '*.shop.example'], pathPrefixes: ['/v1/'] }],
      }),
    );
    const wanted = [
      makeEvent({ method: 'POST', host: 'api.example.com', path: '/v1/orders' }),
      makeEvent({ method: 'PUT', host: 'eu.shop.example', path: '/v1/cart' }),
    ];
    const unwanted = [
      makeEvent({ method: 'GET', host: 'api.example.com', path: '/v1/orders' }),
      makeEvent({ method: 'POST', host: 'other.example.com', path: '/v1/orders' }),
      makeEvent({ method: 'POST', host: 'shop.example', path: '/v1/orders' }),
      makeEvent({ method: 'POST', host: 'api.example.com', path: '/v2/orders' }),
    ];
    await publish(d.nc, ...unwanted, ...wanted);
    await r.waitFor(2);
    // A later marker that matches proves the unwanted ones had their chance to arrive first.
    const marker = makeEvent({ method: 'POST', host: 'api.example.com', path: '/v1/marker' });
    await publish(d.nc, marker);
    await r.waitFor(3);
    expect(received(r).map((e) => e.id).sort()).toEqual([...wanted, marker].map((e) => e.id).sort());
    expect(await metric(d.metrics, 'request_mirror_dispatcher_events_received_total', { target: 'a' })).toBe(3);
  });

  it('gives each target only its own cookies and revealed headers', async () => {
    const ra = await receiver();
    const rb = await receiver();
    const d = await dispatcher(
      nats.url,
      testConfig({
        targets: [
          { name: 'a', watchURL: ra.url, methods: ['*'], cookieNames: ['session'], revealHeaders: ['authorization'] },
          { name: 'b', watchURL: rb.url, methods: ['*'], cookieNames: ['theme'] },
        ],
      }),
    );
    const event = makeEvent({
      headers: { authorization: ['Bearer s3cret'], cookie: ['session=abc; theme=dark'], 'x-trace': ['1'] },
      redactedHeaders: ['proxy-authorization'],
      cookies: { session: 'abc', theme: 'dark' },
    });
    await publish(d.nc, event);
    const [a] = await waitForEvents(ra, 1);
    const [b] = await waitForEvents(rb, 1);
    expect(a?.data.headers).toEqual({ authorization: ['Bearer s3cret'], 'x-trace': ['1'] });
    expect(a?.data.cookies).toEqual({ session: 'abc' });
    expect(a?.data.redactedHeaders.sort()).toEqual(['cookie', 'proxy-authorization']);
    expect(b?.data.headers).toEqual({ 'x-trace': ['1'] });
    expect(b?.data.cookies).toEqual({ theme: 'dark' });
    expect(b?.data.redactedHeaders.sort()).toEqual(['authorization', 'cookie', 'proxy-authorization']);
    expect(JSON.stringify(b)).not.toContain('s3cret');
  });

  it('cuts the body to each target maxBodyBytes in bytes, keeping UTF-8 whole', async () => {
    const r0 = await receiver();
    const r4 = await receiver();
    const rAll = await receiver();
    const d = await dispatcher(
      nats.url,
      testConfig({
        targets: [
          { name: 'none', watchURL: r0.url, methods: ['*'], maxBodyBytes: 0 },
          { name: 'four', watchURL: r4.url, methods: ['*'], maxBodyBytes: 4 },
          { name: 'all', watchURL: rAll.url, methods: ['*'] },
        ],
      }),
    );
    // "héllo": h(1) é(2) l l o — a cut at 4 bytes lands after "hél", at 2 it would split é.
    await publish(d.nc, makeEvent({ body: 'héllo' }), makeEvent({ body: Buffer.from([0xff, 0x00, 0xfe, 0x01, 0x02, 0x03]) }));
    const [n0] = await waitForEvents(r0, 2);
    const [t1, t2] = await waitForEvents(r4, 2);
    const [a1] = await waitForEvents(rAll, 2);
    expect(n0?.data.body).toBeNull();
    expect(t1?.data.body).toMatchObject({ encoding: 'utf8', data: 'hél', capturedBytes: 4, truncated: true, receivedBytes: 6 });
    expect(t1?.data.body?.sha256).toBe(createHash('sha256').update('hél').digest('hex'));
    expect(t2?.data.body).toMatchObject({ encoding: 'base64', data: Buffer.from([0xff, 0x00, 0xfe, 0x01]).toString('base64'), capturedBytes: 4, truncated: true });
    expect(a1?.data.body).toMatchObject({ data: 'héllo', capturedBytes: 6, truncated: false });
  });

  it('signs every delivery with each secret so the standardwebhooks verifier accepts either', async () => {
    const r = await receiver();
    const oldSecret = `whsec_${Buffer.from('old-secret-key-0123456789').toString('base64')}`;
    const newSecret = `whsec_${Buffer.from('new-secret-key-9876543210').toString('base64')}`;
    const d = await dispatcher(
      nats.url,
      testConfig({ targets: [{ name: 'a', watchURL: r.url, methods: ['*'], secrets: [{ env: 'OLD' }, { env: 'NEW' }] }] }),
      { OLD: oldSecret, NEW: newSecret },
    );
    await publish(d.nc, makeEvent({ body: 'signed' }));
    const [req] = await r.waitFor(1);
    const headers = req?.headers as Record<string, string>;
    expect(headers['webhook-signature']?.split(' ')).toHaveLength(2);
    const body = req?.body.toString() ?? '';
    expect(new Webhook(oldSecret).verify(body, headers)).toMatchObject({ type: 'io.request-mirror.request.v1' });
    expect(new Webhook(newSecret).verify(body, headers)).toMatchObject({ type: 'io.request-mirror.request.v1' });
    const other = `whsec_${Buffer.from('someone-else').toString('base64')}`;
    expect(() => new Webhook(other).verify(body, headers)).toThrow();
  });

  it('counts and skips messages that are not valid events', async () => {
    const r = await receiver();
    const d = await dispatcher(nats.url, testConfig({ targets: [{ name: 'a', watchURL: r.url, methods: ['*'] }] }));
    d.nc.publish('rm-test.requests.POST', 'not json');
    d.nc.publish('rm-test.requests.POST', JSON.stringify({ specversion: '1.0' }));
    const good = makeEvent();
    await publish(d.nc, good);
    await r.waitFor(1);
    expect(await metric(d.metrics, 'request_mirror_dispatcher_invalid_events_total')).toBe(2);
    expect(received(r).map((e) => e.id)).toEqual([good.id]);
  });
});

describe('routing events the real tap published', () => {
  it('delivers what the tap published: unchanged to a target that may see all of it, cut down for one that may not', async () => {
    const all = await receiver();
    const narrow = await receiver();
    const targets = [
      { name: 'all', watchURL: all.url, methods: ['*'], cookieNames: ['session', 'theme'], revealHeaders: ['authorization'] },
      { name: 'narrow', watchURL: narrow.url, methods: ['*'], maxBodyBytes: 4 },
    ];
    const tap = await startTap({ natsUrl: nats.url, config: { nats: { subjectPrefix: PREFIX }, targets } });
    defer(() => tap.close());
    await dispatcher(nats.url, testConfig({ targets }));
    const res = await send(`${tap.mirrorUrl}/orders?id=7`, {
      method: 'POST',
      headers: { host: 'shop.example', cookie: 'session=s1; theme=dark', authorization: 'Bearer t', 'content-type': 'text/plain' },
      body: 'hello world',
    });
    expect(res.status).toBe(200);
    const [published] = await tap.waitForEvents(1);
    if (!published) throw new Error('the tap published nothing');
    expect(published.event.data).toMatchObject({ host: 'shop.example', path: '/orders', cookies: { session: 's1', theme: 'dark' }, headers: { authorization: ['Bearer t'] } });

    const [toAll] = await all.waitFor(1);
    const [toNarrow] = await narrow.waitFor(1);
    if (!toAll || !toNarrow) throw new Error('a target received nothing');
    expect(eventOf(toAll)).toEqual(published.event);
    expect(toAll.body.length).toBe(published.size);
    expect(toAll.headers['webhook-id']).toBe(res.headers['x-request-mirror-id']);

    const cut = eventOf(toNarrow);
    expect(cut.id).toBe(published.event.id);
    expect(cut.data.cookies).toEqual({});
    expect(cut.data.headers.authorization).toBeUndefined();
    expect(cut.data.redactedHeaders).toEqual(expect.arrayContaining(['authorization', 'cookie']));
    expect(cut.data.body).toMatchObject({ data: 'hell', capturedBytes: 4, receivedBytes: 11, declaredLength: 11, truncated: true });
    const { method, scheme, host, path, query, clientIp, attachment } = published.event.data;
    expect(cut.data).toMatchObject({ method, scheme, host, path, query, clientIp, attachment });
    expect(cut.data.headers['content-type']).toEqual(['text/plain']);
  });
});

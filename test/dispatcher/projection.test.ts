import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Body, MirrorEvent } from '../../contract/event.ts';
import { cutBody, isUnchangedFor, projectEvent } from '../../dispatcher/projection.ts';
import { mapOf, PROTOTYPE_NAMES } from '../support/prototype-names.ts';
import { makeEvent, publish, startDispatcher, testConfig, useDispatcherFixture } from './harness.ts';

const { nats, receiver, defer } = useDispatcherFixture();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('projection', () => {
  it('never exceeds maxBodyBytes, keeps a prefix of the bytes, and stays valid UTF-8', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), fc.integer({ min: 1, max: 200 }), (text, max) => {
        const body = makeEvent({ body: text }).data.body;
        const cut = cutBody(body, max);
        const original = Buffer.from(text);
        const bytes = Buffer.from(cut?.data ?? '', 'utf8');
        expect(cut?.encoding).toBe('utf8');
        expect(bytes.length).toBe(cut?.capturedBytes);
        expect(bytes.length).toBeLessThanOrEqual(Math.max(max, 0));
        expect(bytes.length).toBeGreaterThanOrEqual(Math.min(original.length, max) - 3);
        expect(original.subarray(0, bytes.length).equals(bytes)).toBe(true);
        expect(cut?.truncated).toBe(bytes.length < original.length);
        expect(cut?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      }),
    );
  });

  it('cuts a base64 body by bytes', () => {
    const raw = Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0xfb]);
    const cut = cutBody(makeEvent({ body: raw }).data.body, 2);
    expect(cut).toMatchObject({ encoding: 'base64', data: raw.subarray(0, 2).toString('base64'), capturedBytes: 2, truncated: true });
  });

  it('reuses the published event only when nothing has to be removed for the target', () => {
    const plain = makeEvent({ body: 'abc' });
    const settings = { cookieNames: [], revealHeaders: [], maxBodyBytes: 10 };
    expect(isUnchangedFor(plain, settings)).toBe(true);
    expect(isUnchangedFor(plain, { ...settings, maxBodyBytes: 2 })).toBe(false);
    expect(isUnchangedFor(plain, { ...settings, maxBodyBytes: 0 })).toBe(false);
    const withSecrets = makeEvent({ headers: { authorization: ['x'] }, cookies: { a: '1' } });
    expect(isUnchangedFor(withSecrets, settings)).toBe(false);
    expect(isUnchangedFor(withSecrets, { ...settings, cookieNames: ['a'], revealHeaders: ['authorization'] })).toBe(true);
    expect(projectEvent(withSecrets, settings).data).toMatchObject({ headers: {}, cookies: {}, redactedHeaders: ['authorization'] });
  });

  it('does not reuse the published event for a target that may not see one of its secret headers, or one of its cookies', () => {
    const settings = { cookieNames: [], revealHeaders: [], maxBodyBytes: 10 };
    const secretHeader = makeEvent({ headers: { 'x-a': ['1'], 'proxy-authorization': ['x'] } });
    expect(isUnchangedFor(secretHeader, settings)).toBe(false);
    expect(isUnchangedFor(secretHeader, { ...settings, revealHeaders: ['proxy-authorization'] })).toBe(true);
    const cookie = makeEvent({ cookies: { kept: '1', other: '2' } });
    expect(isUnchangedFor(cookie, { ...settings, cookieNames: ['kept'] })).toBe(false);
    expect(isUnchangedFor(cookie, { ...settings, cookieNames: ['kept', 'other'] })).toBe(true);
  });

  it('does not reuse an event with an empty body for a target that takes no body', () => {
    const empty = makeEvent({ body: '' });
    expect(isUnchangedFor(empty, { cookieNames: [], revealHeaders: [], maxBodyBytes: 0 })).toBe(false);
    expect(projectEvent(empty, { cookieNames: [], revealHeaders: [], maxBodyBytes: 0 }).data.body).toBeNull();
    expect(isUnchangedFor(empty, { cookieNames: [], revealHeaders: [], maxBodyBytes: 1 })).toBe(true);
  });
});

describe('per-target body cut through a running dispatcher', () => {
  // One target per limit 0..8; every event goes to all of them. Expected lengths are written from the characters'
  // byte lengths: the last whole character within the limit for text, exactly the limit for binary.
  const LIMITS = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const TEXT: [string, string, number][] = [
    ['1-byte', 'abcdefghij', 1],
    ['2-byte', 'ééééé', 2],
    ['2-byte after one ASCII byte', 'xééééé', 2],
    ['3-byte', '€€€€', 3],
    ['3-byte after one ASCII byte', 'x€€€', 3],
    ['3-byte after two ASCII bytes', 'xx€€€', 3],
    ['4-byte', '😀😀😀', 4],
    ['4-byte after one ASCII byte', 'x😀😀', 4],
    ['4-byte after two ASCII bytes', 'xx😀😀', 4],
    ['4-byte after three ASCII bytes', 'xxx😀😀', 4],
  ];
  const BINARY: [string, Buffer][] = [
    ['0xff first', Buffer.from([0xff, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80])],
    ['PNG signature', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xc3])],
  ];

  function leadOf(text: string): number {
    return text.length - text.replace(/^x+/, '').length;
  }

  it('cuts every text body back to a whole character and every binary body at exactly each target\'s maxBodyBytes', async () => {
    const r = await receiver();
    const d = await startDispatcher(
      nats.url,
      testConfig({ targets: LIMITS.map((max) => ({ name: `max${max}`, watchURL: `${r.url}/max${max}`, methods: ['*'], maxBodyBytes: max })) }),
    );
    defer(() => d.close());
    const cases = [
      ...TEXT.map(([name, text, size]) => ({ name, sent: Buffer.from(text), keep: (max: number) => {
        const lead = Math.min(leadOf(text), max);
        return Math.min(Buffer.byteLength(text), lead + Math.floor((max - lead) / size) * size);
      } })),
      ...BINARY.map(([name, sent]) => ({ name, sent, keep: (max: number) => Math.min(sent.length, max) })),
    ];
    const events = cases.map((c) => makeEvent({ path: `/${encodeURIComponent(c.name)}`, body: c.sent }));
    await publish(d.nc, ...events);
    const all = await r.waitFor(events.length * LIMITS.length);
    const got = new Map(all.map((q) => {
      const event = JSON.parse(q.body.toString()) as MirrorEvent;
      return [`${q.url} ${event.data.path}`, event.data.body];
    }));
    for (const [i, c] of cases.entries()) {
      for (const max of LIMITS) {
        const body = got.get(`/max${max} ${events[i]?.data.path ?? ''}`);
        const what = `${c.name} at maxBodyBytes ${max}`;
        if (max === 0) {
          expect(body, what).toBeNull();
          continue;
        }
        const kept = c.sent.subarray(0, c.keep(max));
        const utf8 = Buffer.from(kept.toString('utf8')).equals(kept);
        expect(body, what).toEqual<Body>({
          encoding: utf8 ? 'utf8' : 'base64',
          data: kept.toString(utf8 ? 'utf8' : 'base64'),
          capturedBytes: kept.length,
          declaredLength: c.sent.length,
          receivedBytes: c.sent.length,
          truncated: kept.length < c.sent.length,
          interrupted: false,
          sha256: sha256(kept),
        });
      }
    }
  });

  it.each([
    ['ASCII', 'abcde'],
    ['ending in a 2-byte character', 'abcé'],
    ['ending in a 3-byte character', 'ab€'],
    ['ending in a 4-byte character', 'a😀'],
    ['binary', Buffer.from([0xff, 0, 1, 2, 3])],
  ])('passes a body of exactly maxBodyBytes unchanged and cuts one byte more (%s)', (_name, sent) => {
    const bytes = Buffer.from(sent);
    const exact = makeEvent({ body: bytes });
    expect(isUnchangedFor(exact, { cookieNames: [], revealHeaders: [], maxBodyBytes: 5 })).toBe(true);
    expect(cutBody(exact.data.body, 5)).toBe(exact.data.body);
    const over = makeEvent({ body: Buffer.concat([bytes, Buffer.from('!')]) });
    expect(isUnchangedFor(over, { cookieNames: [], revealHeaders: [], maxBodyBytes: 5 })).toBe(false);
    expect(cutBody(over.data.body, 5)).toMatchObject({ capturedBytes: 5, truncated: true, sha256: sha256(bytes) });
  });

  it('publishes a binary body whose kept bytes are text as utf8', () => {
    const sent = Buffer.concat([Buffer.from('héllo'), Buffer.from([0xc3, 0x28])]);
    expect(cutBody(makeEvent({ body: sent }).data.body, 7)).toMatchObject({ encoding: 'utf8', data: 'héllo', capturedBytes: 6 });
  });
});

describe('projection of headers and cookies named like Object.prototype members', () => {
  const headerNames = PROTOTYPE_NAMES.map((n) => n.toLowerCase());
  const event = () =>
    makeEvent({
      headers: mapOf([...headerNames, 'authorization'], (n) => [`h-${n}`]),
      cookies: mapOf([...PROTOTYPE_NAMES, 'other'], (n) => `c-${n}`),
      body: 'abcdef',
    });

  it('keeps every such name a target allows and only those', () => {
    const projected = projectEvent(event(), { cookieNames: [...PROTOTYPE_NAMES], revealHeaders: [], maxBodyBytes: 3 });
    expect(Object.keys(projected.data.headers).sort()).toEqual([...headerNames].sort());
    expect(projected.data.headers['__proto__']).toEqual(['h-__proto__']);
    expect(Object.keys(projected.data.cookies).sort()).toEqual([...PROTOTYPE_NAMES].sort());
    expect(projected.data.cookies['__proto__']).toBe('c-__proto__');
    const none = projectEvent(event(), { cookieNames: ['other'], revealHeaders: ['authorization'], maxBodyBytes: 3 });
    expect(Object.keys(none.data.cookies)).toEqual(['other']);
    expect(Object.keys(none.data.headers).sort()).toEqual([...headerNames, 'authorization'].sort());
  });

  it('delivers every such name to each target that allows it, through a running dispatcher', async () => {
    const r = await receiver();
    const half = PROTOTYPE_NAMES.filter((_, i) => i % 2 === 0);
    const d = await startDispatcher(
      nats.url,
      testConfig({
        targets: [
          // Allows every cookie the event has: the published bytes go out unchanged.
          { name: 'all', watchURL: `${r.url}/all`, methods: ['*'], cookieNames: [...PROTOTYPE_NAMES, 'other'], revealHeaders: ['authorization'] },
          // Each of these has something removed, so the event is narrowed for it.
          { name: 'names', watchURL: `${r.url}/names`, methods: ['*'], cookieNames: [...PROTOTYPE_NAMES] },
          { name: 'half', watchURL: `${r.url}/half`, methods: ['*'], cookieNames: half, maxBodyBytes: 2 },
        ],
      }),
    );
    defer(() => d.close());
    await publish(d.nc, event());
    const got = new Map((await r.waitFor(3)).map((q) => [q.url, (JSON.parse(q.body.toString()) as MirrorEvent).data]));
    expect(Object.keys(got.get('/all')?.cookies ?? {}).sort()).toEqual([...PROTOTYPE_NAMES, 'other'].sort());
    expect(Object.keys(got.get('/names')?.cookies ?? {}).sort()).toEqual([...PROTOTYPE_NAMES].sort());
    expect(Object.keys(got.get('/half')?.cookies ?? {}).sort()).toEqual([...half].sort());
    for (const url of ['/names', '/half']) {
      expect(Object.keys(got.get(url)?.headers ?? {}).sort(), url).toEqual([...headerNames].sort());
      expect(got.get(url)?.redactedHeaders, url).toEqual(['authorization']);
      expect(got.get(url)?.headers['__proto__'], url).toEqual(['h-__proto__']);
      expect(got.get(url)?.headers['constructor'], url).toEqual(['h-constructor']);
    }
    expect(got.get('/half')?.cookies['__proto__']).toBe(half.includes('__proto__') ? 'c-__proto__' : undefined);
  });
});

describe('projection of latin1Headers', () => {
  it('names only the Latin-1 headers and cookies the target still receives', () => {
    const event = makeEvent({
      headers: { 'x-a': ['\u00e9'], authorization: ['\u00ff'], 'x-b': ['b'] },
      latin1Headers: ['x-a', 'authorization', 'cookie'],
      cookies: { name: 'caf\u00e9' },
    });
    expect(projectEvent(event, { cookieNames: [], revealHeaders: [], maxBodyBytes: 10 }).data.latin1Headers).toEqual(['x-a']);
    expect(projectEvent(event, { cookieNames: ['name'], revealHeaders: ['authorization'], maxBodyBytes: 1 }).data.latin1Headers).toEqual([
      'x-a',
      'authorization',
      'cookie',
    ]);
    const none = projectEvent({ ...event, data: { ...event.data, latin1Headers: ['authorization'] } }, { cookieNames: [], revealHeaders: [], maxBodyBytes: 10 });
    expect('latin1Headers' in none.data).toBe(false);
    // Its cookies but not the secret header: `cookie` stays named, `authorization` does not.
    expect(projectEvent(event, { cookieNames: ['name'], revealHeaders: [], maxBodyBytes: 10 }).data.latin1Headers).toEqual(['x-a', 'cookie']);
  });

  it('adds no latin1Headers to an event that had none', () => {
    const plain = makeEvent({ headers: { 'x-a': ['a'] }, cookies: { name: 'v' } });
    expect('latin1Headers' in projectEvent(plain, { cookieNames: ['name'], revealHeaders: [], maxBodyBytes: 10 }).data).toBe(false);
  });
});

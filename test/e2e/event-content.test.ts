import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { startStack, waitForEvent, type Stack } from '../../tools/stack/stack.ts';
import { PROTOTYPE_NAMES } from '../support/prototype-names.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';
import { receiverOf, useStack } from './fixture.ts';
import { sendHead } from './raw-http.ts';
import { reportOnFailure } from './report.ts';
import { attachmentRoutes, KiB, MiB } from './routes.ts';

// What real clients put in a request, through real Traefik (forwardAuth and Mirroring), the tap, NATS and the
// dispatcher, as the webhook receives it: bodies cut at a limit, header values sent as raw bytes, and header and
// cookie names that a plain object would lose.

const s = useStack({
  receivers: ['five', 'wide', 'names', 'other'],
  targets: (r) => [
    // Alone on /…/cut/ the tap's own limit is 5; on /…/cut/shared/ `wide` raises it and the dispatcher cuts for `five`.
    { name: 'five', watchURL: `${r.five?.url ?? ''}/`, methods: ['*'], maxBodyBytes: 5, pathPrefixes: ['/mirror/cut/', '/body/cut/'] },
    { name: 'wide', watchURL: `${r.wide?.url ?? ''}/`, methods: ['*'], maxBodyBytes: MiB, pathPrefixes: ['/mirror/cut/shared/', '/body/cut/shared/'] },
    { name: 'names', watchURL: `${r.names?.url ?? ''}/`, methods: ['*'], cookieNames: [...PROTOTYPE_NAMES], pathPrefixes: ['/meta/h/', '/mirror/h/'] },
    // Makes the tap keep a cookie `names` may not see, so the dispatcher narrows the event for `names`.
    { name: 'other', watchURL: `${r.other?.url ?? ''}/`, methods: ['*'], cookieNames: ['other'], pathPrefixes: ['/meta/h/', '/mirror/h/'] },
  ],
  traefik: (b) => attachmentRoutes(b, { maxBodySize: 64 * KiB }),
});
const hook = (name: string): HttpReceiver => receiverOf(s(), name);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

/** Sends raw bytes to Traefik's web entrypoint: undici and fetch refuse non-ASCII header values. */
async function sendRaw(path: string, headers: readonly (readonly [string, Buffer])[], stack: Stack = s(), host = 'app.example.test'): Promise<void> {
  const request = Buffer.concat([
    Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n`),
    ...headers.map(([name, value]) => Buffer.concat([Buffer.from(`${name}: `), value, Buffer.from('\r\n')])),
    Buffer.from('Connection: close\r\n\r\n'),
  ]);
  expect(await sendHead(stack, request)).toBe(201);
}

describe('body cut through Traefik', () => {
  // Expected bytes kept at a limit of 5, written from the characters' byte lengths.
  const CASES: [string, Buffer, number][] = [
    ['ééé (issue 11)', bytes('ééé'), 4],
    ['ASCII one byte over', bytes('abcdef'), 5],
    ['exactly the limit, ending in é', bytes('abcé'), 5],
    ['a 2-byte character straddling the limit', bytes('abcdé'), 4],
    ['a 3-byte character ending at the limit', bytes('ab€€'), 5],
    ['a 3-byte character straddling the limit', bytes('abc€'), 3],
    ['a 4-byte character ending at the limit', bytes('a😀😀'), 5],
    ['a 4-byte character straddling the limit', bytes('ab😀'), 2],
    ['binary', bytes([0xff, 0xd8, 0xff, 0xe0, 0xc3, 0xa9]), 5],
  ];

  it.each(['/mirror/cut/', '/body/cut/', '/mirror/cut/shared/', '/body/cut/shared/'])(
    'keeps whole characters of a text body and exactly the limit of a binary one, at %s',
    async (prefix) => {
      for (const [i, [name, sent, keep]] of CASES.entries()) {
        const path = `${prefix}${i}`;
        const res = await s().send(path, { method: 'POST', body: sent });
        expect(res.status, name).toBe(201);
        const event = await waitForEvent(hook('five'), (e) => e.data.path === path);
        const kept = sent.subarray(0, keep);
        const utf8 = Buffer.from(kept.toString('utf8')).equals(kept);
        expect(event.data.body, name).toMatchObject({
          encoding: utf8 ? 'utf8' : 'base64',
          data: kept.toString(utf8 ? 'utf8' : 'base64'),
          capturedBytes: keep,
          receivedBytes: sent.length,
          truncated: keep < sent.length,
          sha256: sha256(kept),
        });
      }
    },
  );
});

describe('header values and names through Traefik', () => {
  it.each(['/meta/h/', '/mirror/h/'])('decodes UTF-8 header values and keeps other bytes as Latin-1, at %s', async (prefix) => {
    const path = `${prefix}values`;
    const utf8 = bytes('résumé.pdf');
    const latin1 = bytes('r', [0xe9], 'sum', [0xe9], '.pdf');
    const emoji = bytes('😀 日本語');
    await sendRaw(path, [['X-Filename', utf8], ['X-Latin1', latin1], ['X-Emoji', emoji]]);
    const event = await waitForEvent(hook('names'), (e) => e.data.path === path);
    expect(event.data.headers['x-filename']).toEqual(['résumé.pdf']);
    expect(event.data.headers['x-emoji']).toEqual(['😀 日本語']);
    expect(event.data.latin1Headers).toEqual(['x-latin1']);
    expect(Buffer.from(event.data.headers['x-latin1']?.[0] ?? '', 'latin1').equals(latin1)).toBe(true);
  });

  it.each(['/meta/h/', '/mirror/h/'])('delivers headers and cookies named like Object.prototype members, at %s', async (prefix) => {
    const path = `${prefix}names`;
    const cookie = [...PROTOTYPE_NAMES, 'other'].map((n) => `${n}=c-${n}`).join('; ');
    await sendRaw(path, [...PROTOTYPE_NAMES.map((n) => [n, bytes(`h-${n}`)] as const), ['Cookie', bytes(cookie)]]);
    const event: MirrorEvent = await waitForEvent(hook('names'), (e) => e.data.path === path);
    for (const name of PROTOTYPE_NAMES) {
      expect(Object.hasOwn(event.data.headers, name.toLowerCase()), `header ${name}`).toBe(true);
      expect(event.data.headers[name.toLowerCase()], `header ${name}`).toEqual([`h-${name}`]);
      expect(Object.hasOwn(event.data.cookies, name), `cookie ${name}`).toBe(true);
      expect(event.data.cookies[name], `cookie ${name}`).toBe(`c-${name}`);
    }
    expect(Object.keys(event.data.cookies)).not.toContain('other');
    const narrowed = await waitForEvent(hook('other'), (e) => e.data.path === path);
    expect(Object.keys(narrowed.data.cookies)).toEqual(['other']);
  });
});

describe('header values and names through Traefik, forwardAuth over HTTP/2 (forward-auth-h2.yml)', () => {
  let cert: TestCertificate | undefined;
  let h2: Stack | undefined;
  beforeAll(async () => {
    cert = makeCertificate(['DNS:ingress-tap']);
    const c = cert;
    h2 = await startStack({
      receivers: ['names'],
      targets: (r) => [{ name: 'names', watchURL: `${r.names?.url ?? ''}/`, methods: ['*'], cookieNames: [...PROTOTYPE_NAMES] }],
      tapForwardAuthTls: { certFile: c.certFile, keyFile: c.keyFile },
      traefik: (b) => ({
        files: { 'forward-auth-h2.yml': localizeExample(readExample('traefik/forward-auth-h2.yml'), b).replace('/etc/traefik/request-mirror/ca.pem', c.certFile) },
        routers: ['app'],
      }),
    });
  }, 120_000);
  afterAll(async () => {
    await h2?.close();
    cert?.remove();
  });
  reportOnFailure(() => h2);
  const stack = (): Stack => {
    if (!h2) throw new Error('stack did not start');
    return h2;
  };

  it('decodes UTF-8 values, keeps other bytes as Latin-1 and every name', async () => {
    const latin1 = bytes('r', [0xe9], 'sum', [0xe9], '.pdf');
    const cookie = PROTOTYPE_NAMES.map((n) => `${n}=c-${n}`).join('; ');
    await sendRaw(
      '/h2/values',
      [['X-Filename', bytes('résumé.pdf')], ['X-Latin1', latin1], ...PROTOTYPE_NAMES.map((n) => [n, bytes(`h-${n}`)] as const), ['Cookie', bytes(cookie)]],
      stack(),
      'app.localhost',
    );
    const event = await waitForEvent(receiverOf(stack(), 'names'), (e) => e.data.path === '/h2/values');
    const metrics = await (await fetch(`${stack().tapAdminUrl}/metrics`)).text();
    const h2Connections = metrics.split('\n').filter((l) => l.startsWith('request_mirror_tap_connections_total{') && l.includes('listener="forwardAuth"') && l.includes('protocol="h2"'));
    // The request did reach the tap over HTTP/2.
    expect(h2Connections.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)).toBeGreaterThan(0);
    expect(event.data.headers['x-filename']).toEqual(['résumé.pdf']);
    expect(event.data.latin1Headers).toEqual(['x-latin1']);
    expect(Buffer.from(event.data.headers['x-latin1']?.[0] ?? '', 'latin1').equals(latin1)).toBe(true);
    for (const name of PROTOTYPE_NAMES) {
      expect(event.data.headers[name.toLowerCase()], `header ${name}`).toEqual([`h-${name}`]);
      expect(event.data.cookies[name], `cookie ${name}`).toBe(`c-${name}`);
    }
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MirrorEvent } from '../../contract/event.ts';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import { eventsOf, startStack, waitForEvent, type Stack } from '../../tools/stack/stack.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';
import { tapMetric } from './fixture.ts';
import { sendHead } from './raw-http.ts';
import { reportOnFailure } from './report.ts';
import { attachmentRoutes, KiB, MiB } from './routes.ts';

// No limit of the tap's own parsers is tighter than what Traefik forwards. Traefik's entrypoint takes a request head
// (request line and headers) of up to http.maxHeaderBytes (Go's default, 1 MiB) plus the 4096 bytes of bufio slack
// Go's server adds (net/http server.go, initialReadLimitSize), and no limit on the number of fields. Each case goes
// through real Traefik to the tap over forwardAuth (HTTP/1.1 and HTTP/2) and Mirroring.

const TRAEFIK_HEAD_LIMIT = MiB + 4096;

let cert: TestCertificate;
let h1: Stack | undefined;
let h2: Stack | undefined;

beforeAll(async () => {
  cert = makeCertificate(['DNS:ingress-tap']);
  const common = {
    receivers: ['hook'],
    targets: (r: Stack['receivers']) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'], maxBodyBytes: 0 }],
  };
  h1 = await startStack({ ...common, traefik: (b) => attachmentRoutes(b, { maxBodySize: MiB }) });
  h2 = await startStack({
    ...common,
    tapForwardAuthTls: { certFile: cert.certFile, keyFile: cert.keyFile },
    traefik: (b) => ({
      files: { 'forward-auth-h2.yml': localizeExample(readExample('traefik/forward-auth-h2.yml'), b).replace('/etc/traefik/request-mirror/ca.pem', cert.certFile) },
      routers: ['app'],
    }),
  });
}, 120_000);
afterAll(async () => {
  await h1?.close();
  await h2?.close();
  cert.remove();
});
reportOnFailure(() => h1);
reportOnFailure(() => h2);

function started(stack: Stack | undefined): Stack {
  if (!stack) throw new Error('stack did not start');
  return stack;
}

/** A GET head of exactly `size` bytes: `fields`, then `x-pad-N` headers of at most 16 KiB that fill the rest. */
function headOf(path: string, host: string, size: number, fields: readonly [string, string][] = []): string {
  let head = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}`;
  for (let n = 0; ; n++) {
    const overhead = Buffer.byteLength(`x-pad-${n}: \r\n`);
    const left = size - Buffer.byteLength(head) - 2 - overhead;
    if (left < 0) throw new Error(`a head of ${size} bytes cannot hold its fields`);
    if (left <= 16 * KiB) return `${head}x-pad-${n}: ${'p'.repeat(left)}\r\n\r\n`;
    head += `x-pad-${n}: ${'p'.repeat(16 * KiB)}\r\n`;
  }
}

const hook = (stack: Stack) => stack.receivers.hook ?? fail();
const digest = (headers: Record<string, string[] | undefined>) => createHash('sha256').update(JSON.stringify(Object.entries(headers).sort())).digest('hex');
const sentFields = (fields: readonly [string, string][]) => Object.fromEntries(fields.map(([n, v]) => [n, [v]]));
const receivedFields = (event: MirrorEvent, prefix: string) => Object.fromEntries(Object.entries(event.data.headers).filter(([n]) => n.startsWith(prefix)));

/**
 * The largest head Traefik's entrypoint takes for this request line, found by bisection: Go's server reads at most
 * maxHeaderBytes + 4096 bytes for the head, give or take how its buffered reader meets the request line.
 */
async function traefikHeadLimit(stack: Stack, path: string, host: string): Promise<number> {
  let accepted = MiB;
  let refused = MiB + 64 * KiB;
  expect(await sendHead(stack, headOf(path, host, accepted))).toBe(201);
  expect(await sendHead(stack, headOf(path, host, refused))).toBe(431);
  while (refused - accepted > 1) {
    const mid = (accepted + refused) >> 1;
    if ((await sendHead(stack, headOf(path, host, mid))) === 431) refused = mid;
    else accepted = mid;
  }
  return accepted;
}

describe.each([
  ['forwardAuth over HTTP/1.1', '/meta'],
  ['Mirroring', '/mirror'],
])('request heads through %s', (_name, prefix) => {
  const host = 'app.example';

  it('mirrors every one of 5000 header fields', async () => {
    const path = `${prefix}/fields-5000`;
    const fields = Array.from({ length: 5000 }, (_, i): [string, string] => [`x-field-${i}`, String(i)]);
    expect(await sendHead(started(h1), headOf(path, host, 120 * KiB, fields))).toBe(201);
    const event = await waitForEvent(hook(started(h1)), (e) => e.data.path === path);
    expect(digest(receivedFields(event, 'x-field-'))).toBe(digest(sentFields(fields)));
  });

  it("mirrors every header of the largest head Traefik takes, and leaves one byte more to Traefik's 431", async () => {
    const stack = started(h1);
    const path = `${prefix}/head-at-limit`;
    const limit = await traefikHeadLimit(stack, path, host);
    expect(limit).toBeGreaterThanOrEqual(TRAEFIK_HEAD_LIMIT);
    const fields = Array.from({ length: 100 }, (_, i): [string, string] => [`x-big-${i}`, randomBytes(6 * KiB).toString('base64url')]);
    const rejectedBefore = await tapMetric(stack, 'request_mirror_tap_rejected_input_total');
    hook(stack).requests.length = 0;
    const head = headOf(path, host, limit, fields);
    expect(await sendHead(stack, head)).toBe(201);
    const event = await waitForEvent(hook(stack), (e) => e.data.path === path && e.data.headers['x-big-0'] !== undefined);
    expect(digest(receivedFields(event, 'x-big-'))).toBe(digest(sentFields(fields)));
    const pads = [...head.matchAll(/^(x-pad-\d+): (p*)\r$/gm)].map((m): [string, string] => [m[1] ?? '', m[2] ?? '']);
    expect(digest(receivedFields(event, 'x-pad-'))).toBe(digest(sentFields(pads)));
    expect(await sendHead(stack, headOf(`${path}-over`, host, limit + 1 + (`${path}-over`.length - path.length)))).toBe(431);
    expect(await tapMetric(stack, 'request_mirror_tap_rejected_input_total')).toBe(rejectedBefore);
  });

  it("mirrors a URL that fills Traefik's limit", async () => {
    const path = `${prefix}/long-url/${'u'.repeat(MiB)}`;
    const head = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    expect(Buffer.byteLength(head)).toBeLessThanOrEqual(TRAEFIK_HEAD_LIMIT);
    expect(await sendHead(started(h1), head)).toBe(201);
    const event = await waitForEvent(hook(started(h1)), (e) => e.data.path === path);
    expect(event.data.path.length).toBe(path.length);
  });
});

describe('request heads through forwardAuth over HTTP/2', () => {
  const host = 'app.localhost';

  it('mirrors every one of 2000 header fields (Node allows 128 by default)', async () => {
    const path = '/fields-2000';
    const fields = Array.from({ length: 2000 }, (_, i): [string, string] => [`x-field-${i}`, String(i)]);
    expect(await sendHead(started(h2), headOf(path, host, 40 * KiB, fields))).toBe(201);
    const event = await waitForEvent(hook(started(h2)), (e) => e.data.path === path);
    expect(digest(receivedFields(event, 'x-field-'))).toBe(digest(sentFields(fields)));
  });

  // The one limit of the tap tighter than Traefik's, documented in docs/install-traefik.md ("HTTP/2 to the tap"):
  // Node's HTTP/2 would drop the whole connection for one header field over 64 KiB, so the tap advertises 64 KiB
  // and Traefik's client refuses a larger request by itself. That request alone gets Traefik's 500.
  it('gets a 500 from Traefik for a header list over the 64 KiB the tap advertises, and no other request is hurt', async () => {
    const stack = started(h2);
    const path = '/over-64k';
    const results = await Promise.all([
      sendHead(stack, headOf(path, host, 80 * KiB)),
      ...Array.from({ length: 20 }, (_, i) => sendHead(stack, headOf(`/beside-${i}`, host, 1000))),
    ]);
    expect(results).toEqual([500, ...Array<number>(20).fill(201)]);
    for (let i = 0; i < 20; i++) await waitForEvent(hook(stack), (e) => e.data.path === `/beside-${i}`);
    expect(eventsOf(hook(stack).requests).filter((e) => e.data.path === path)).toEqual([]);
  });
});

function fail(): never {
  throw new Error('no hook receiver');
}

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServer } from '../../tools/stack/nats-server.ts';
import { rawExchange, send, startTap, statusCodes, target, type TapHarness } from './tap-harness.ts';

// Whatever arrives, the tap answers 200 (nothing only when no request began), and keeps running.

let nats: NatsServer;
let tap: TapHarness;

beforeAll(async () => {
  nats = await startNatsServer({ maxPayloadBytes: 64 * 1024 });
  tap = await startTap({
    natsUrl: nats.url,
    config: { tap: { maxBodyBytes: 4096 }, targets: [target('all', { cookieNames: ['session', 'a'], revealHeaders: ['authorization'] })] },
  });
});
afterAll(async () => {
  await (tap as TapHarness | undefined)?.close();
  await (nats as NatsServer | undefined)?.stop();
});

const tchar = fc.constantFrom(...'!#$%&\'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.split(''));
const token = fc.string({ unit: tchar, minLength: 1, maxLength: 12 });
const method = fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'PROPFIND', 'PURGE', 'QUERY'), token);
// Any visible ASCII and spaces, percent signs and bytes that are not valid escapes included.
const headerValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 200 }).map((v) => v.trim());
const pathChar = fc.oneof(fc.constantFrom('/', '%', '?', '#', '&', '=', '..', '%zz', '%E0%A4', '%00', ';', '@', ':'), fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)));
const path = fc.array(pathChar, { maxLength: 40 }).map((parts) => `/${parts.join('').replaceAll('#', '%23')}`);
const headers = fc.dictionary(
  fc.oneof(token.map((t) => t.toLowerCase()), fc.constantFrom('cookie', 'authorization', 'x-forwarded-method', 'x-forwarded-uri', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for', 'traceparent', 'content-type')),
  headerValue,
  { maxKeys: 12 },
);
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect', 'host', 'content-length', 'proxy-connection']);

describe('tap under arbitrary input', () => {
  it('answers 200 to arbitrary methods, paths, headers and bodies sent as HTTP', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), method, path, headers, fc.option(fc.uint8Array({ maxLength: 6000 })), async (viaMirror, m, p, h, body) => {
        const clean = Object.fromEntries(Object.entries(h).filter(([k]) => !hopByHop.has(k)));
        const url = `${viaMirror ? tap.mirrorUrl : tap.forwardAuthUrl}${p}`;
        const res = await send(url, { method: m, headers: clean, body: body === null || m === 'HEAD' ? undefined : Buffer.from(body) }).catch(
          (error: unknown) => {
            // undici itself refuses some inputs (a method it will not send); that is not the tap answering.
            if ((error as { code?: string }).code === 'UND_ERR_INVALID_ARG') return null;
            throw error;
          },
        );
        if (res) expect(res.status).toBe(200);
      }),
      { numRuns: 150 },
    );
  });

  it('never answers anything but 200 to raw bytes on either listener', async () => {
    const requestish = fc
      .tuple(method, path, fc.array(fc.tuple(token, headerValue), { maxLength: 6 }), fc.uint8Array({ maxLength: 300 }))
      .map(([m, p, hs, b]) => Buffer.concat([Buffer.from(`${m} ${p} HTTP/1.1\r\nHost: x\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`), b]));
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.oneof(requestish, fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b))), async (viaMirror, bytes) => {
        const raw = await rawExchange(viaMirror ? tap.mirrorPort : tap.forwardAuthPort, bytes);
        for (const code of statusCodes(raw)) expect(code).toBe(200);
        // Silence is right only when no request began: nothing but the empty lines a server skips before a request
        // line (RFC 9112 section 2.2). Anything else gets its 200, or a tap that hung up on junk would pass.
        if (/^[\r\n]*$/.test(bytes.toString('latin1'))) expect(raw).toBe('');
        else expect(raw.startsWith('HTTP/1.1 200 OK\r\n'), JSON.stringify(bytes.toString('latin1'))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('is still answering and publishing afterwards', async () => {
    const before = tap.received.length;
    const res = await send(`${tap.mirrorUrl}/still-alive`);
    expect(res.status).toBe(200);
    await tap.waitForEvents(before + 1);
    expect(tap.invalid.map((e) => e.message)).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { capturePolicy } from '../../ingress-tap/capture-policy.ts';
import { rawExchange, send, statusCodes, target, useTap } from './tap-harness.ts';

const { tap } = useTap({
  config: {
    targets: [
      target('api', {
        methods: ['POST', 'PUT'],
        hosts: ['api.example.com', '*.shop.example'],
        pathPrefixes: ['/v1/'],
        cookieNames: ['session'],
        revealHeaders: ['authorization'],
        maxBodyBytes: 100,
      }),
      target('audit', { methods: ['DELETE'], cookieNames: ['csrf'], maxBodyBytes: 0 }),
    ],
  },
});

function forwardAuth(method: string, host: string, uri: string, headers: Record<string, string> = {}, body?: string) {
  return send(`${tap.forwardAuthUrl}/`, {
    headers: { 'x-forwarded-method': method, 'x-forwarded-host': host, 'x-forwarded-uri': uri, 'x-forwarded-proto': 'https', ...headers },
    body,
  });
}

/** Sends a request every config wants last; NATS keeps one connection's order, so it arrives after anything earlier. */
async function eventsUpToMarker(): Promise<string[]> {
  await forwardAuth('DELETE', 'marker.example', '/marker');
  for (let n = 1; ; n++) {
    const events = await tap.waitForEvents(n);
    if (events[n - 1]?.event.data.path === '/marker') return events.slice(0, -1).map((e) => `${e.event.data.method} ${e.event.subject}`);
  }
}

describe('capture policy', () => {
  it('publishes a request some target wants', async () => {
    await forwardAuth('POST', 'api.example.com', '/v1/orders');
    await forwardAuth('PUT', 'eu.shop.example', '/v1/cart');
    expect(await eventsUpToMarker()).toEqual(['POST api.example.com/v1/orders', 'PUT eu.shop.example/v1/cart']);
  });

  it('answers 200 but publishes nothing when no target wants the method, host or path', async () => {
    const skippedBefore = await tap.metric('request_mirror_tap_requests_skipped_total', { attachment: 'forwardAuth' });
    const answers = await Promise.all([
      forwardAuth('GET', 'api.example.com', '/v1/orders'),
      forwardAuth('POST', 'www.example.com', '/v1/orders'),
      forwardAuth('POST', 'shop.example', '/v1/orders'),
      forwardAuth('POST', 'api.example.com', '/v2/orders'),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(await eventsUpToMarker()).toEqual([]);
    expect((await tap.metric('request_mirror_tap_requests_skipped_total', { attachment: 'forwardAuth' })) - skippedBefore).toBe(4);
  });

  it('answers a skipped request whose body breaks off exactly once', async () => {
    const before = await tap.metric('request_mirror_tap_requests_skipped_total', { attachment: 'mirror' });
    const raw = await rawExchange(tap.mirrorPort, 'POST /skipped HTTP/1.1\r\nHost: nobody.example\r\nContent-Length: 100\r\n\r\npart');
    expect(statusCodes(raw)).toEqual([200]);
    expect(await tap.metric('request_mirror_tap_requests_skipped_total', { attachment: 'mirror' })).toBe(before + 1);
  });

  it('captures only the cookies a target wanting the request names, and redacts the Cookie header', async () => {
    const cookie = 'session=s%201; csrf=c1; other=o';
    await forwardAuth('POST', 'api.example.com', '/v1/login', { cookie });
    await forwardAuth('DELETE', 'api.example.com', '/v1/login', { cookie });
    const [post, del] = await tap.waitForEvents(2);
    expect(post?.event.data.cookies).toEqual({ session: 's 1' });
    expect(del?.event.data.cookies).toEqual({ csrf: 'c1' });
    expect(post?.event.data.headers.cookie).toBeUndefined();
    expect(post?.event.data.redactedHeaders).toEqual(['cookie']);
  });

  it('answers 200 to malformed Cookie headers and counts them', async () => {
    const before = await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'malformed_cookie' });
    const answers = await Promise.all(
      ['session', '=; ;=x; session=ok', 'session=%E0%A4%A', ';;;', 'session="unterminated'].map((cookie) =>
        forwardAuth('POST', 'api.example.com', '/v1/c', { cookie }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    const events = await tap.waitForEvents(5);
    const byCookie = events.map((e) => e.event.data.cookies.session);
    expect(byCookie).toContain('ok');
    expect(byCookie).toContain('%E0%A4%A');
    expect((await tap.metric('request_mirror_tap_rejected_input_total', { reason: 'malformed_cookie' })) - before).toBe(3);
  });

  it('redacts credential headers by default', async () => {
    await forwardAuth('DELETE', 'x.example', '/item/1', { authorization: 'Bearer secret', 'proxy-authorization': 'Basic abc', 'set-cookie': 'a=b' });
    const [received] = await tap.waitForEvents(1);
    const data = received?.event.data;
    expect(data?.headers.authorization).toBeUndefined();
    expect(data?.headers['proxy-authorization']).toBeUndefined();
    expect(data?.headers['set-cookie']).toBeUndefined();
    expect(data?.redactedHeaders).toEqual(['authorization', 'proxy-authorization', 'set-cookie']);
    expect(JSON.stringify(received?.event)).not.toContain('secret');
  });

  it('keeps a credential header a target wanting the request reveals', async () => {
    await forwardAuth('POST', 'api.example.com', '/v1/me', { authorization: 'Bearer visible', 'proxy-authorization': 'Basic abc' });
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.headers.authorization).toEqual(['Bearer visible']);
    expect(received?.event.data.redactedHeaders).toEqual(['proxy-authorization']);
  });

  it('leaves the body out when no wanting target takes bodies', async () => {
    await forwardAuth('DELETE', 'x.example', '/item/2', { 'content-type': 'text/plain' }, 'do not keep');
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body).toBeNull();
  });

  it('captures up to the largest body limit among the wanting targets', async () => {
    await forwardAuth('POST', 'api.example.com', '/v1/big', {}, 'x'.repeat(150));
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.body).toMatchObject({ capturedBytes: 100, receivedBytes: 150, truncated: true });
  });

  it('applies a reconfigured policy to the next request on both listeners, and the old one again once restored', async () => {
    const onlyGets = Config.parse({ nats: tap.config.nats, tap: tap.config.tap, targets: [target('gets', { methods: ['GET'], maxBodyBytes: 0 })] });
    tap.tap.reconfigure(onlyGets);
    try {
      await forwardAuth('POST', 'api.example.com', '/v1/now-skipped');
      await forwardAuth('GET', 'any.example', '/now-wanted');
      await send(`${tap.mirrorUrl}/mirrored-get`);
      const events = await tap.waitForEvents(2);
      expect(events.map((e) => `${e.event.data.method} ${e.event.data.path}`)).toEqual(['GET /now-wanted', 'GET /mirrored-get']);
    } finally {
      tap.tap.reconfigure(tap.config);
    }
    tap.received.length = 0;
    await forwardAuth('GET', 'any.example', '/skipped-again');
    await forwardAuth('POST', 'api.example.com', '/v1/wanted-again');
    expect(await eventsUpToMarker()).toEqual(['POST api.example.com/v1/wanted-again']);
  });
});

describe('capture policy decisions (unit: the policy object)', () => {
  // Target i wants the hosts n.example whose number n has bit i set, so each n up to 2^11 - 1 is wanted by its own set.
  const BITS = 11;
  const hosts = (bit: number) => Array.from({ length: 2 ** BITS - 1 }, (_, k) => k + 1).filter((n) => (n & (1 << bit)) !== 0).map((n) => `${n}.example`);
  const policy = () =>
    capturePolicy(
      Config.parse({
        nats: { url: 'nats://127.0.0.1:4222' },
        targets: Array.from({ length: BITS }, (_, bit) => target(`bit-${bit}`, { hosts: hosts(bit), cookieNames: [`c${bit}`] })),
      }),
    );
  const key = (n: number) => ({ method: 'GET', host: `${n}.example`, path: '/' });

  it('merges what the wanting targets allow, and gives the same decision again for the same set of targets', () => {
    const p = policy();
    const three = p.decide(key(3));
    expect(three?.cookieNames).toEqual(new Set(['c0', 'c1']));
    p.decide(key(4));
    expect(p.decide(key(3))).toBe(three);
    expect(p.decide(key(2 ** BITS))).toBeNull();
  });

  it('keeps up to 1,024 decisions, and starts over with the next new set', () => {
    const p = policy();
    const first = p.decide(key(1));
    for (let n = 2; n <= 1024; n++) p.decide(key(n));
    expect(p.decide(key(1))).toBe(first);
    p.decide(key(1025));
    const again = p.decide(key(1));
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localizeExample, readExample } from '../../tools/stack/examples.ts';
import { startStack, waitForEvent, type Backends, type Stack } from '../../tools/stack/stack.ts';
import { sendHead } from './raw-http.ts';
import { reportOnFailure } from './report.ts';

// `clientIp` is the client Traefik itself believes in, whatever the attachment: behind a load balancer listed in
// the entrypoint's forwardedHeaders.trustedIPs, the client the balancer names in X-Forwarded-For; otherwise the
// peer Traefik saw, whatever X-Forwarded-For a client sends. Through forwardAuth that takes the documented
// `trustForwardHeader: true` (docs/examples/traefik/forward-auth.yml); `false` names the balancer instead.

let trusting: Stack | undefined;
let untrusting: Stack | undefined;

/** forward-auth.yml (app.localhost), mirroring.yml (shop.localhost) and the same forwardAuth with `false` (legacy.localhost). */
function routes(b: Backends) {
  const legacy = localizeExample(readExample('traefik/forward-auth.yml'), b)
    .replace('trustForwardHeader: true', 'trustForwardHeader: false')
    .replaceAll('request-mirror', 'request-mirror-legacy')
    .replace('app:\n      rule: Host(`app.localhost`)', 'legacy:\n      rule: Host(`legacy.localhost`)')
    .replace('service: app', 'service: app-legacy')
    .replace('  services:\n    app:', '  services:\n    app-legacy:');
  return {
    files: {
      'forward-auth.yml': localizeExample(readExample('traefik/forward-auth.yml'), b),
      'mirroring.yml': localizeExample(readExample('traefik/mirroring.yml'), b),
      'legacy.yml': legacy,
    },
    routers: ['app', 'shop', 'legacy'],
  };
}

beforeAll(async () => {
  const common = {
    receivers: ['hook'],
    targets: (r: Stack['receivers']) => [{ name: 'hook', watchURL: `${r.hook?.url ?? ''}/events`, methods: ['*'] }],
    traefik: routes,
  };
  // The tests' client connects from 127.0.0.1: listed, it plays the load balancer in front of Traefik.
  trusting = await startStack({ ...common, traefikArgs: ['--entryPoints.web.forwardedHeaders.trustedIPs=127.0.0.1/32'] });
  untrusting = await startStack(common);
}, 120_000);
afterAll(async () => {
  await trusting?.close();
  await untrusting?.close();
});
reportOnFailure(() => trusting);
reportOnFailure(() => untrusting);

function started(stack: Stack | undefined): Stack {
  if (!stack) throw new Error('stack did not start');
  return stack;
}

let sequence = 0;

async function clientIpOf(stack: Stack, host: string, forwardedFor: string | null): Promise<string | null> {
  const path = `/client-ip/${++sequence}`;
  const xff = forwardedFor === null ? '' : `X-Forwarded-For: ${forwardedFor}\r\n`;
  expect(await sendHead(stack, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${xff}Connection: close\r\n\r\n`)).toBe(201);
  const hook = stack.receivers.hook;
  if (!hook) throw new Error('no hook receiver');
  return (await waitForEvent(hook, (e) => e.data.path === path)).data.clientIp;
}

describe('clientIp behind a load balancer Traefik trusts', () => {
  it.each([
    ['forwardAuth (trustForwardHeader: true)', 'app.localhost'],
    ['Mirroring', 'shop.localhost'],
  ])('is the client the balancer names, through %s', async (_name, host) => {
    const stack = started(trusting);
    expect(await clientIpOf(stack, host, '198.51.100.7')).toBe('198.51.100.7');
    expect(await clientIpOf(stack, host, '198.51.100.7, 203.0.113.5')).toBe('198.51.100.7');
    expect(await clientIpOf(stack, host, '2001:db8::7')).toBe('2001:db8::7');
    expect(await clientIpOf(stack, host, null)).toBe('127.0.0.1');
  });

  it('is the balancer itself through forwardAuth with trustForwardHeader: false', async () => {
    expect(await clientIpOf(started(trusting), 'legacy.localhost', '198.51.100.7')).toBe('127.0.0.1');
  });
});

describe('clientIp when Traefik trusts no proxy', () => {
  it.each([
    ['forwardAuth (trustForwardHeader: true)', 'app.localhost'],
    ['Mirroring', 'shop.localhost'],
    ['forwardAuth (trustForwardHeader: false)', 'legacy.localhost'],
  ])('is the peer Traefik saw, whatever X-Forwarded-For the client sends, through %s', async (_name, host) => {
    const stack = started(untrusting);
    expect(await clientIpOf(stack, host, '198.51.100.7')).toBe('127.0.0.1');
    expect(await clientIpOf(stack, host, null)).toBe('127.0.0.1');
  });
});

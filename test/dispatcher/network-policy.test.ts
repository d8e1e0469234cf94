import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { eventually, makeEvent, metric, publish, startDispatcher, useDispatcherFixture, PREFIX, type RunningDispatcher } from './harness.ts';
import { capturedLogger } from '../support/captured-logger.ts';

// The network policy end to end: a real dispatcher on a real nats-server delivering to real HTTP receivers that listen
// on addresses of this host. Each watchURL spells one of those addresses another way; with the ban on, the receiver
// must get nothing and the dispatcher must count the drop and log which setting would allow it; with the ban off the
// same watchURL is delivered, which proves the receiver was reachable through that spelling.

const { nats, receiver, defer } = useDispatcherFixture();

type Listener = '127.0.0.1' | '127.0.0.2' | '::1' | '::' | '0.0.0.0';

/** A watchURL host (as written in the config) and the receiver it reaches when dialled. */
interface Spelling {
  readonly host: string;
  readonly listener: Listener;
  readonly why: string;
  readonly scheme?: 'https';
}

// This host's own non-loopback addresses (in a pod: the pod IP). They reach a listener on `::` / 0.0.0.0 without
// leaving the machine. Link-local ones need a zone, which an URL cannot carry.
const ownAddresses = Object.values(networkInterfaces())
  .flatMap((list) => list ?? [])
  .filter((a) => !a.internal && !a.address.startsWith('fe80:'));
const ownV4 = ownAddresses.find((a) => a.family === 'IPv4')?.address;
const ownV6 = ownAddresses.find((a) => a.family === 'IPv6')?.address;

const REACHABLE: readonly Spelling[] = [
  { host: '127.0.0.1', listener: '127.0.0.1', why: 'loopback' },
  { host: '127.1', listener: '127.0.0.1', why: 'IPv4 short form' },
  { host: '2130706433', listener: '127.0.0.1', why: 'IPv4 as one decimal number' },
  { host: '0x7f000001', listener: '127.0.0.1', why: 'IPv4 as one hex number' },
  { host: '0177.0.0.1', listener: '127.0.0.1', why: 'IPv4 octal' },
  { host: '127.0.0.1.', listener: '127.0.0.1', why: 'IPv4 with a trailing dot' },
  { host: '[::ffff:127.0.0.1]', listener: '127.0.0.1', why: 'IPv4-mapped' },
  { host: '[::ffff:7f00:1]', listener: '127.0.0.1', why: 'IPv4-mapped, hex' },
  { host: 'localhost', listener: '::', why: 'a name resolving to loopback' },
  { host: '127.0.0.2', listener: '127.0.0.2', why: 'loopback other than .1' },
  { host: '2130706434', listener: '127.0.0.2', why: 'loopback other than .1, decimal' },
  { host: '[::ffff:127.0.0.2]', listener: '127.0.0.2', why: 'IPv4-mapped loopback other than .1' },
  { host: '[::1]', listener: '::1', why: 'IPv6 loopback' },
  { host: '[0:0:0:0:0:0:0:1]', listener: '::1', why: 'IPv6 loopback, uncompressed' },
  { host: '[::]', listener: '::', why: 'IPv6 unspecified' },
  { host: '0.0.0.0', listener: '0.0.0.0', why: 'IPv4 unspecified' },
  { host: '0', listener: '0.0.0.0', why: 'IPv4 unspecified as one number' },
  { host: '[::ffff:0.0.0.0]', listener: '::', why: 'IPv4-mapped unspecified' },
];

// Refused before dialling, never dialled with the ban off: forms that carry 127.0.0.1 but that this machine does not
// route back to itself (no sit, NAT64 or 6to4 here; dialling them would send packets off the machine), this host's
// own non-loopback addresses (they stay on the machine, but tests send traffic to loopback addresses only), and
// https watchURLs, whose TLS connector takes the same checks (the receivers speak plain HTTP, so they could not answer).
const REFUSED_ONLY: readonly Spelling[] = [
  { host: '[::127.0.0.1]', listener: '127.0.0.1', why: 'IPv4-compatible' },
  { host: '[::ffff:0:7f00:1]', listener: '127.0.0.1', why: 'IPv4-translated' },
  { host: '[64:ff9b::7f00:1]', listener: '127.0.0.1', why: 'NAT64 well-known prefix' },
  { host: '[64:ff9b:1::7f00:1]', listener: '127.0.0.1', why: 'local-use NAT64' },
  { host: '[2002:7f00:1::1]', listener: '127.0.0.1', why: '6to4' },
  { host: '[2001:0:4136:e378:8000:63bf:80ff:fffe]', listener: '127.0.0.1', why: 'Teredo client' },
  { host: '[::1]', listener: '::1', why: 'IPv6 loopback over https', scheme: 'https' },
  { host: '[::ffff:7f00:1]', listener: '127.0.0.1', why: 'IPv4-mapped over https', scheme: 'https' },
  { host: 'localhost', listener: '::', why: 'a name resolving to loopback, over https', scheme: 'https' },
  ...(ownV4
    ? [
        { host: ownV4, listener: '0.0.0.0' as const, why: "this host's own IPv4 address" },
        { host: `[::ffff:${ownV4}]`, listener: '::' as const, why: "this host's own IPv4 address, mapped" },
      ]
    : []),
  ...(ownV6 ? [{ host: `[${ownV6}]`, listener: '::' as const, why: "this host's own IPv6 address" }] : []),
];

const LINK_LOCAL: readonly string[] = ['169.254.169.254', '[::ffff:169.254.169.254]', '[::ffff:a9fe:a9fe]', '[64:ff9b::a9fe:a9fe]', '[2002:a9fe:a9fe::]', '[fe80::1]'];

interface LogLine {
  readonly target?: string;
  readonly msg: string;
  readonly err?: { readonly message: string };
}

async function start(targets: { name: string; watchURL: string }[], network: object) {
  const { logger, lines: logs } = capturedLogger<LogLine>();
  const config = Config.parse({
    nats: { subjectPrefix: PREFIX },
    dispatcher: { network },
    targets: targets.map((t) => ({ ...t, methods: ['*'], retry: { maxAttempts: 3, initialBackoffMs: 10 } })),
  });
  const d = await startDispatcher(nats.url, config, {}, { logger });
  defer(() => d.close());
  return { d, logs };
}

async function receivers(): Promise<Record<Listener, HttpReceiver>> {
  const listeners: Listener[] = ['127.0.0.1', '127.0.0.2', '::1', '::', '0.0.0.0'];
  const started = await Promise.all(listeners.map((host) => receiver(undefined, host)));
  return Object.fromEntries(listeners.map((host, i) => [host, started[i]])) as Record<Listener, HttpReceiver>;
}

function targetsFor(spellings: readonly Spelling[], r: Record<Listener, HttpReceiver>) {
  return spellings.map((s, i) => ({ name: `s${i}`, watchURL: `${s.scheme ?? 'http'}://${s.host}:${r[s.listener].port}/s${i}` }));
}

async function expectRefused(d: RunningDispatcher, logs: LogLine[], target: string, setting: string, what: string): Promise<void> {
  await eventually(
    async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_dropped_total', { target, reason: 'address_refused' })) === 1,
    10_000,
    `${what} dropped as address_refused`,
  );
  // Refused before any socket: one attempt, not retried, and the circuit breaker is not told the target is down.
  expect(await metric(d.metrics, 'request_mirror_dispatcher_delivery_attempts_failed_total', { target }), what).toBe(1);
  expect(await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target }), what).toBe(0);
  const line = logs.find((l) => l.target === target && l.msg === 'delivery failed, not retryable');
  expect(line?.err?.message, what).toMatch(new RegExp(`^refusing to connect to .*; ${setting.replaceAll('.', '\\.')} allows it$`));
}

describe('network policy', () => {
  it('refuses every spelling of an address of this host when allowLoopback is false, and logs the setting that allows it', async () => {
    const r = await receivers();
    const spellings = [...REACHABLE, ...REFUSED_ONLY];
    const targets = targetsFor(spellings, r);
    const { d, logs } = await start(targets, { allowLoopback: false });
    await publish(d.nc, makeEvent());
    for (const [i, t] of targets.entries()) {
      await expectRefused(d, logs, t.name, 'dispatcher.network.allowLoopback', `${t.watchURL} (${spellings[i]?.why})`);
    }
    for (const [host, rec] of Object.entries(r)) expect(rec.requests, `receiver on ${host}`).toHaveLength(0);
  });

  it('delivers the same spellings when allowLoopback is true, so each receiver was reachable through them', async () => {
    const r = await receivers();
    const targets = targetsFor(REACHABLE, r);
    const { d } = await start(targets, { allowLoopback: true });
    await publish(d.nc, makeEvent());
    for (const [i, t] of targets.entries()) {
      const s = REACHABLE[i];
      if (!s) continue;
      await eventually(() => r[s.listener].requests.some((q) => q.url === `/${t.name}`), 10_000, `${t.watchURL} (${s.why}) received`);
      await eventually(
        async () => (await metric(d.metrics, 'request_mirror_dispatcher_events_delivered_total', { target: t.name })) === 1,
        10_000,
        `${t.watchURL} (${s.why}) counted as delivered`,
      );
    }
  });

  it('refuses link-local addresses in every spelling when only loopback is allowed, naming allowLinkLocal', async () => {
    const r = await receiver();
    const targets = LINK_LOCAL.map((host, i) => ({ name: `l${i}`, watchURL: `http://${host}:${r.port}/latest/meta-data/` }));
    const { d, logs } = await start(targets, { allowLoopback: true });
    await publish(d.nc, makeEvent());
    for (const t of targets) await expectRefused(d, logs, t.name, 'dispatcher.network.allowLinkLocal', t.watchURL);
  });

  it('refuses a denied range in its IPv4-mapped spelling, naming allowCIDRs', async () => {
    const r = await receiver();
    const targets = [
      { name: 'plain', watchURL: `http://127.0.0.9:${r.port}/` },
      { name: 'mapped', watchURL: `http://[::ffff:127.0.0.9]:${r.port}/` },
    ];
    const { d, logs } = await start(targets, { allowLoopback: true, denyCIDRs: ['127.0.0.8/29'] });
    await publish(d.nc, makeEvent());
    for (const t of targets) await expectRefused(d, logs, t.name, 'dispatcher.network.allowCIDRs', t.watchURL);
    expect(r.requests).toHaveLength(0);
  });

  it('delivers to loopback when allowed by allowCIDRs, in its mapped spelling too', async () => {
    const r = await receiver();
    const config = Config.parse({
      nats: { subjectPrefix: PREFIX },
      dispatcher: { network: { allowCIDRs: ['127.0.0.1/32'] } },
      targets: [
        { name: 'local', watchURL: r.url, methods: ['*'] },
        { name: 'mapped', watchURL: `http://[::ffff:127.0.0.1]:${r.port}/`, methods: ['*'] },
      ],
    });
    const d = await startDispatcher(nats.url, config);
    defer(() => d.close());
    await publish(d.nc, makeEvent());
    await r.waitFor(2);
  });
});

import { describe, expect, it } from 'vitest';
import { describeCase, draw, eventCase, isValidEvent, requestCase } from '../../tools/fuzz/inputs.ts';
import { formatReport } from '../../tools/fuzz/report.ts';
import { runFuzz, type FuzzReport } from '../../tools/fuzz/run.ts';

// `make fuzz` in small: the same harness (real NATS, tap, dispatcher, Traefik) with 2,000 requests and 500 events,
// so that `make test` keeps it working. Its structure is checked here, not its timings; the long run is `make fuzz`.

const REQUESTS = 2000;
const EVENTS = 500;
const SEED = 9;

describe('make fuzz', () => {
  it('draws the same case again from the same seed and index, and another from the next index', () => {
    expect(describeCase(draw(requestCase, SEED, 41))).toBe(describeCase(draw(requestCase, SEED, 41)));
    expect(describeCase(draw(eventCase, SEED, 41))).toBe(describeCase(draw(eventCase, SEED, 41)));
    const cases = new Set(Array.from({ length: 20 }, (_, i) => describeCase(draw(requestCase, SEED, i))));
    expect(cases.size).toBe(20);
  });

  it('judges an event by the contract, a __proto__ header or cookie of the wrong type included', () => {
    const event = {
      specversion: '1.0',
      id: '01ARZ3NDEKTSV4RRFFQ69G5FAV',
      source: 'tap',
      type: 'io.request-mirror.request.v1',
      time: '2026-01-01T00:00:00.000Z',
      datacontenttype: 'application/json',
      subject: 'x/',
      data: { attachment: 'mirror', method: 'GET', scheme: 'http', host: 'x', path: '/', query: '', clientIp: null, headers: {}, redactedHeaders: [], cookies: {}, body: null },
    };
    const bytes = (text: string) => new TextEncoder().encode(text);
    expect(isValidEvent(bytes(JSON.stringify(event)))).toBe(true);
    expect(isValidEvent(bytes(JSON.stringify(event).replace('"headers":{}', '"headers":{"__proto__":"one"}')))).toBe(false);
    expect(isValidEvent(bytes(JSON.stringify(event).replace('"cookies":{}', '"cookies":{"__proto__":7}')))).toBe(false);
    expect(isValidEvent(bytes('{'))).toBe(false);
    expect(isValidEvent(Uint8Array.of(0xff))).toBe(false);
  });

  it('prints the seed, the case index and the input of a failure', () => {
    const input = describeCase(draw(requestCase, SEED, 7));
    const report = { ...passing(), failures: [{ what: 'the tap answered 500 on tap-mirror-h1', index: 7, input }] };
    const text = formatReport(report);
    expect(text).toContain('FAIL: 1 failure(s)');
    expect(text).toContain(`the tap answered 500 on tap-mirror-h1 [seed ${SEED}, case 7]`);
    expect(text).toContain(input.slice(0, 100));
  });

  it(`sends ${REQUESTS} requests and ${EVENTS} events through the whole product and accounts for every one`, { timeout: 180_000 }, async () => {
    const lines: string[] = [];
    const report = await runFuzz({
      requests: REQUESTS,
      events: EVENTS,
      seed: SEED,
      concurrency: 16,
      maxSeconds: 150,
      rssTolerance: 0.25,
      warmUpFraction: 0.25,
      rssMinSeconds: Number.POSITIVE_INFINITY,
      log: (line) => lines.push(line),
    });
    const text = formatReport(report);
    expect(report.failures, text).toEqual([]);
    expect(text).toContain('PASS: every check held');

    const q = report.requests;
    expect(q.sent).toBe(REQUESTS);
    // Every route and raw bytes were used, and Traefik let requests through to the upstream after the tap's 200.
    expect(Object.keys(q.byRoute).sort()).toEqual(['raw-forwardauth-h2-tls', 'raw-mirror', 'tap-forwardauth-h1-tls', 'tap-forwardauth-h2-tls', 'tap-mirror-h1', 'traefik-forwardauth-h1', 'traefik-forwardauth-h2c', 'traefik-mirror-h1']);
    expect(q.tapNon2xx).toBe(0);
    expect(q.traefikNon2xxFromTap).toBe(0);
    expect(q.rawNon200).toBe(0);
    expect(q.traefikStatuses['201']).toBeGreaterThan(0);
    expect(q.upstreamLetThrough).toBeGreaterThan(0);

    expect(Object.values(report.crashes)).toEqual([0, 0, 0]);
    expect(Object.keys(report.rss).sort()).toEqual(['dispatcher', 'ingress-tap']);
    for (const r of Object.values(report.rss)) expect(r.firstThirdMiB).toBeGreaterThan(0);

    // Both attachments reached the tap, and the counts add up on both sides of NATS.
    expect(report.tap.received.forwardAuth).toBeGreaterThan(0);
    expect(report.tap.received.mirror).toBeGreaterThan(0);
    expect(report.tap.unaccounted).toBe(0);
    expect(report.tap.forwardAuthNotLetThrough).toBe(0);
    // Traefik's forwardAuth and undici's HTTP/2 client reached the TLS listener over HTTP/2, the others over HTTP/1.1.
    expect(report.tap.connections['forwardAuth h2']).toBeGreaterThan(0);
    expect(report.tap.connections['forwardAuth http/1.1']).toBeGreaterThan(0);
    expect(report.tap.connections['mirror http/1.1']).toBeGreaterThan(0);
    expect(report.dispatcher.messages).toBe(report.tap.published + EVENTS);
    expect(report.dispatcher.invalid).toBe(report.dispatcher.invalidExpected);
    expect(report.dispatcher.invalidExpected).toBeGreaterThan(0);
    expect(report.dispatcher.unaccountedMessages).toBe(0);
    expect(report.dispatcher.unaccountedEvents).toBe(0);
    expect(report.dispatcher.pending).toBe(0);
  });
});

function passing(): FuzzReport {
  return {
    seed: SEED,
    seconds: 1,
    requests: { sent: 0, byRoute: {}, refusedByClient: 0, tapNon2xx: 0, answeredWithoutEvent: 0, traefikStatuses: {}, traefikNon2xxFromTap: 0, rawExchanges: 0, rawNon200: 0, upstreamLetThrough: 0, upstreamRefused: 0 },
    crashes: {},
    rss: {},
    tap: { received: {}, published: 0, dropped: {}, skipped: 0, rejectedInput: {}, connections: {}, unaccounted: 0, forwardAuthNotLetThrough: 0 },
    dispatcher: { messages: 0, received: 0, delivered: 0, dropped: {}, pending: 0, invalid: 0, invalidExpected: 0, webhookReceived: 0, unaccountedMessages: 0, unaccountedEvents: 0 },
    failures: [],
  };
}

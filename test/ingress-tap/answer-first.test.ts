import type { IncomingMessage, ServerResponse } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from '../../ingress-tap/publisher.ts';
import { observePublishes, send, target, useTap } from './tap-harness.ts';

// The user's request never waits for the event: the tap writes its 200 first and builds and publishes the event
// afterwards. Observed from inside the tap's process: a publisher wrapped around the real one notes, at the moment
// the tap hands it an event, whether the response to that event's request has already been ended.

/** Responses by request path, seen before fastify's own handler runs. */
const responses = new Map<string, ServerResponse>();
/** By path: had the tap answered the request by the time the listener's own 'request' handling returned? */
const answeredInCall = new Map<string, boolean>();
/** For each event published, by path: had its request been answered when the tap called publish? */
const answeredAtPublish = new Map<string, boolean>();

function observing(publisher: Publisher): Publisher {
  return observePublishes(publisher, (path) => {
    answeredAtPublish.set(path, responses.get(path)?.writableEnded === true);
  });
}

const { tap } = useTap({
  config: { targets: [target('all', { methods: ['GET', 'POST'] }), target('no-bodies', { methods: ['PUT'], maxBodyBytes: 0 })] },
  wrapPublisher: observing,
});

// Registered after useTap's own beforeAll, so the tap is listening by then.
beforeAll(() => {
  for (const listener of [tap.tap.mirror, tap.tap.forwardAuth]) {
    listener.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = req.headers['x-forwarded-uri'] ?? req.url ?? '';
      responses.set(String(path), res);
    });
    // Runs after fastify's listener, in the same emit: whatever the tap did synchronously is done by then.
    listener.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      answeredInCall.set(String(req.headers['x-forwarded-uri'] ?? req.url ?? ''), res.writableEnded);
    });
  }
});

describe('answer first', () => {
  it.each([
    ['a GET without a body (mirror)', () => send(`${tap.mirrorUrl}/get-no-body`), '/get-no-body'],
    [
      'a GET without a body (forwardAuth)',
      () => send(`${tap.forwardAuthUrl}/`, { headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/fa-no-body', 'x-forwarded-host': 'a.example' } }),
      '/fa-no-body',
    ],
    ['a PUT whose body no target keeps', () => send(`${tap.mirrorUrl}/put-unkept`, { method: 'PUT', body: 'x'.repeat(5000) }), '/put-unkept'],
    ['a POST with a body', () => send(`${tap.mirrorUrl}/post-body`, { method: 'POST', body: 'hello' }), '/post-body'],
  ])('answers %s before building and publishing its event', async (_name, request, path) => {
    const res = await request();
    expect(res.status).toBe(200);
    const [received] = await tap.waitForEvents(1);
    expect(received?.event.data.path).toBe(path);
    expect(responses.has(path)).toBe(true);
    expect(answeredAtPublish.get(path)).toBe(true);
  });
});

describe('answer at once', () => {
  // Nothing of a request without a body is left to read: the tap answers it before returning to the event loop, with
  // no stream listener and no turn of waiting. A request with a body waits for the part the tap keeps.
  async function answeredWithinTheCall(name: string, options: Parameters<typeof send>[1]): Promise<boolean | undefined> {
    const path = `/at-once/${name.replaceAll(' ', '-')}`;
    const res = await send(`${tap.mirrorUrl}${path}`, options);
    expect(res.status).toBe(200);
    await tap.waitForEvents(1);
    return answeredInCall.get(path);
  }

  it.each([
    ['a GET without Content-Length', { method: 'GET' }],
    ['a POST with Content-Length: 0', { method: 'POST', body: '' }],
  ])('answers %s within the call that hands it to the tap', async (name, options) => {
    expect(await answeredWithinTheCall(name, options)).toBe(true);
  });

  it.each([
    ['a POST with a body', { method: 'POST', body: 'hello' }],
    ['a chunked POST', { method: 'POST', body: [Buffer.from('hel'), Buffer.from('lo')] }],
  ])('answers %s only once its body has arrived, after the call', async (name, options) => {
    expect(await answeredWithinTheCall(name, options)).toBe(false);
  });
});

describe('handling time', () => {
  /** The forwardAuth series of the handling histogram, from the admin listener's /metrics. */
  async function handling(): Promise<{ sum: number; count: number }> {
    const text = (await send(`${tap.adminUrl}/metrics`)).body;
    const read = (suffix: string) => Number(new RegExp(`^request_mirror_tap_handling_seconds_${suffix}\\{attachment="forwardAuth"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { sum: read('sum'), count: read('count') };
  }

  it.each([
    ['a request without a body', 'POST', {}, 2],
    ['a request whose body the tap captures', 'POST', { method: 'POST', body: 'x'.repeat(100) }, 2],
    ['a request no target wants', 'DELETE', {}, 0],
  ])('records the time from seeing %s to its answer, in seconds', async (_name, method, extra, events) => {
    const headers = { 'x-forwarded-method': method, 'x-forwarded-uri': '/timed', 'x-forwarded-host': 'a.example' };
    await send(`${tap.forwardAuthUrl}/`, { headers, ...extra });
    const before = await handling();
    const started = performance.now();
    expect((await send(`${tap.forwardAuthUrl}/`, { headers, ...extra })).status).toBe(200);
    const elapsedSeconds = (performance.now() - started) / 1000;
    if (events > 0) await tap.waitForEvents(events);
    const after = await handling();
    expect(after.count).toBe(before.count + 1);
    // Within the round trip the client saw, and more than nothing.
    expect(after.sum - before.sum).toBeGreaterThan(0);
    expect(after.sum - before.sum).toBeLessThanOrEqual(elapsedSeconds);
  });
});

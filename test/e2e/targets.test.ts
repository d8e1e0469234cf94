import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../contract/config.ts';
import type { HttpReceiver } from '../../tools/stack/http-receiver.ts';
import { eventsOf, startStack, waitForEvent, type Stack } from '../../tools/stack/stack.ts';
import { reportOnFailure } from './report.ts';
import { attachmentRoutes, KiB } from './routes.ts';

// Configuration accuracy: several targets at once, each receiving exactly the requests its filters select, at its
// own watchURL, with only its own cookies. Every target delivers one event at a time (concurrency 1), so once a
// closing marker has arrived everything sent before it has arrived too.

type TargetName = 'reads' | 'writes' | 'everything' | 'tenant';
const NAMES: readonly TargetName[] = ['reads', 'writes', 'everything', 'tenant'];

const targets = (r: Readonly<Record<string, HttpReceiver>>): NonNullable<ConfigInput['targets']> => {
  const url = (n: TargetName, rest: string) => `${r[n]?.url ?? ''}${rest}`;
  return [
    { name: 'reads', watchURL: url('reads', '/reads'), methods: ['GET', 'HEAD'], cookieNames: ['session'], concurrency: 1 },
    { name: 'writes', watchURL: url('writes', '/hooks/writes?token=abc'), methods: ['POST', 'PUT', 'DELETE'], concurrency: 1 },
    { name: 'everything', watchURL: url('everything', '/all'), methods: ['*'], cookieNames: ['session', 'theme'], concurrency: 1 },
    {
      name: 'tenant',
      watchURL: url('tenant', '/tenant'),
      methods: ['*'],
      hosts: ['*.tenant.test'],
      pathPrefixes: ['/meta/api/'],
      cookieNames: ['tenant_id'],
      concurrency: 1,
    },
  ];
};

interface Row {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  /** Targets that must receive it, with the cookies each must see. */
  readonly expect: Partial<Record<TargetName, Record<string, string>>>;
}

const COOKIE = 'session=s1; theme=dark; tenant_id=t9; tracking=zzz';
const ROWS: readonly Row[] = [
  { method: 'GET', host: 'www.example.test', path: '/meta/home', expect: { reads: { session: 's1' }, everything: { session: 's1', theme: 'dark' } } },
  { method: 'POST', host: 'www.example.test', path: '/meta/form', expect: { writes: {}, everything: { session: 's1', theme: 'dark' } } },
  { method: 'PATCH', host: 'www.example.test', path: '/meta/form', expect: { everything: { session: 's1', theme: 'dark' } } },
  { method: 'DELETE', host: 'a.tenant.test', path: '/meta/api/x', expect: { writes: {}, everything: { session: 's1', theme: 'dark' }, tenant: { tenant_id: 't9' } } },
  { method: 'GET', host: 'a.tenant.test', path: '/meta/other', expect: { reads: { session: 's1' }, everything: { session: 's1', theme: 'dark' } } },
  { method: 'GET', host: 'tenant.test', path: '/meta/api/y', expect: { reads: { session: 's1' }, everything: { session: 's1', theme: 'dark' } } },
];

let stack: Stack | undefined;
beforeAll(async () => {
  stack = await startStack({ receivers: NAMES, targets, traefik: (b) => attachmentRoutes(b, { maxBodySize: 64 * KiB }) });
});
afterAll(async () => {
  await stack?.close();
});
reportOnFailure(() => stack);

function receiver(name: TargetName): HttpReceiver {
  const r = stack?.receivers[name];
  if (!r) throw new Error(`no receiver ${name}`);
  return r;
}

describe('targets', () => {
  it('each of several targets receives exactly the requests its methods, hosts and paths select, with its own cookies', async () => {
    if (!stack) throw new Error('stack did not start');
    for (const [i, row] of ROWS.entries()) {
      const res = await stack.send(`${row.path}?row=${i}`, { method: row.method, headers: { host: row.host, cookie: COOKIE } });
      expect(res.status, `row ${i}`).toBe(201);
    }
    // Markers that every target selects close the run.
    await stack.send('/meta/api/end?row=end', { method: 'GET', headers: { host: 'end.tenant.test' } });
    await stack.send('/meta/api/end?row=end', { method: 'POST', headers: { host: 'end.tenant.test' } });
    for (const name of NAMES) {
      await waitForEvent(receiver(name), (e) => e.data.query === 'row=end');
    }

    for (const name of NAMES) {
      const events = eventsOf(receiver(name).requests).filter((e) => e.data.query !== 'row=end');
      const wanted = ROWS.flatMap((row, i) => (row.expect[name] ? [{ i, row, cookies: row.expect[name] }] : []));
      expect(events.map((e) => e.data.query), name).toEqual(wanted.map((w) => `row=${w.i}`));
      for (const [k, w] of wanted.entries()) {
        const e = events[k];
        expect(e?.data.method, `${name} row ${w.i}`).toBe(w.row.method);
        expect(e?.data.host).toBe(w.row.host);
        expect(e?.data.cookies, `${name} row ${w.i} cookies`).toEqual(w.cookies);
      }
    }
  });

  it('POSTs to each target at its own watchURL, path and query included', () => {
    const urls = Object.fromEntries(NAMES.map((n) => [n, new Set(receiver(n).requests.map((r) => `${r.method} ${r.url}`))]));
    expect(urls).toEqual({
      reads: new Set(['POST /reads']),
      writes: new Set(['POST /hooks/writes?token=abc']),
      everything: new Set(['POST /all']),
      tenant: new Set(['POST /tenant']),
    });
  });
});

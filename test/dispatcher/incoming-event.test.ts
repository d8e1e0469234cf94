import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MirrorEvent } from '../../contract/event.ts';
import { InvalidEventError } from '../../dispatcher/errors.ts';
import { isMirrorEvent, parseEvent } from '../../dispatcher/incoming-event.ts';
import { mapOf, PROTOTYPE_NAMES } from '../support/prototype-names.ts';
import { makeEvent } from './harness.ts';

// The dispatcher checks incoming events with a quick walk of the contract schema before falling back to zod. The walk
// may only say yes where zod says yes, or an event the contract rejects would be delivered.

const bases = (): unknown[] => [
  makeEvent(),
  makeEvent({ body: null, clientIp: null }),
  makeEvent({ body: Buffer.from([0xff, 0x00, 0xfe]), cookies: { session: 'abc' }, redactedHeaders: ['authorization'] }),
  { ...makeEvent({ body: 'hello' }), traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  chunked(makeEvent({ body: 'chunked', headers: { 'x-name': ['caf\u00e9'] }, latin1Headers: ['x-name'] })),
];

/** The event with its body's length unknown, as for a chunked request. */
function chunked(event: ReturnType<typeof makeEvent>): unknown {
  if (!event.data.body) throw new Error('an event with a body');
  return { ...event, data: { ...event.data, body: { ...event.data.body, declaredLength: null } } };
}

type Path = (string | number)[];

function paths(value: unknown, prefix: Path = []): Path[] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const children = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return [prefix, ...children.flatMap((key) => paths((value as Record<string | number, unknown>)[key], [...prefix, key]))];
}

type Mutation = { op: 'set'; value: unknown } | { op: 'delete' } | { op: 'add'; key: string; value: unknown };

function mutate(base: unknown, path: Path, mutation: Mutation): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  if (path.length === 0) return mutation.op === 'set' ? mutation.value : copy;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  if (mutation.op === 'set') parent[last] = mutation.value;
  else if (mutation.op === 'delete') Reflect.deleteProperty(parent, last);
  else if (typeof parent[last] === 'object' && parent[last] !== null && !Array.isArray(parent[last])) {
    (parent[last] as Record<string, unknown>)[mutation.key] = mutation.value;
  }
  return copy;
}

// Values near the schema's edges, besides arbitrary JSON.
const edgy = fc.constantFrom<unknown>(
  null, true, 0, -1, 1.5, 2 ** 53, '', 'x', [], {}, ['x'], [1], { a: 'b' }, { a: ['b'] },
  '1.0', '1.1', 'utf8', 'base64', 'hex', 'mirror', 'forwardAuth', 'https', 'ftp', 'application/json',
  'io.request-mirror.request.v1', '01ARZ3NDEKTSV4RRFFQ69G5FAV', '01ARZ3NDEKTSV4RRFFQ69G5FAI',
  '2024-01-02T03:04:05.678Z', '2024-01-02T03:04:05Z', '2024-01-02T03:04:05.678+01:00',
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855',
);
const anyValue = fc.oneof(edgy, fc.jsonValue());
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), value: anyValue }),
  fc.constant({ op: 'delete' as const }),
  fc.record({ op: fc.constant('add' as const), key: fc.oneof(fc.string(), fc.constantFrom('traceparent', 'body', 'extra')), value: anyValue }),
);

describe('incoming events', () => {
  it('accepts the events the tap publishes without falling back to zod', () => {
    for (const event of bases()) expect(isMirrorEvent(JSON.parse(JSON.stringify(event)))).toBe(true);
  });

  it('accepts a changed event only when the contract schema accepts it too', () => {
    const all = bases();
    fc.assert(
      fc.property(fc.nat(all.length - 1), fc.nat(), mutation, (b, p, m) => {
        const base = all[b];
        const candidates = paths(base);
        const changed = JSON.parse(JSON.stringify(mutate(base, candidates[p % candidates.length] ?? [], m))) as unknown;
        const zod = MirrorEvent.safeParse(changed).success;
        // Never more lenient than the schema; and no stricter either, or valid events would pay for zod.
        expect(isMirrorEvent(changed)).toBe(zod);
      }),
      { numRuns: 3000 },
    );
  });

  it('turns any bytes into an event or an InvalidEventError, never anything else', () => {
    const outcomes = { event: 0, refused: 0 };
    const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array(), fc.json().map((s) => new TextEncoder().encode(s)), fc.constantFrom(...bases().map(encode))), (bytes) => {
        let parsed: unknown;
        let thrown: unknown;
        try {
          parsed = parseEvent(bytes);
        } catch (error) {
          thrown = error;
        }
        if (thrown === undefined) {
          outcomes.event++;
          expect(MirrorEvent.safeParse(parsed).success).toBe(true);
        } else {
          outcomes.refused++;
          expect(thrown).toBeInstanceOf(InvalidEventError);
        }
      }),
      { numRuns: 300 },
    );
    // Both kinds of input were drawn: a parser that refused everything, or accepted everything, would not pass.
    expect(outcomes.event).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  });
});

describe('incoming events with names of Object.prototype members', () => {
  const event = makeEvent({
    headers: mapOf(PROTOTYPE_NAMES.map((n) => n.toLowerCase()), (n) => [`h-${n}`]),
    cookies: mapOf(PROTOTYPE_NAMES, (n) => `c-${n}`),
  });
  const bytes = new TextEncoder().encode(JSON.stringify(event));

  it('keeps every header and cookie name, __proto__ included', () => {
    const parsed = parseEvent(bytes);
    expect(Object.keys(parsed.data.headers).sort()).toEqual(PROTOTYPE_NAMES.map((n) => n.toLowerCase()).sort());
    expect(Object.keys(parsed.data.cookies).sort()).toEqual([...PROTOTYPE_NAMES].sort());
    expect(parsed.data.headers['__proto__']).toEqual(['h-__proto__']);
    expect(parsed.data.cookies['constructor']).toBe('c-constructor');
  });

  it.each([
    ['headers', '{"__proto__":5}', 'expected an array of strings\n  → at data.headers.__proto__'],
    ['headers', '{"__proto__":[1]}', 'expected an array of strings\n  → at data.headers.__proto__'],
    ['cookies', '{"__proto__":["x"]}', 'expected string\n  → at data.cookies.__proto__'],
    ['cookies', '{"__proto__":null}', 'expected string\n  → at data.cookies.__proto__'],
  ])('refuses %s holding __proto__ with a value of the wrong type (%s), which zod does not look at, naming the field', (field, map, where) => {
    const text = JSON.stringify(makeEvent()).replace(new RegExp(`"${field}":\\{[^}]*\\}`), `"${field}":${map}`);
    expect(text).toContain(`"${field}":${map}`);
    expect(() => parseEvent(new TextEncoder().encode(text))).toThrow(new InvalidEventError(`not a Request Mirror event:\n✖ Invalid input: ${where}`));
  });

  it('accepts __proto__ names with values of the right type through zod', () => {
    const text = JSON.stringify(makeEvent()).replace(/"headers":\{[^}]*\}/, '"headers":{"__proto__":["a"]}').replace(/"cookies":\{[^}]*\}/, '"cookies":{"__proto__":"b"}');
    const parsed = parseEvent(new TextEncoder().encode(text));
    expect(parsed.data.headers['__proto__']).toEqual(['a']);
    expect(parsed.data.cookies['__proto__']).toBe('b');
  });
});

describe('incoming events that are refused', () => {
  function refusal(bytes: Uint8Array): InvalidEventError {
    try {
      parseEvent(bytes);
    } catch (error) {
      if (error instanceof InvalidEventError) return error;
      throw error;
    }
    throw new Error('expected an InvalidEventError');
  }

  it('says bytes that are not UTF-8 are not UTF-8 JSON, with the decoder error as the cause', () => {
    const error = refusal(new Uint8Array([0x7b, 0xff, 0x7d]));
    expect(error.message).toBe('not UTF-8 JSON: The encoded data was not valid for encoding utf-8');
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it('says text that is not JSON is not UTF-8 JSON, with the parser error as the cause', () => {
    const error = refusal(new TextEncoder().encode('{"a":'));
    expect(error.message).toMatch(/^not UTF-8 JSON: /);
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it("gives zod's account of JSON that is not an event, naming the field, with zod's error as the cause", () => {
    const error = refusal(new TextEncoder().encode(JSON.stringify({ ...makeEvent(), source: '' })));
    expect(error.message).toMatch(/^not a Request Mirror event:\n✖ .*\n {2}→ at source$/);
    expect(error.cause).toBeInstanceOf(z.ZodError);
  });
});

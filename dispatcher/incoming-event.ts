import { z } from 'zod';
import { Body, MirrorEvent, RequestSnapshot } from '../contract/event.ts';
import { InvalidEventError } from './errors.ts';

// A NATS message becomes an event only after the full contract check: the dispatcher forwards what it validated,
// never whatever someone published on the subject.
//
// The zod parse cost ~5 µs per event on top of JSON.parse (~2 µs), a tenth of a delivery's CPU. So a walk of the
// same schema goes first: it checks every field and rule, reading every literal, enum, key list and string format from
// the contract's schemas rather than restating them, and it only ever says yes to what zod accepts (a property test
// holds it to that). Anything it does not accept goes through zod, which has the final word and writes the log message.

const decoder = new TextDecoder('utf-8', { fatal: true });

export function parseEvent(data: Uint8Array): MirrorEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new InvalidEventError(`not UTF-8 JSON: ${(cause as Error).message}`, { cause });
  }
  if (isMirrorEvent(raw)) return raw;
  const parsed = MirrorEvent.safeParse(raw);
  if (!parsed.success) throw new InvalidEventError(`not a Request Mirror event:\n${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  // zod skips a record key named __proto__ altogether: it neither checks its value nor copies it. So that one key is
  // checked here, and the event kept is JSON.parse's, which holds every name as an own property (the schema has no
  // transforms or defaults, so zod's copy would differ from it only by the missing names).
  const { headers, cookies } = (raw as MirrorEvent).data;
  if (Object.hasOwn(headers, '__proto__') && !isStringArray(headers['__proto__'])) {
    throw new InvalidEventError('not a Request Mirror event:\n✖ Invalid input: expected an array of strings\n  → at data.headers.__proto__');
  }
  if (Object.hasOwn(cookies, '__proto__') && typeof cookies['__proto__'] !== 'string') {
    throw new InvalidEventError('not a Request Mirror event:\n✖ Invalid input: expected string\n  → at data.cookies.__proto__');
  }
  return raw as MirrorEvent;
}

const event = MirrorEvent.shape;
const snapshot = RequestSnapshot.shape;
const body = Body.shape;
const EVENT_KEYS = new Set(Object.keys(event));
const SNAPSHOT_KEYS = new Set(Object.keys(snapshot));
const BODY_KEYS = new Set(Object.keys(body));
const ATTACHMENTS: ReadonlySet<unknown> = new Set(snapshot.attachment.options);
const SCHEMES: ReadonlySet<unknown> = new Set(snapshot.scheme.options);
const ENCODINGS: ReadonlySet<unknown> = new Set(body.encoding.options);
// Formats (ULID, RFC 3339 time, hex SHA-256) are checked by the contract's own field schemas.
const fieldOk = (schema: z.ZodType, value: unknown) => typeof value === 'string' && schema.safeParse(value).success;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Json, keys: ReadonlySet<string>): boolean {
  for (const key in value) if (!keys.has(key)) return false;
  return true;
}

function isStringArray(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

const isCount = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;

/** True only for values `MirrorEvent` accepts unchanged (it has no transforms or defaults to apply). */
export function isMirrorEvent(value: unknown): value is MirrorEvent {
  return (
    isObject(value) &&
    onlyKeys(value, EVENT_KEYS) &&
    value.specversion === event.specversion.value &&
    value.type === event.type.value &&
    value.datacontenttype === event.datacontenttype.value &&
    typeof value.source === 'string' &&
    value.source.length > 0 &&
    typeof value.subject === 'string' &&
    (value.traceparent === undefined || typeof value.traceparent === 'string') &&
    fieldOk(event.id, value.id) &&
    fieldOk(event.time, value.time) &&
    isSnapshot(value.data)
  );
}

function isSnapshot(value: unknown): boolean {
  if (!isObject(value) || !onlyKeys(value, SNAPSHOT_KEYS)) return false;
  if (!ATTACHMENTS.has(value.attachment) || !SCHEMES.has(value.scheme)) return false;
  if (typeof value.method !== 'string' || value.method.length === 0) return false;
  if (typeof value.host !== 'string' || typeof value.path !== 'string' || typeof value.query !== 'string') return false;
  if (value.clientIp !== null && typeof value.clientIp !== 'string') return false;
  if (!isStringArray(value.redactedHeaders)) return false;
  if (value.latin1Headers !== undefined && !isStringArray(value.latin1Headers)) return false;
  const { headers, cookies } = value;
  if (!isObject(headers) || !isObject(cookies)) return false;
  for (const name in headers) if (!isStringArray(headers[name])) return false;
  for (const name in cookies) if (typeof cookies[name] !== 'string') return false;
  return value.body === null || isBody(value.body);
}

function isBody(value: unknown): boolean {
  return (
    isObject(value) &&
    onlyKeys(value, BODY_KEYS) &&
    ENCODINGS.has(value.encoding) &&
    typeof value.data === 'string' &&
    isCount(value.capturedBytes) &&
    (value.declaredLength === null || isCount(value.declaredLength)) &&
    isCount(value.receivedBytes) &&
    typeof value.truncated === 'boolean' &&
    typeof value.interrupted === 'boolean' &&
    fieldOk(body.sha256, value.sha256)
  );
}

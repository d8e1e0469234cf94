import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { cutBytes } from '../contract/body-cut.ts';
import { REDACTED_BY_DEFAULT, type Target } from '../contract/config.ts';
import type { Body, MirrorEvent } from '../contract/event.ts';

// What one target may see of an event. The tap removed what no target wanted; what it kept for one target must not
// reach another: cookies outside this target's `cookieNames`, secret headers outside its `revealHeaders`, and body
// bytes beyond its `maxBodyBytes`.

export type ProjectionSettings = Pick<Target, 'cookieNames' | 'revealHeaders' | 'maxBodyBytes'>;

/** True when the event as published is already what this target may see, so its bytes can be sent unchanged. */
export function isUnchangedFor(event: MirrorEvent, target: ProjectionSettings): boolean {
  const { headers, cookies, body } = event.data;
  for (const name of REDACTED_BY_DEFAULT) {
    if (Object.hasOwn(headers, name) && !target.revealHeaders.includes(name)) return false;
  }
  for (const name in cookies) {
    if (!target.cookieNames.includes(name)) return false;
  }
  return body === null || (target.maxBodyBytes > 0 && body.capturedBytes <= target.maxBodyBytes);
}

export function projectEvent(event: MirrorEvent, target: ProjectionSettings): MirrorEvent {
  const data = event.data;
  // Null-prototype maps: a header or cookie may be named __proto__ or constructor, which a plain object would turn
  // into its prototype or shadow instead of keeping as a name.
  const headers = Object.create(null) as Record<string, string[]>;
  const redacted = new Set(data.redactedHeaders);
  for (const [name, values] of Object.entries(data.headers)) {
    if (REDACTED_BY_DEFAULT.includes(name) && !target.revealHeaders.includes(name)) {
      redacted.add(name);
    } else {
      headers[name] = values;
    }
  }
  const cookies = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(data.cookies)) {
    if (target.cookieNames.includes(name)) cookies[name] = value;
  }
  const { latin1Headers, ...rest } = data;
  // Name only what this target still sees as Latin-1: its headers, and `cookie` for its cookies.
  const latin1 = latin1Headers?.filter((n) => Object.hasOwn(headers, n) || (n === 'cookie' && Object.keys(cookies).length > 0)) ?? [];
  return {
    ...event,
    data: {
      ...rest,
      headers,
      ...(latin1.length === 0 ? {} : { latin1Headers: latin1 }),
      redactedHeaders: [...redacted],
      cookies,
      body: cutBody(data.body, target.maxBodyBytes),
    },
  };
}

/** Cuts the body to `maxBytes` by the contract's rule (contract/body-cut.ts); null when the target takes no body. */
export function cutBody(body: Body | null, maxBytes: number): Body | null {
  if (body === null || maxBytes === 0) return null;
  if (body.capturedBytes <= maxBytes) return body;
  const kept = cutBytes(Buffer.from(body.data, body.encoding), maxBytes);
  // A binary body can become text when the cut drops its only invalid bytes; the encoding follows the kept bytes.
  const utf8 = body.encoding === 'utf8' || isUtf8(kept);
  return {
    ...body,
    encoding: utf8 ? 'utf8' : 'base64',
    data: kept.toString(utf8 ? 'utf8' : 'base64'),
    capturedBytes: kept.length,
    truncated: true,
    sha256: createHash('sha256').update(kept).digest('hex'),
  };
}

import { z } from 'zod';

// The event the tap publishes and the dispatcher delivers: a CloudEvents 1.0 structured-mode JSON object whose
// `data` is a snapshot of one HTTP request. contract/schemas/event.schema.json is generated from this file.

export const EVENT_TYPE = 'io.request-mirror.request.v1';

export const Body = z
  .strictObject({
    encoding: z.enum(['utf8', 'base64']).describe('`utf8` when the captured bytes are valid UTF-8, else `base64`.'),
    data: z.string().describe('The captured bytes in that encoding.'),
    capturedBytes: z.int().min(0).describe('Bytes captured (after any cut for a target or the NATS payload limit).'),
    declaredLength: z.int().min(0).nullable().describe('`Content-Length` of the request, or null when absent (chunked).'),
    receivedBytes: z
      .int()
      .min(0)
      .describe('Bytes that had arrived when the capture completed; more than `capturedBytes` when the body was cut.'),
    truncated: z.boolean().describe('True when fewer bytes were captured than the request carried (cut at a limit, or `interrupted`).'),
    interrupted: z
      .boolean()
      .describe(
        'True when the capture stopped before the body\'s end and its limit (the sender went away mid-body; with the plugin, the upstream never read it to its end): `data` is what arrived.',
      ),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('Hex SHA-256 of the captured bytes.'),
  })
  .describe('The request body as captured.');

export const RequestSnapshot = z
  .strictObject({
    attachment: z
      .enum(['forwardAuth', 'mirror', 'plugin'])
      .describe('How the request reached the tap: Traefik forwardAuth, Traefik Mirroring, or the Request Mirror Traefik plugin.'),
    method: z.string().min(1),
    scheme: z.enum(['http', 'https']),
    host: z
      .string()
      .describe(
        'Host the client asked for, in the form Traefik\'s `Host` matcher compares: lower-case, without port, IPv6 brackets or trailing dot (the header as sent is in `headers.host`).',
      ),
    path: z.string().describe('Path as sent by the client, still percent-encoded.'),
    query: z.string().describe('Raw query string without the leading `?`; empty when none.'),
    clientIp: z.string().nullable().describe('First address of `X-Forwarded-For` as Traefik set it, else the peer.'),
    headers: z
      .record(z.string(), z.array(z.string()))
      .describe(
        'Request headers by lower-case name; every value of a repeated header is kept, in order. Values are decoded as UTF-8, except those of the headers in `latin1Headers`.',
      ),
    latin1Headers: z
      .array(z.string())
      .optional()
      .describe(
        'Headers (and `cookie` for `cookies`) with a value whose bytes are not UTF-8: all their values are given as Latin-1, one character per byte. Absent when every value is UTF-8.',
      ),
    redactedHeaders: z.array(z.string()).describe('Headers the request carried that were left out for secrecy.'),
    cookies: z.record(z.string(), z.string()).describe('Cookies whose names a target allows; no others.'),
    body: Body.nullable().describe('Null when no target wants bodies; a zero-length body otherwise when there is none.'),
  })
  .describe('One HTTP request as it passed through Traefik.');

export const MirrorEvent = z
  .strictObject({
    specversion: z.literal('1.0'),
    id: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/).describe('ULID: unique and sortable by time.'),
    source: z.string().min(1).describe('URI reference naming the tap instance.'),
    type: z.literal(EVENT_TYPE),
    time: z.iso.datetime({ precision: 3 }).describe('When the tap saw the request (RFC 3339, milliseconds, UTC).'),
    datacontenttype: z.literal('application/json'),
    subject: z.string().describe('`<host><path>` of the request.'),
    traceparent: z.string().optional().describe('W3C Trace Context of the request, when it carried one.'),
    data: RequestSnapshot,
  })
  .describe('A Request Mirror event (CloudEvents 1.0, structured mode).');

export type Body = z.infer<typeof Body>;
export type RequestSnapshot = z.infer<typeof RequestSnapshot>;
export type MirrorEvent = z.infer<typeof MirrorEvent>;

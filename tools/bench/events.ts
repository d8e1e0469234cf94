import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ulid } from 'ulid';
import { EVENT_TYPE, type MirrorEvent } from '../../contract/event.ts';
import { requestSubject } from '../../contract/subjects.ts';

// Events as the tap publishes them, for driving dispatchers without a tap in the way: realistic headers and a small
// JSON body (~1.5 KB per event on the wire).

export function makeEvent(i: number): MirrorEvent {
  const body = JSON.stringify({ orderId: i, items: [{ sku: `sku-${i % 97}`, qty: 1 + (i % 5) }], note: 'x'.repeat(200) });
  return {
    specversion: '1.0',
    id: ulid(),
    source: '//request-mirror/bench',
    type: EVENT_TYPE,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    subject: `shop.example.com/api/orders/${i}`,
    data: {
      attachment: 'forwardAuth',
      method: 'POST',
      scheme: 'https',
      host: 'shop.example.com',
      path: `/api/orders/${i}`,
      query: 'expand=items',
      clientIp: '203.0.113.7',
      headers: {
        accept: ['application/json'],
        'accept-language': ['en-GB,en;q=0.9'],
        'content-type': ['application/json'],
        'user-agent': ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'],
        'x-forwarded-for': ['203.0.113.7'],
        'x-request-id': [`req-${i}`],
      },
      redactedHeaders: ['authorization', 'cookie'],
      cookies: {},
      body: {
        encoding: 'utf8',
        data: body,
        capturedBytes: Buffer.byteLength(body),
        declaredLength: Buffer.byteLength(body),
        receivedBytes: Buffer.byteLength(body),
        truncated: false,
        interrupted: false,
        sha256: createHash('sha256').update(body).digest('hex'),
      },
    },
  };
}

export function makePayloads(n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(makeEvent(i)));
}

export interface Publisher {
  /** Publishes every payload as fast as the client buffers them, then flushes. */
  burst(payloads: readonly string[]): Promise<void>;
  /** Publishes at `rate` per second for `durationS`, in 10 ms batches. */
  paced(rate: number, durationS: number): Promise<number>;
  close(): Promise<void>;
}

export async function startPublisher(natsUrl: string, subjectPrefix: string): Promise<Publisher> {
  const nc: NatsConnection = await connect({ servers: natsUrl });
  const subject = requestSubject(subjectPrefix, 'POST');
  const encoder = new TextEncoder();
  return {
    async burst(payloads) {
      for (const p of payloads) nc.publish(subject, encoder.encode(p));
      await nc.flush();
    },
    async paced(rate, durationS) {
      const template = makePayloads(100).map((p) => encoder.encode(p));
      const started = performance.now();
      let sent = 0;
      for (;;) {
        const elapsed = (performance.now() - started) / 1000;
        if (elapsed >= durationS) break;
        const due = Math.floor(elapsed * rate);
        while (sent < due) {
          nc.publish(subject, template[sent % template.length] ?? new Uint8Array());
          sent++;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      await nc.flush();
      return sent;
    },
    close: () => nc.close(),
  };
}

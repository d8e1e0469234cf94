import { connect } from '@nats-io/transport-node';
import { parseArgs } from 'node:util';
import { allRequestsSubject } from '../../contract/subjects.ts';
import { MirrorEvent } from '../../contract/event.ts';
import { formatEvent } from './format-event.ts';

// `make tail`: prints every event the taps publish, live, as a plain NATS subscriber (not in the dispatchers' queue
// group, so it takes nothing away from them). The same stream with the NATS CLI:
//   nats sub --server nats://127.0.0.1:4222 'request-mirror.requests.>'
//   node tools/demo/tail.ts [--server nats://127.0.0.1:4222] [--prefix request-mirror]

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
    prefix: { type: 'string', default: 'request-mirror' },
  },
});
const subject = allRequestsSubject(values.prefix);
const nc = await connect({ servers: values.server.split(','), name: 'request-mirror-tail', maxReconnectAttempts: -1 });
process.stderr.write(`tail: subscribed to ${subject} on ${values.server} (Ctrl-C to stop)\n`);
const sub = nc.subscribe(subject);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void nc.drain());
for await (const msg of sub) {
  const parsed = MirrorEvent.safeParse(msg.json());
  process.stdout.write(parsed.success ? formatEvent(parsed.data, msg.subject) : `${msg.subject}: ${msg.string()}\n`);
}

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EXIT_FAILURE, parseCommandLine } from '../../contract/command-line.ts';
import { MirrorEvent } from '../../contract/event.ts';
import { allRequestsSubject } from '../../contract/subjects.ts';
import { readDemoState } from './demo-state.ts';
import { formatEvent } from './format-event.ts';

// `make tail`: prints every event the taps publish, live, as a plain NATS subscriber (not in the dispatchers' queue
// group, so it takes nothing away from them). The same stream with the NATS CLI:
//   nats sub --server nats://127.0.0.1:4222 'request-mirror.requests.>'
// Every failure is one line on stderr: NATS not there at start (exit 1), NATS lost while running (it reconnects).

const NAME = 'make tail';
const { values } = parseCommandLine({
  name: NAME,
  usage: `
usage: make tail
       node tools/demo/tail.ts [--server URL] [--prefix PREFIX]
Prints every event published on <PREFIX>.requests.> as it happens.
  --server URL      the NATS server (default: $NATS_URL, else the running make demo's NATS, else nats://127.0.0.1:4222)
  --prefix PREFIX   nats.subjectPrefix of the config (default request-mirror)
  -h, --help        this text
Exit status: 0 stopped with Ctrl-C, 1 NATS not reachable at start, 2 bad usage.`,
  options: { server: { type: 'string' }, prefix: { type: 'string', default: 'request-mirror' } },
});

const demo = readDemoState();
const [server, from] =
  values.server !== undefined ? [values.server, '--server']
  : process.env.NATS_URL ? [process.env.NATS_URL, 'NATS_URL']
  : demo ? [demo.natsUrl, `the running make demo, pid ${demo.pid}`]
  : ['nats://127.0.0.1:4222', 'the default; no make demo is running'];
const subject = allRequestsSubject(values.prefix);

let nc: NatsConnection;
try {
  nc = await connect({ servers: server.split(','), name: 'request-mirror-tail', maxReconnectAttempts: -1 });
} catch (error) {
  process.stderr.write(`tail: cannot reach NATS at ${server} (${from}): ${(error as Error).message}\n`);
  process.exit(EXIT_FAILURE);
}
process.stderr.write(`tail: subscribed to ${subject} on ${server} (${from}); Ctrl-C to stop\n`);

const conn = nc;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // close, not drain: with NATS gone a drain never completes, and a tail has nothing to finish.
    void conn.close().finally(() => process.exit(0));
  });
}
void (async () => {
  for await (const status of conn.status()) {
    if (status.type === 'disconnect') process.stderr.write(`tail: lost NATS at ${server}; reconnecting until it is back (Ctrl-C to stop)\n`);
    if (status.type === 'reconnect') process.stderr.write(`tail: reconnected to NATS at ${server}\n`);
  }
})();

for await (const msg of conn.subscribe(subject)) {
  let json: unknown;
  try {
    json = msg.json();
  } catch {
    json = undefined;
  }
  const parsed = MirrorEvent.safeParse(json);
  process.stdout.write(parsed.success ? formatEvent(parsed.data, msg.subject) : `${msg.subject}: ${msg.string()}\n`);
}

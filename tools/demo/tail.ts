import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EXIT_FAILURE, parseCommandLine, usageError } from '../../contract/command-line.ts';
import { Config } from '../../contract/config.ts';
import { MirrorEvent } from '../../contract/event.ts';
import { allRequestsSubject } from '../../contract/subjects.ts';
import { readDemoState } from './demo-state.ts';
import { formatEvent } from './format-event.ts';

// `make tail`: prints every event the taps publish, live, as a plain NATS subscriber (not in the dispatchers' queue
// group, so it takes nothing away from them). The same stream with the NATS CLI:
//   nats sub --server nats://127.0.0.1:4222 'request-mirror.requests.>'
// Every failure is one line on stderr: NATS not there at start (exit 1), NATS lost while running (it reconnects, or
// follows a restarted demo to its new NATS).

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
const [initial, from] =
  values.server !== undefined ? [values.server, '--server']
  : process.env.NATS_URL ? [process.env.NATS_URL, 'NATS_URL']
  : demo ? [demo.natsUrl, `the running make demo, pid ${demo.pid}`]
  : ['nats://127.0.0.1:4222', 'the default; no make demo is running'];
const followsDemo = values.server === undefined && !process.env.NATS_URL;
const prefix = Config.shape.nats.unwrap().shape.subjectPrefix.safeParse(values.prefix);
if (!prefix.success) usageError(NAME, `--prefix ${JSON.stringify(values.prefix)} is not a subject prefix (dot-separated tokens of A-Z a-z 0-9 _ -)`);
const subject = allRequestsSubject(prefix.data);

let current: NatsConnection | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // close, not drain: with NATS gone a drain never completes, and a tail has nothing to finish.
    void (current?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  });
}

async function connectOrExit(server: string, source: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: server.split(','), name: 'request-mirror-tail', maxReconnectAttempts: -1 });
  } catch (error) {
    process.stderr.write(`tail: cannot reach NATS at ${server} (${source}): ${(error as Error).message}\n`);
    process.exit(EXIT_FAILURE);
  }
}

/**
 * Reports losing and regaining `server`. Resolves with a new URL when, while `server` is lost, a newly started demo
 * has written down another NATS (a restarted demo may have had to pick another port); with undefined once closed.
 */
function watchStatus(nc: NatsConnection, server: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let poll: NodeJS.Timeout | undefined;
    const stopPolling = () => {
      clearInterval(poll);
      poll = undefined;
    };
    void nc.closed().then(() => {
      stopPolling();
      resolve(undefined);
    });
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') {
          process.stderr.write(`tail: lost NATS at ${server}; reconnecting until it is back (Ctrl-C to stop)\n`);
          if (followsDemo && poll === undefined) {
            poll = setInterval(() => {
              const next = readDemoState();
              if (next && next.natsUrl !== server) {
                stopPolling();
                resolve(next.natsUrl);
              }
            }, 500);
          }
        } else if (status.type === 'reconnect') {
          stopPolling();
          process.stderr.write(`tail: reconnected to NATS at ${server}\n`);
        }
      }
    })();
  });
}

let server = initial;
let source = from;
for (;;) {
  const nc = await connectOrExit(server, source);
  current = nc;
  process.stderr.write(`tail: subscribed to ${subject} on ${server} (${source}); Ctrl-C to stop\n`);
  const sub = nc.subscribe(subject);
  const printing = (async () => {
    for await (const msg of sub) {
      let json: unknown;
      try {
        json = msg.json();
      } catch {
        json = undefined;
      }
      const parsed = MirrorEvent.safeParse(json);
      process.stdout.write(parsed.success ? formatEvent(parsed.data, msg.subject) : `${msg.subject}: ${msg.string()}\n`);
    }
  })();
  const moved = await watchStatus(nc, server);
  await nc.close();
  await printing;
  if (moved === undefined) break;
  const next = readDemoState();
  source = `the restarted make demo, pid ${next?.pid ?? '?'}`;
  process.stderr.write(`tail: make demo now runs NATS at ${moved}; following it\n`);
  server = moved;
}

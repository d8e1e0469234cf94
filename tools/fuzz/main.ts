import { EXIT_FAILURE, integerOption, parseCommandLine } from '../../contract/command-line.ts';
import { formatReport } from './report.ts';
import { runFuzz } from './run.ts';

// `make fuzz`: hostile input at volume through real Traefik, straight to the tap's listeners and onto the NATS
// subject the dispatchers read. Prints its figures; exits 1 when any check fails.

const NAME = 'node tools/fuzz/main.ts';
const { values } = parseCommandLine({
  name: NAME,
  usage: `
usage: node tools/fuzz/main.ts [--requests N] [--events N] [--seed N] [--concurrency N] [--max-seconds N]
  (or: make fuzz, make fuzz FUZZ_ARGS='--seed 42')

Sends generated HTTP/1.1 and HTTP/2 requests (odd methods, paths, headers, cookies, bodies) through Traefik's
forwardAuth and Mirroring routers and straight to the tap's listeners, raw malformed bytes to the tap, and generated
events (valid and not) onto request-mirror.requests.>, then checks: no non-2xx from the tap, no crash, flat RSS,
every request and event accounted for in the services' own counters. A failure prints the case's seed, index and input.
  --requests N        HTTP requests and raw exchanges (default 200000)
  --events N          events published straight to NATS (default 40000)
  --seed N            the run's seed (default: random, printed); case i is drawn from seed + i
  --concurrency N     requests in flight at once (default 32)
  --max-seconds N     give up (and fail) after this long (default 3600)
  --rss-tolerance PCT RSS growth allowed from the first third of the run to the last, after a warm-up of the
                      first quarter of the requests (default 25)
  -h, --help          this text`,
  options: {
    requests: { type: 'string', default: '200000' },
    events: { type: 'string', default: '40000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    'max-seconds': { type: 'string', default: '3600' },
    'rss-tolerance': { type: 'string', default: '25' },
  },
});

const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : integerOption(NAME, 'seed', values.seed, 0, 2 ** 31 - 1);
const options = {
  requests: integerOption(NAME, 'requests', values.requests, 0),
  events: integerOption(NAME, 'events', values.events, 0),
  seed,
  concurrency: integerOption(NAME, 'concurrency', values.concurrency, 1, 1024),
  maxSeconds: integerOption(NAME, 'max-seconds', values['max-seconds'], 1),
  rssTolerance: integerOption(NAME, 'rss-tolerance', values['rss-tolerance'], 0, 1000) / 100,
  rssMinSeconds: 60,
  warmUpFraction: 0.25,
};
const started = Date.now();
const log = (line: string) => process.stderr.write(`[fuzz +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
log(`seed ${seed} (repeat this run with --seed ${seed})`);
const report = await runFuzz({ ...options, log });
process.stdout.write(formatReport(report));
if (report.failures.length > 0) process.exitCode = EXIT_FAILURE;

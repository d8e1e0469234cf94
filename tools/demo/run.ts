import { request } from 'undici';
import { parseCommandLine } from '../../contract/command-line.ts';
import { portOrFree } from '../stack/free-port.ts';
import { localizeExample, readExample } from '../stack/examples.ts';
import { startStack, type Stack } from '../stack/stack.ts';
import { clearDemoState, writeDemoState } from './demo-state.ts';
import { startDemoReceiver, type DemoReceiver } from './receiver.ts';
import { DEMO_ROUTERS, DEMO_TRAEFIK_FILES } from './routes.ts';
import { shellCommand } from './shell-quote.ts';
import { demoUpstream } from './upstream.ts';

// `make demo`: the whole product on loopback — Traefik (forwardAuth on app.localhost and api.localhost, Mirroring on
// shop.localhost, loaded from the very snippets in docs/examples/traefik/), NATS, the ingress-tap, the dispatcher, a
// demo upstream and a webhook receiver that prints what it gets. Sends a few requests, then stays up until Ctrl-C.

const { values: flags } = parseCommandLine({
  name: 'make demo',
  usage: `
usage: make demo
       node tools/demo/run.ts [--once] [--verbose]
Starts Traefik, NATS, the ingress-tap, the dispatcher, a demo upstream and a printing webhook on loopback, sends a
few requests through Traefik and stays up until Ctrl-C. \`make tail\` next to it prints what reaches NATS.
  --once        exit 0 once every example request reached the webhook (1 if one did not)
  --verbose     print the output of every process
  -h, --help    this text`,
  options: { once: { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false } },
});
const say = (text: string) => process.stdout.write(`\x1b[36m[demo]\x1b[0m ${text}\n`);

interface Example {
  readonly title: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

const EXAMPLES: readonly Example[] = [
  {
    title: 'GET with a query and cookies through forwardAuth (only the `session` cookie is configured to leave the tap)',
    method: 'GET',
    host: 'app.localhost',
    path: '/products?category=books&page=2',
    headers: { cookie: 'session=abc123; theme=dark', 'user-agent': 'request-mirror-demo' },
  },
  {
    title: 'POST JSON through forwardAuth with forwardBody',
    method: 'POST',
    host: 'api.localhost',
    path: '/orders',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: 'book-42', quantity: 2 }),
  },
  {
    title: 'A request with Authorization: the webhook sees that it was there, not its value',
    method: 'GET',
    host: 'app.localhost',
    path: '/account',
    headers: { authorization: 'Bearer demo-secret-token' },
  },
  {
    title: 'PUT JSON through Traefik Mirroring (the tap gets a copy after the upstream answered)',
    method: 'PUT',
    host: 'shop.localhost',
    path: '/cart/7',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ add: 'mug', quantity: 1 }),
  },
];

async function main(): Promise<void> {
  say('starting NATS, ingress-tap, dispatcher, demo upstream, webhook receiver and Traefik');
  const ports = {
    traefikWeb: await portOrFree(8000),
    traefikAdmin: await portOrFree(8090),
    nats: await portOrFree(4222),
    tapForwardAuth: await portOrFree(8080),
    tapMirror: await portOrFree(8081),
    tapAdmin: await portOrFree(9080),
    dispatcherAdmin: await portOrFree(9081),
    upstream: await portOrFree(8091),
  };
  let receiver: DemoReceiver | undefined;
  let stack: Stack | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    await stack?.close().catch((e: unknown) => {
      say(`cleanup: ${String(e)}`);
    });
    await receiver?.close();
    clearDemoState();
    process.exit(code);
  };
  // `on`, not `once`: the stack's own handler (tools/stack/process.ts) steps aside only while another listener is
  // registered, and would otherwise SIGKILL every child and end the demo by the signal before it cleans up.
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  try {
    const r = await startDemoReceiver(await portOrFree(8092));
    receiver = r;
    stack = await startStack({
      ports,
      upstream: demoUpstream,
      targets: () => [{ name: 'demo-receiver', watchURL: `${r.url}/events`, methods: ['*'], cookieNames: ['session'] }],
      traefik: (b) => ({
        files: Object.fromEntries(
          DEMO_TRAEFIK_FILES.map((f) => [f, localizeExample(readExample(`traefik/${f}`), b)]),
        ),
        routers: [...DEMO_ROUTERS],
      }),
      ...(flags.verbose ? { onOutput: (name: string, text: string) => process.stderr.write(`[${name}] ${text}`) } : {}),
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    await shutdown(1);
    return;
  }
  const s = stack;
  const web = s.traefik?.url ?? '';
  say(`up: Traefik on ${web}`);
  writeDemoState({ pid: process.pid, natsUrl: `nats://127.0.0.1:${s.natsPort}` });
  const site = (host: string, path: string) => `http://${host}:${s.traefik?.webPort ?? ''}${path}`;

  for (const ex of EXAMPLES) {
    say(`${ex.title}\n       $ ${shellCommand(['curl', '-s', ...curlOptions(ex), site(ex.host, ex.path)])}`);
    const res = await request(`${web}${ex.path}`, {
      method: ex.method as 'GET',
      headers: { host: ex.host, ...ex.headers },
      body: ex.body ?? null,
    });
    const text = await res.body.text();
    say(`client got ${res.statusCode}: ${text.trim()}`);
  }

  const deadline = Date.now() + 30_000;
  while (receiver.events.length < EXAMPLES.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const missing = EXAMPLES.filter((ex) => !receiver.events.some((e) => e.data.host === ex.host && `${e.data.path}${e.data.query ? `?${e.data.query}` : ''}` === ex.path));
  if (missing.length > 0) {
    say(`these examples never reached the webhook: ${missing.map((m) => `${m.method} ${m.host}${m.path}`).join(', ')}`);
    process.stderr.write(s.report());
    await shutdown(1);
    return;
  }
  say(`all ${EXAMPLES.length} example requests reached the webhook`);
  if (flags.once) {
    await shutdown(0);
    return;
  }
  say(
    [
      'the stack stays up; try it (Ctrl-C stops everything):',
      `  forwardAuth:  $ ${shellCommand(['curl', '-s', site('app.localhost', '/anything?x=1&y=2'), '-b', 'session=me'])}`,
      `  with body:    $ ${shellCommand(['curl', '-s', site('api.localhost', '/orders'), '-d', '{"a":1}', '-H', 'content-type: application/json'])}`,
      `  Mirroring:    $ ${shellCommand(['curl', '-s', site('shop.localhost', '/cart'), '-X', 'PUT', '-d', 'hello'])}`,
      `  live events:  $ make tail   (or: ${shellCommand(['nats', 'sub', '--server', `nats://127.0.0.1:${s.natsPort}`, 'request-mirror.requests.>'])})`,
      `  Traefik API:  ${s.traefik?.adminUrl ?? ''}/api/http/routers`,
      `  tap metrics:  ${s.tapAdminUrl}/metrics   dispatcher metrics: ${s.dispatcherAdminUrl}/metrics`,
    ].join('\n'),
  );
}

function curlOptions(ex: Example): string[] {
  return [
    ...(ex.method === 'GET' ? [] : ['-X', ex.method]),
    ...Object.entries(ex.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    ...(ex.body ? ['-d', ex.body] : []),
  ];
}

await main();

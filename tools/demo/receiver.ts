import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MirrorEvent } from '../../contract/event.ts';
import { formatEvent } from './format-event.ts';
import { integerOption, parseCommandLine } from '../../contract/command-line.ts';

// The demo's webhook: accepts what the dispatcher POSTs, checks it against the event contract and pretty-prints it.
//   node tools/demo/receiver.ts [--port 8092]

export interface DemoReceiver {
  readonly url: string;
  readonly events: MirrorEvent[];
  close(): Promise<void>;
}

export async function startDemoReceiver(port: number, host = '127.0.0.1', print = (text: string) => process.stdout.write(text)): Promise<DemoReceiver> {
  const events: MirrorEvent[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const parsed = MirrorEvent.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
      if (!parsed.success) {
        print(`receiver: ${req.method ?? ''} ${req.url ?? ''} is not a Request Mirror event\n`);
        res.writeHead(400).end();
        return;
      }
      events.push(parsed.data);
      print(formatEvent(parsed.data, 'webhook received'));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actual}`,
    events,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

if (import.meta.main) {
  const { values } = parseCommandLine({
    name: 'node tools/demo/receiver.ts',
    usage: `
usage: node tools/demo/receiver.ts [--port N] [--host ADDRESS]
The demo's webhook: prints every Request Mirror event POSTed to it.
  --port N          port to listen on (default 8092)
  --host ADDRESS    address to listen on (default 0.0.0.0)
  -h, --help        this text`,
    options: { port: { type: 'string', default: '8092' }, host: { type: 'string', default: '0.0.0.0' } },
  });
  const r = await startDemoReceiver(integerOption('node tools/demo/receiver.ts', 'port', values.port, 0, 65535), values.host);
  process.stdout.write(`demo receiver listening on ${values.host}:${values.port}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void r.close());
}

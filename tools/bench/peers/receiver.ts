import { integerOption, parseCommandLine } from '../../../contract/command-line.ts';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

// A webhook target in its own process, so its work does not land on the event loop of whatever it is compared
// with. Modes: `fast` answers 204 once the body is read; `slow` answers after --delay-ms; `blackhole` accepts
// connections and never reads or answers. `GET /__count` (fast, slow) returns the requests received, in all and by path.
// Prints `listening on HOST:PORT` once bound.

const { values } = parseCommandLine({
  name: 'node tools/bench/peers/receiver.ts',
  usage: `
usage: node tools/bench/peers/receiver.ts [--mode fast|slow|blackhole] [--delay-ms N]
A webhook target for the benchmarks; prints "listening on HOST:PORT".`,
  options: {
    mode: { type: 'string', default: 'fast' },
    'delay-ms': { type: 'string', default: '2000' },
  },
});
const delayMs = integerOption('node tools/bench/peers/receiver.ts', 'delay-ms', values['delay-ms']);

function announce(address: AddressInfo | string | null): void {
  const a = address as AddressInfo;
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
}

if (values.mode === 'blackhole') {
  const held = new Set<Socket>();
  const server = createTcpServer({ pauseOnConnect: true }, (socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
    socket.on('error', () => held.delete(socket));
  });
  server.listen(0, '127.0.0.1', () => {
    announce(server.address());
  });
} else {
  let count = 0;
  const byPath: Record<string, number> = {};
  const server = createHttpServer((req, res) => {
    if (req.method === 'GET' && req.url === '/__count') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count, byPath }));
      return;
    }
    req.resume();
    req.on('end', () => {
      count++;
      const path = req.url ?? '/';
      byPath[path] = (byPath[path] ?? 0) + 1;
      if (values.mode === 'slow') setTimeout(() => res.writeHead(204).end(), delayMs);
      else res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;
  server.listen(0, '127.0.0.1', 4096, () => {
    announce(server.address());
  });
}

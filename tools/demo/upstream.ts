import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { integerOption, parseCommandLine } from '../../contract/command-line.ts';

// The demo's application behind Traefik: answers every request with a small JSON echo, so one can see that the
// request arrived unchanged and which mirror id Traefik's forwardAuth attached.
//   node tools/demo/upstream.ts [--port 8091]

export function demoUpstream(req: { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }, res: ServerResponse): void {
  const body = JSON.stringify({
    upstream: 'request-mirror demo',
    method: req.method,
    url: req.url,
    host: req.headers.host,
    bodyBytes: req.body.length,
    mirrorId: req.headers['x-request-mirror-id'] ?? null,
  });
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
}

if (import.meta.main) {
  const { values } = parseCommandLine({
    name: 'node tools/demo/upstream.ts',
    usage: `
usage: node tools/demo/upstream.ts [--port N] [--host ADDRESS]
The demo's application: answers every request with a small JSON echo.
  --port N          port to listen on (default 8091)
  --host ADDRESS    address to listen on (default 0.0.0.0)
  -h, --help        this text`,
    options: { port: { type: 'string', default: '8091' }, host: { type: 'string', default: '0.0.0.0' } },
  });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      demoUpstream({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) }, res);
    });
  });
  server.listen(integerOption('node tools/demo/upstream.ts', 'port', values.port, 0, 65535), values.host, () => {
    process.stdout.write(`demo upstream listening on ${values.host}:${values.port}\n`);
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close());
}

import type { MirrorEvent } from '../../contract/event.ts';

// How the demo receiver and `make tail` show one event: the request line first, then what a webhook would act on.

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

export function formatEvent(event: MirrorEvent, via: string): string {
  const d = event.data;
  const lines = [
    bold(`── ${via}: ${d.method} ${d.scheme}://${d.host}${d.path}${d.query ? `?${d.query}` : ''}`),
    `   id ${event.id}  attachment ${d.attachment}  time ${event.time}  client ${d.clientIp ?? '-'}`,
  ];
  const headerNames = Object.keys(d.headers).sort();
  for (const name of headerNames) lines.push(dim(`   ${name}: ${(d.headers[name] ?? []).join(', ')}`));
  if (d.redactedHeaders.length > 0) lines.push(`   redacted: ${d.redactedHeaders.join(', ')}`);
  if (Object.keys(d.cookies).length > 0) lines.push(`   cookies: ${JSON.stringify(d.cookies)}`);
  if (d.body && d.body.receivedBytes > 0) {
    const shown = d.body.encoding === 'utf8' ? d.body.data.slice(0, 400) : `<${d.body.capturedBytes} bytes, base64>`;
    lines.push(`   body (${d.body.capturedBytes}/${d.body.receivedBytes} bytes${d.body.truncated ? ', truncated' : ''}): ${shown}`);
  }
  return `${lines.join('\n')}\n`;
}

import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../tools/stack/stack.ts';

interface LogLine {
  level: number;
  service?: string;
  pid?: number;
  hostname?: string;
  code?: string;
}

const linesOf = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

describe('service logs', () => {
  it('writes JSON lines naming the service, its pid and host, at the level LOG_LEVEL sets', async () => {
    let stack: Stack | undefined;
    try {
      // No targets, so each service warns RM_CONFIG_NO_TARGETS at start-up; the dispatcher logs at warn, the tap at
      // the default (info).
      stack = await startStack({ env: (service) => (service === 'dispatcher' ? { LOG_LEVEL: 'warn' } : {}) });
      for (const [p, service, lowest] of [
        [stack.tap, 'ingress-tap', 30],
        [stack.dispatcher, 'dispatcher', 40],
      ] as const) {
        const lines = linesOf(p.output());
        expect(lines.filter((l) => l.code === 'RM_CONFIG_NO_TARGETS'), service).toHaveLength(1);
        expect(Math.min(...lines.map((l) => l.level)), service).toBe(lowest);
        for (const line of lines) expect(line).toMatchObject({ service, pid: p.pid, hostname: hostname() });
      }
    } finally {
      await stack?.close();
    }
  });
});

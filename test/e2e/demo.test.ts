import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../tools/stack/stack.ts';

// `make demo` must not rot: its non-interactive mode starts the whole stack, sends the example requests, checks they
// reached the webhook and stops everything.

describe('make demo', () => {
  it('runs the example requests through Traefik to the printing webhook and exits 0 with --once', { timeout: 120_000 }, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['tools/demo/run.ts', '--once'], {
      cwd: ROOT,
      timeout: 110_000,
      killSignal: 'SIGTERM',
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('all 4 example requests reached the webhook');
    expect(stdout).toMatch(/── webhook received: GET http:\/\/app\.localhost\/products\?category=books&page=2/);
    expect(stdout).toMatch(/cookies: \{"session":"abc123"\}/);
    expect(stdout).toMatch(/── webhook received: POST http:\/\/api\.localhost\/orders[\s\S]*?body \(31\/31 bytes\): \{"item":"book-42","quantity":2\}/);
    expect(stdout).toMatch(/── webhook received: GET http:\/\/app\.localhost\/account[\s\S]*?redacted: authorization/);
    expect(stdout).not.toContain('demo-secret-token"');
    expect(stdout).toMatch(/── webhook received: PUT http:\/\/shop\.localhost\/cart\/7\n {3}id \S+ {2}attachment mirror/);
  });
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Config } from '../../contract/config.ts';
import { checkTapConfig } from '../../ingress-tap/config-check.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';

// What `ingress-tap --check` and start-up report beyond the schema: each TLS listener's certificate and key usable.
// In-process here; test/ingress-tap/main.test.ts runs the same through the process.

let good: TestCertificate;
let other: TestCertificate;
beforeAll(() => {
  good = makeCertificate();
  other = makeCertificate();
});
afterAll(() => {
  good.remove();
  other.remove();
});

const withTls = (tls: { forwardAuth?: { certFile: string; keyFile: string }; mirror?: { certFile: string; keyFile: string } }) =>
  Config.parse({
    nats: { url: 'nats://127.0.0.1:4222' },
    tap: {
      forwardAuth: { host: '127.0.0.1', port: 8081, ...(tls.forwardAuth ? { tls: tls.forwardAuth } : {}) },
      mirror: { host: '127.0.0.1', port: 8083, ...(tls.mirror ? { tls: tls.mirror } : {}) },
    },
  });

describe('tap config check', () => {
  it('finds nothing without TLS listeners, or with usable certificates on both', () => {
    expect(checkTapConfig(withTls({}))).toEqual([]);
    const pair = { certFile: good.certFile, keyFile: good.keyFile };
    expect(checkTapConfig(withTls({ forwardAuth: pair, mirror: pair }))).toEqual([]);
  });

  it('reports each listener whose certificate is unusable, naming it, as an RM_TAP_TLS_UNUSABLE error', () => {
    const missing = { certFile: join(good.dir, 'missing.pem'), keyFile: good.keyFile };
    const notItsKey = { certFile: good.certFile, keyFile: other.keyFile };
    const findings = checkTapConfig(withTls({ forwardAuth: missing, mirror: notItsKey }));
    expect(findings).toEqual([
      { severity: 'error', code: 'RM_TAP_TLS_UNUSABLE', message: expect.stringContaining('tap.forwardAuth.tls') as unknown },
      { severity: 'error', code: 'RM_TAP_TLS_UNUSABLE', message: expect.stringContaining('tap.mirror.tls') as unknown },
    ]);
    expect(findings[0]?.message).toContain('missing.pem');
  });

  it('reports only the broken listener when the other one is fine', () => {
    const notPem = join(good.dir, 'not-pem.pem');
    writeFileSync(notPem, 'not a certificate\n');
    const findings = checkTapConfig(withTls({ forwardAuth: { certFile: good.certFile, keyFile: good.keyFile }, mirror: { certFile: notPem, keyFile: good.keyFile } }));
    expect(findings.map((f) => f.message.split(':')[0])).toEqual([expect.stringContaining('tap.mirror.tls') as unknown]);
  });
});

import { readFileSync, writeFileSync } from 'node:fs';
import { nkeys } from '@nats-io/transport-node';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Config, type ConfigInput } from '../../contract/config.ts';
import { NatsAuthFailedError, NatsConnectFailedError, NatsPermissionDeniedError, NatsTlsUnusableError, SecretUnavailableError } from '../../contract/errors.ts';
import { resolveNatsCredentials } from '../../contract/nats-credentials.ts';
import { readSecret, type SecretSources } from '../../contract/secret-source.ts';
import { expectDocumentedError } from '../support/error-codes.ts';
import { natsJwtSetup } from '../support/nats-jwt.ts';
import { makeCertificate, type TestCertificate } from '../support/tls.ts';

// `nats.auth` and `nats.tls` as the services read them at start-up: the secret from its variable or file, the PEM
// files checked, every problem a finding naming the field. Connecting with them is test/contract/nats-connection.

let cert: TestCertificate;
let other: TestCertificate;
beforeAll(() => {
  cert = makeCertificate();
  other = makeCertificate();
});
afterAll(() => {
  cert.remove();
  other.remove();
});

const sources = (env: Record<string, string> = {}): SecretSources => ({ env, readFile: (path) => readFileSync(path, 'utf8') });
const nats = (input: NonNullable<ConfigInput['nats']>) => Config.parse({ nats: input }).nats;

describe('nats credentials', () => {
  it('reads the password of a user from its environment variable', () => {
    const resolved = resolveNatsCredentials(nats({ auth: { user: 'tap', password: { env: 'NATS_PASSWORD' } } }), sources({ NATS_PASSWORD: 's3cret' }));
    expect(resolved).toEqual({ findings: [], credentials: { user: 'tap', pass: 's3cret' } });
  });

  it('reads a token from a file, without its trailing newline', () => {
    const file = join(cert.dir, 'token');
    writeFileSync(file, 'tok-123\n');
    expect(resolveNatsCredentials(nats({ auth: { token: { file } } }), sources()).credentials).toEqual({ token: 'tok-123' });
  });

  it('reads a .creds file, and refuses one that holds no user JWT and nkey seed as RM_SECRET_UNAVAILABLE', () => {
    const good = join(cert.dir, 'user.creds');
    const { creds } = natsJwtSetup('tap');
    writeFileSync(good, creds);
    expect(resolveNatsCredentials(nats({ auth: { credsFile: good } }), sources())).toEqual({ findings: [], credentials: { creds } });
    const bad = join(cert.dir, 'not.creds');
    writeFileSync(bad, 'user: tap\npassword: x\n');
    expect(resolveNatsCredentials(nats({ auth: { credsFile: bad } }), sources()).findings).toEqual([
      { severity: 'error', code: 'RM_SECRET_UNAVAILABLE', message: `nats.auth.credsFile: ${bad} is not a NATS credentials file (a user JWT and an nkey seed): unable to parse credentials` },
    ]);
  });

  it('reads an nkey seed file, and refuses one that holds no seed as RM_SECRET_UNAVAILABLE', () => {
    const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
    const good = join(cert.dir, 'user.nk');
    writeFileSync(good, `${seed}\n`);
    expect(resolveNatsCredentials(nats({ auth: { nkeySeedFile: good } }), sources())).toEqual({ findings: [], credentials: { nkeySeed: seed } });
    const bad = join(cert.dir, 'not.nk');
    writeFileSync(bad, 'UABC\n');
    const [finding] = resolveNatsCredentials(nats({ auth: { nkeySeedFile: bad } }), sources()).findings;
    expect(finding?.code).toBe('RM_SECRET_UNAVAILABLE');
    expect(finding?.message).toMatch(new RegExp(`^nats\\.auth\\.nkeySeedFile: ${bad} does not hold an nkey seed: `));
  });

  it('gives no credentials when nats.auth and nats.tls are absent', () => {
    expect(resolveNatsCredentials(nats({}), sources())).toEqual({ findings: [], credentials: {} });
  });

  it('reads the CA, client certificate and key of nats.tls as PEM text', () => {
    const resolved = resolveNatsCredentials(nats({ tls: { caFile: other.certFile, certFile: cert.certFile, keyFile: cert.keyFile } }), sources());
    expect(resolved.credentials?.tls).toEqual({ ca: other.ca, cert: cert.ca, key: readFileSync(cert.keyFile, 'utf8') });
  });

  it('fails with RM_SECRET_UNAVAILABLE naming the field and the variable when the password variable is not set', () => {
    const resolved = resolveNatsCredentials(nats({ auth: { user: 'tap', password: { env: 'NATS_PASSWORD' } } }), sources({ NATS_PASSWORD: '' }));
    expect(resolved).toEqual({
      findings: [{ severity: 'error', code: 'RM_SECRET_UNAVAILABLE', message: 'nats.auth.password: environment variable NATS_PASSWORD is not set or empty' }],
    });
  });

  it('fails with one finding per unusable part: a missing token file, a CA that is not PEM, a key of another certificate', () => {
    const notPem = join(cert.dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    const missing = join(cert.dir, 'missing-token');
    const token = resolveNatsCredentials(nats({ auth: { token: { file: missing } }, tls: { caFile: notPem } }), sources());
    expect(token.credentials).toBeUndefined();
    expect(token.findings.map((f) => [f.code, f.message.split(':').slice(0, 2).join(':')])).toEqual([
      ['RM_SECRET_UNAVAILABLE', `nats.auth.token: cannot read file ${missing}`],
      ['RM_NATS_TLS_UNUSABLE', `nats.tls.caFile ${notPem}: not a PEM certificate`],
    ]);
    const pair = resolveNatsCredentials(nats({ tls: { certFile: cert.certFile, keyFile: other.keyFile } }), sources());
    expect(pair.findings).toEqual([
      { severity: 'error', code: 'RM_NATS_TLS_UNUSABLE', message: `nats.tls.keyFile ${other.keyFile} is not the private key of nats.tls.certFile ${cert.certFile}` },
    ]);
  });

  it('names nats.auth.credsFile and nats.auth.nkeySeedFile, and the path, when the file cannot be read', () => {
    const missing = join(cert.dir, 'missing-secret');
    const refused = (auth: NonNullable<ConfigInput['nats']>['auth']) => resolveNatsCredentials(nats({ auth }), sources()).findings;
    const enoent = `ENOENT: no such file or directory, open '${missing}'`;
    expect(refused({ credsFile: missing })).toEqual([
      { severity: 'error', code: 'RM_SECRET_UNAVAILABLE', message: `nats.auth.credsFile: cannot read file ${missing}: ${enoent}` },
    ]);
    expect(refused({ nkeySeedFile: missing })).toEqual([
      { severity: 'error', code: 'RM_SECRET_UNAVAILABLE', message: `nats.auth.nkeySeedFile: cannot read file ${missing}: ${enoent}` },
    ]);
  });

  it('takes the nkey seed without the blank lines and spaces around it', () => {
    const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
    const file = join(cert.dir, 'spaced.nk');
    writeFileSync(file, `  ${seed}\n\n`);
    expect(resolveNatsCredentials(nats({ auth: { nkeySeedFile: file } }), sources())).toEqual({ findings: [], credentials: { nkeySeed: seed } });
  });

  it('refuses an empty secret file as RM_SECRET_UNAVAILABLE, naming the field and the path', () => {
    const empty = join(cert.dir, 'empty-token');
    writeFileSync(empty, '\n');
    expect(resolveNatsCredentials(nats({ auth: { token: { file: empty } } }), sources())).toEqual({
      findings: [{ severity: 'error', code: 'RM_SECRET_UNAVAILABLE', message: `nats.auth.token: file ${empty} is empty` }],
    });
  });

  it('keeps the file system\'s error as the cause of an unreadable secret file', () => {
    const missing = join(cert.dir, 'missing-password');
    let thrown: unknown;
    try {
      readSecret({ file: missing }, sources(), 'nats.auth.password');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SecretUnavailableError);
    expect((thrown as SecretUnavailableError).code).toBe('RM_SECRET_UNAVAILABLE');
    expect(((thrown as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('gives only the CA when nats.tls has no client certificate', () => {
    expect(resolveNatsCredentials(nats({ tls: { caFile: other.certFile } }), sources())).toEqual({ findings: [], credentials: { tls: { ca: other.ca } } });
  });

  it('names nats.tls.caFile, certFile or keyFile and the path when the file cannot be read, as RM_NATS_TLS_UNUSABLE', () => {
    const missing = join(cert.dir, 'missing.pem');
    const enoent = `ENOENT: no such file or directory, open '${missing}'`;
    const refused = (tls: NonNullable<ConfigInput['nats']>['tls']) => resolveNatsCredentials(nats({ tls }), sources()).findings;
    expect(refused({ caFile: missing })).toEqual([{ severity: 'error', code: 'RM_NATS_TLS_UNUSABLE', message: `nats.tls.caFile ${missing}: cannot read: ${enoent}` }]);
    expect(refused({ certFile: missing, keyFile: cert.keyFile })).toEqual([
      { severity: 'error', code: 'RM_NATS_TLS_UNUSABLE', message: `nats.tls.certFile ${missing}: cannot read: ${enoent}` },
    ]);
    expect(refused({ certFile: cert.certFile, keyFile: missing })).toEqual([
      { severity: 'error', code: 'RM_NATS_TLS_UNUSABLE', message: `nats.tls.keyFile ${missing}: cannot read: ${enoent}` },
    ]);
  });

  it('refuses a client certificate or key file that is not PEM, naming the field and the path, as RM_NATS_TLS_UNUSABLE', () => {
    const notPem = join(cert.dir, 'hello.pem');
    writeFileSync(notPem, 'hello');
    const refused = (tls: NonNullable<ConfigInput['nats']>['tls']) => resolveNatsCredentials(nats({ tls }), sources()).findings;
    expect(refused({ certFile: notPem, keyFile: cert.keyFile })).toEqual([
      { severity: 'error', code: 'RM_NATS_TLS_UNUSABLE', message: `nats.tls.certFile ${notPem}: not a PEM certificate: error:0480006C:PEM routines::no start line` },
    ]);
    expect(refused({ certFile: cert.certFile, keyFile: notPem })).toEqual([
      { severity: 'error', code: 'RM_NATS_TLS_UNUSABLE', message: `nats.tls.keyFile ${notPem}: not a PEM private key: error:1E08010C:DECODER routines::unsupported` },
    ]);
  });

  it('refuses an inline password, both a password and a token, and a client certificate without its key', () => {
    const refused = (input: unknown) => {
      const parsed = Config.safeParse({ nats: input });
      return parsed.success ? undefined : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const shape =
      'nats.auth: NATS credentials: { user: NAME, password: { env | file } }, { token: { env | file } }, { credsFile: PATH } or { nkeySeedFile: PATH }, exactly one of them';
    expect(refused({ auth: { user: 'tap', password: 'inline' } })).toEqual([shape]);
    expect(refused({ auth: { user: 'tap', password: { env: 'P' }, token: { env: 'T' } } })).toEqual([shape]);
    expect(refused({ tls: { certFile: 'client.pem' } })).toEqual(['nats.tls.keyFile: set certFile and keyFile together']);
    expect(refused({ auth: { token: { env: 'T' } }, tls: {} })).toBeUndefined();
  });

  it.each([
    [() => new SecretUnavailableError('x'), 'RM_SECRET_UNAVAILABLE'],
    [() => new NatsTlsUnusableError('x'), 'RM_NATS_TLS_UNUSABLE'],
    [() => new NatsAuthFailedError('x'), 'RM_NATS_AUTH_FAILED'],
    [() => new NatsConnectFailedError('x'), 'RM_NATS_CONNECT_FAILED'],
    [() => new NatsPermissionDeniedError('x'), 'RM_NATS_PERMISSION_DENIED'],
  ])('has a documented code for each way a NATS connection can be unusable (%#)', (build, code) => {
    expectDocumentedError(build, code);
  });
});

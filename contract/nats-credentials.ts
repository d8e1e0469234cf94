import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator } from '@nats-io/transport-node';
import type { Config, NatsTls } from './config.ts';
import { errorFinding, type ConfigFinding } from './config-check.ts';
import { NatsTlsUnusableError, SecretUnavailableError } from './errors.ts';
import { processSecretSources, readSecret, type SecretSources } from './secret-source.ts';

// `nats.auth` and `nats.tls` read once at start-up, so a missing secret or certificate stops the service with a
// message naming the field instead of failing every connection attempt while the service looks alive.

/** What the NATS client is given: resolved secrets and PEM text, never paths it would read again on each dial. */
export interface NatsCredentials {
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** The text of a `.creds` file: a user JWT and its nkey seed. */
  readonly creds?: string;
  /** A user nkey seed (`SU...`). */
  readonly nkeySeed?: string;
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

export const NO_NATS_CREDENTIALS: NatsCredentials = {};

/** The credentials, or a finding per field that cannot be read (RM_SECRET_UNAVAILABLE, RM_NATS_TLS_UNUSABLE). */
export function resolveNatsCredentials(
  nats: Config['nats'],
  sources: SecretSources = processSecretSources,
): { findings: ConfigFinding[]; credentials?: NatsCredentials } {
  const findings: ConfigFinding[] = [];
  const attempt = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (error) {
      findings.push(errorFinding(error));
      return undefined;
    }
  };
  const { auth } = nats;
  let secrets: Pick<NatsCredentials, 'user' | 'pass' | 'token' | 'creds' | 'nkeySeed'> = {};
  if (auth && 'nkeySeedFile' in auth) {
    const nkeySeed = attempt(() => readNkeySeed(auth.nkeySeedFile, sources));
    secrets = { nkeySeed };
  } else if (auth && 'credsFile' in auth) {
    const creds = attempt(() => readCreds(auth.credsFile, sources));
    secrets = { creds };
  } else if (auth && 'token' in auth) {
    const token = attempt(() => readSecret(auth.token, sources, 'nats.auth.token'));
    secrets = { token };
  } else if (auth) {
    const pass = attempt(() => readSecret(auth.password, sources, 'nats.auth.password'));
    secrets = { user: auth.user, pass };
  }
  const tls = nats.tls && attempt(() => readTls(nats.tls as NatsTls));
  if (findings.length > 0) return { findings };
  return { findings, credentials: Object.freeze({ ...secrets, ...(tls && { tls }) }) };
}

function readCreds(path: string, sources: SecretSources): string {
  // readSecret drops the file's last newline, which nats.js's parser needs after the seed's END line.
  const creds = `${readSecret({ file: path }, sources, 'nats.auth.credsFile')}\n`;
  try {
    // What the client does at each connection: parse the JWT and the seed, and sign the server's nonce.
    credsAuthenticator(new TextEncoder().encode(creds))('request-mirror-start-up-check');
  } catch (cause) {
    throw new SecretUnavailableError(`nats.auth.credsFile: ${path} is not a NATS credentials file (a user JWT and an nkey seed): ${(cause as Error).message}`, { cause });
  }
  return creds;
}

function readNkeySeed(path: string, sources: SecretSources): string {
  const seed = readSecret({ file: path }, sources, 'nats.auth.nkeySeedFile').trim();
  try {
    // What the client does at each connection: sign the server's nonce with the seed.
    nkeyAuthenticator(new TextEncoder().encode(seed))('request-mirror-start-up-check');
  } catch (cause) {
    throw new SecretUnavailableError(`nats.auth.nkeySeedFile: ${path} does not hold an nkey seed: ${(cause as Error).message}`, { cause });
  }
  return seed;
}

function readTls(tls: NatsTls): NonNullable<NatsCredentials['tls']> {
  const ca = tls.caFile === undefined ? undefined : read('nats.tls.caFile', tls.caFile);
  if (ca && tls.caFile) {
    try {
      new X509Certificate(ca);
    } catch (cause) {
      throw new NatsTlsUnusableError(`nats.tls.caFile ${tls.caFile}: not a PEM certificate: ${(cause as Error).message}`, { cause });
    }
  }
  if (tls.certFile === undefined || tls.keyFile === undefined) return { ca };
  const cert = read('nats.tls.certFile', tls.certFile);
  const key = read('nats.tls.keyFile', tls.keyFile);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (cause) {
    throw new NatsTlsUnusableError(`nats.tls.certFile ${tls.certFile}: not a PEM certificate: ${(cause as Error).message}`, { cause });
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(key));
  } catch (cause) {
    throw new NatsTlsUnusableError(`nats.tls.keyFile ${tls.keyFile}: not a PEM private key: ${(cause as Error).message}`, { cause });
  }
  if (!matches) throw new NatsTlsUnusableError(`nats.tls.keyFile ${tls.keyFile} is not the private key of nats.tls.certFile ${tls.certFile}`);
  return { ca, cert, key };
}

function read(field: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new NatsTlsUnusableError(`${field} ${path}: cannot read: ${(cause as Error).message}`, { cause });
  }
}

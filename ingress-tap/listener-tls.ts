import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ListenerTls } from '../contract/config.ts';
import { TlsUnusableError } from './errors.ts';

// The certificate and key of a TLS listener, read and checked once at start-up so that a wrong path or a key that
// belongs to another certificate stops the tap with a message naming the file, instead of failing every handshake.

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** `field` names the listener in messages, e.g. `tap.forwardAuth.tls`. */
export function loadListenerTls(field: string, tls: ListenerTls): TlsMaterial {
  const cert = read(`${field}.certFile`, tls.certFile);
  const key = read(`${field}.keyFile`, tls.keyFile);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (cause) {
    throw new TlsUnusableError(`${field}.certFile ${tls.certFile}: not a PEM certificate: ${(cause as Error).message}`, { cause });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw new TlsUnusableError(`${field}.keyFile ${tls.keyFile}: not a PEM private key: ${(cause as Error).message}`, { cause });
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TlsUnusableError(`${field}.keyFile ${tls.keyFile} is not the private key of ${field}.certFile ${tls.certFile}`);
  }
  return { cert, key };
}

function read(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new TlsUnusableError(`${field} ${path}: cannot read: ${(cause as Error).message}`, { cause });
  }
}

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
  const { cert, key } = readFiles(field, tls);
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

// Both files are read before a failure is reported, so that one run names every file it cannot read.
function readFiles(field: string, tls: ListenerTls): TlsMaterial {
  const failures: string[] = [];
  const causes: unknown[] = [];
  const read = (name: 'certFile' | 'keyFile'): Buffer => {
    try {
      return readFileSync(tls[name]);
    } catch (cause) {
      failures.push(`${field}.${name} ${tls[name]}: cannot read: ${(cause as Error).message}`);
      causes.push(cause);
      return Buffer.alloc(0);
    }
  };
  const material = { cert: read('certFile'), key: read('keyFile') };
  if (failures.length > 0) throw new TlsUnusableError(failures.join('; '), { cause: causes.length === 1 ? causes[0] : causes });
  return material;
}

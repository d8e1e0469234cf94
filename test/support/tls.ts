import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Throwaway self-signed certificates made with the openssl CLI, in a temp directory the caller removes. The
// certificate is its own CA, so clients trust it by passing `ca` (Traefik's forwardAuth `tls.ca` is a file path).

export interface TestCertificate {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate's PEM, to trust it as a CA. */
  readonly ca: string;
  remove(): void;
}

/** A P-256 certificate for `CN=ingress-tap`, valid for 127.0.0.1 and localhost (and `extraSans`, e.g. `DNS:ingress-tap`). */
export function makeCertificate(extraSans: readonly string[] = []): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'rm-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const san = ['IP:127.0.0.1', 'DNS:localhost', ...extraSans].join(',');
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=ingress-tap',
        '-addext', `subjectAltName=${san}`, '-keyout', keyFile, '-out', certFile],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl could not make a test certificate (is the openssl CLI installed?): ${(error as Error).message}`, { cause: error });
  }
  return {
    dir,
    certFile,
    keyFile,
    ca: readFileSync(certFile, 'utf8'),
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

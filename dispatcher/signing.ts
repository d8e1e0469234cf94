import { createHmac } from 'node:crypto';

// Standard Webhooks signatures (https://www.standardwebhooks.com): `v1,<base64 HMAC-SHA256>` over
// `${webhook-id}.${webhook-timestamp}.${body}`, one per secret so a receiver can rotate without a gap.

const PREFIX = 'whsec_';

/**
 * `whsec_<base64>` is the Standard Webhooks form and is base64-decoded. Any other string is used as raw UTF-8 key
 * bytes, so secrets shared with tools that sign with the literal string keep working.
 */
export function decodeSecret(secret: string): Buffer {
  return secret.startsWith(PREFIX) ? Buffer.from(secret.slice(PREFIX.length), 'base64') : Buffer.from(secret, 'utf8');
}

export type Signer = (id: string, timestampSeconds: number, body: Uint8Array) => string;

export function createSigner(keys: readonly Buffer[]): Signer | undefined {
  if (keys.length === 0) return undefined;
  return (id, timestampSeconds, body) => {
    const prefix = `${id}.${timestampSeconds}.`;
    let header = '';
    for (const key of keys) {
      const mac = createHmac('sha256', key).update(prefix).update(body).digest('base64');
      header = header === '' ? `v1,${mac}` : `${header} v1,${mac}`;
    }
    return header;
  };
}

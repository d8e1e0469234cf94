import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSigner, decodeSecret } from '../../dispatcher/signing.ts';

// Standard Webhooks signatures, computed here with node:crypto from the spec's formula; test/dispatcher/routing.test.ts
// checks that the standardwebhooks library accepts what a running dispatcher sends.

const mac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest('base64');

describe('webhook signing', () => {
  it('signs nothing without a key', () => {
    expect(createSigner([])).toBeUndefined();
  });

  it('signs id.timestamp.body with one key as v1,<base64 HMAC-SHA256>', () => {
    const key = Buffer.from('k1');
    const sign = createSigner([key]);
    expect(sign?.('msg_1', 1_700_000_000, Buffer.from('{"a":1}'))).toBe(`v1,${mac(key, 'msg_1.1700000000.{"a":1}')}`);
  });

  it('gives one signature per key, space-separated, in the order of the keys', () => {
    const [a, b] = [Buffer.from('old'), Buffer.from('new')];
    const sign = createSigner([a, b]);
    expect(sign?.('msg_2', 5, Buffer.from('x'))).toBe(`v1,${mac(a, 'msg_2.5.x')} v1,${mac(b, 'msg_2.5.x')}`);
  });

  it('base64-decodes a whsec_ secret and takes any other as its UTF-8 bytes', () => {
    expect(decodeSecret('whsec_c2VjcmV0')).toEqual(Buffer.from('secret'));
    expect(decodeSecret('c2VjcmV0')).toEqual(Buffer.from('c2VjcmV0'));
    expect(decodeSecret('clé')).toEqual(Buffer.from('clé', 'utf8'));
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Body } from '../../contract/event.ts';
import { send, target, useTap } from './tap-harness.ts';

// The tap's capture limit cuts by the contract's rule (contract/body-cut.ts): a text body is cut back to a whole
// character and stays `utf8`; a binary body is cut at exactly the limit. Expected lengths are written from the
// characters' byte lengths.

const LIMIT = 5;

const { tap } = useTap({ config: { targets: [target('five', { maxBodyBytes: LIMIT })] } });

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function captured(body: Buffer, path = '/cut'): Promise<Body> {
  tap.received.length = 0;
  const res = await send(`${tap.mirrorUrl}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  expect(res.status).toBe(200);
  const [received] = await tap.waitForEvents(1);
  const got = received?.event.data.body;
  if (!got) throw new Error('event has no body');
  return got;
}

function expectBody(got: Body, sent: Buffer, keep: number): void {
  const kept = sent.subarray(0, keep);
  const utf8 = Buffer.from(kept.toString('utf8')).equals(kept);
  expect(got).toMatchObject({
    encoding: utf8 ? 'utf8' : 'base64',
    data: kept.toString(utf8 ? 'utf8' : 'base64'),
    capturedBytes: keep,
    receivedBytes: sent.length,
    truncated: keep < sent.length,
    sha256: sha256(kept),
  });
}

describe('body cut at the tap', () => {
  it('keeps ééé cut at 5 bytes as the text éé (issue 11)', async () => {
    const got = await captured(Buffer.from('ééé'));
    expect(got).toMatchObject({ encoding: 'utf8', data: 'éé', capturedBytes: 4, receivedBytes: 6, truncated: true });
  });

  // Each ASCII lead shifts the characters by one byte, so the limit falls at every offset inside a character.
  const TEXT_CASES = [
    ['1-byte', 'a', 1],
    ['2-byte', 'é', 2],
    ['3-byte', '€', 3],
    ['4-byte', '😀', 4],
  ] as const;
  describe.each(TEXT_CASES)('a body of %s characters', (_kind, char, size) => {
    it.each(Array.from({ length: size }, (_, lead) => lead))('is cut back to a whole character after %i ASCII bytes', async (lead) => {
      const sent = Buffer.from('x'.repeat(lead) + char.repeat(6));
      // Whole characters after the lead that fit in the limit.
      const keep = lead + Math.floor((LIMIT - lead) / size) * size;
      expectBody(await captured(sent), sent, keep);
    });
  });

  it.each([
    ['5 ASCII bytes', 'abcde'],
    ['ending in a 2-byte character', 'abcé'],
    ['ending in a 3-byte character', 'ab€'],
    ['ending in a 4-byte character', 'a😀'],
  ])('keeps a body of exactly the limit whole: %s', async (_name, text) => {
    const sent = Buffer.from(text);
    expect(sent.length).toBe(LIMIT);
    expectBody(await captured(sent), sent, LIMIT);
  });

  it.each([
    ['a character ends at the limit', 'abcé!', LIMIT],
    ['a 2-byte character straddles the limit', 'abcdé', 4],
    ['a 4-byte character straddles the limit', 'ab😀', 2],
  ])('cuts a body one byte over the limit where %s', async (_name, text, keep) => {
    const sent = Buffer.from(text);
    expect(sent.length).toBe(LIMIT + 1);
    expectBody(await captured(sent), sent, keep);
  });

  it.each([
    ['0xff first', [0xff, 0x00, 0x01, 0x02, 0xc3, 0xa9]],
    ['a UTF-8 lead byte at the limit', [0x00, 0xfe, 0x41, 0x42, 0xc3, 0xa9]],
    ['a 3-byte lead and its first continuation at the limit', [0x89, 0x50, 0x4e, 0xe2, 0x82, 0xac]],
    ['an overlong lead at the limit', [0x41, 0x42, 0x43, 0x44, 0xc0, 0xaf]],
  ])('cuts a binary body at exactly the limit: %s', async (_name, values) => {
    const sent = Buffer.from(values);
    expectBody(await captured(sent), sent, LIMIT);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cutBytes, keptLength } from '../../contract/body-cut.ts';

// Expected values are written from the characters' byte lengths, not computed by the rule under test.

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Byte offsets where a character of `text` starts, plus its end. */
function boundaries(text: string): number[] {
  const ends = [0];
  for (const char of text) ends.push((ends.at(-1) as number) + Buffer.byteLength(char));
  return ends;
}

const CHARS = [
  ['1-byte', 'a'],
  ['2-byte', 'é'],
  ['2-byte (first two-byte code point, lead C2)', '\u0080'],
  ['2-byte (last two-byte code point)', '\u07ff'],
  ['3-byte', '€'],
  ['3-byte after E0', '\u0800'],
  ['3-byte after ED (last before the surrogates)', '\ud7ff'],
  ['3-byte (last BMP code point)', '\uffff'],
  ['4-byte after F0', '😀'],
  ['4-byte after F1-F3', '\u{40000}'],
  ['4-byte after F4 (last code point)', '\u{10ffff}'],
] as const;

describe('body cut', () => {
  describe.each(CHARS)('a body of %s characters', (_kind, char) => {
    const size = Buffer.byteLength(char);
    // One ASCII byte ahead shifts every character off the multiples of its size, so both alignments are covered.
    it.each(['', 'x'])('is cut back to the last whole character at every limit (prefix %j)', (lead) => {
      const text = lead + char.repeat(4);
      const bytes = Buffer.from(text);
      const starts = boundaries(text);
      for (let limit = 0; limit <= bytes.length + 1; limit++) {
        const expected = limit >= bytes.length ? bytes.length : Math.max(...starts.filter((s) => s <= limit));
        const kept = cutBytes(bytes, limit);
        expect(kept.length, `limit ${limit} of ${size}-byte characters`).toBe(expected);
        expect(hex(kept)).toBe(hex(bytes.subarray(0, expected)));
      }
    });
  });

  it('keeps a body of exactly the limit whole, and one byte over is cut back to a whole character', () => {
    for (const [, char] of CHARS) {
      const body = Buffer.from(char.repeat(3));
      expect(cutBytes(body, body.length)).toBe(body);
      const over = Buffer.from(char.repeat(3) + char);
      const ascii = Buffer.byteLength(char) === 1;
      expect(cutBytes(over, body.length + 1).length).toBe(ascii ? body.length + 1 : body.length);
    }
  });

  it.each([
    ['issue 11: ééé at 5', 'ééé', 5, 'éé'],
    ['mixed text at every boundary', 'aé€😀b', 3, 'aé'],
    ['mixed text inside the 3-byte character', 'aé€😀b', 5, 'aé'],
    ['mixed text inside the 4-byte character', 'aé€😀b', 9, 'aé€'],
    ['mixed text just before the last character', 'aé€😀b', 10, 'aé€😀'],
    ['a single 4-byte character at 3, 2 and 1 (here 1)', '😀', 1, ''],
    ['a single 4-byte character at 3', '😀', 3, ''],
  ])('keeps text as text: %s', (_name, text, limit, expected) => {
    expect(cutBytes(Buffer.from(text), limit).toString('utf8')).toBe(expected);
  });

  it('cuts a zero limit to nothing', () => {
    expect(cutBytes(Buffer.from('héllo'), 0).length).toBe(0);
    expect(cutBytes(Buffer.from([0xff, 0x00]), 0).length).toBe(0);
    expect(keptLength(new Uint8Array(0))).toBe(0);
  });

  const BINARY: [string, number[]][] = [
    ['PNG signature', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0xc3, 0xa9]],
    ['gzip header', [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe2, 0x82, 0xac, 0xf0, 0x9f]],
    ['0xff then UTF-8 lead bytes', [0xff, 0xc3, 0xe2, 0x82, 0xf0, 0x9f, 0x98]],
    ['a lone continuation byte first', [0x80, 0xc3, 0xa9, 0xe2, 0x82, 0xac]],
    ['overlong C0/C1 leads', [0x41, 0xc0, 0xaf, 0xc1, 0xbf, 0xc3]],
    ['leads past F4', [0x41, 0xf5, 0x80, 0x80, 0xff, 0xfe]],
  ];

  it.each(BINARY)('cuts a binary body (%s) at exactly every limit', (_name, values) => {
    const bytes = Buffer.from(values);
    for (let limit = 0; limit <= bytes.length; limit++) {
      const whole = limit >= bytes.length;
      // Prefixes of up to the first byte can be valid UTF-8 for some of these; only the ones that cannot are binary.
      const prefix = bytes.subarray(0, limit);
      if (Buffer.from(prefix.toString('utf8')).equals(prefix) || whole) continue;
      expect(cutBytes(bytes, limit).length, `limit ${limit}`).toBe(limit);
    }
  });

  it.each([
    ['an overlong E0 80', 'a', [0xe0, 0x80]],
    ['an encoded surrogate ED A0', 'a', [0xed, 0xa0]],
    ['a code point past U+10FFFF, F4 90', 'a', [0xf4, 0x90]],
    ['an overlong F0 80', 'a', [0xf0, 0x80]],
    ['a 2-byte lead followed by ASCII', 'a', [0xc3, 0x41]],
    ['valid text then an invalid byte', 'héllo', [0xc3, 0x28, 0xc3]],
  ])('treats a prefix ending in %s as binary and cuts at exactly the limit', (_name, text, tail) => {
    const bytes = Buffer.concat([Buffer.from(text), Buffer.from(tail), Buffer.from('zz')]);
    const limit = Buffer.byteLength(text) + tail.length;
    expect(cutBytes(bytes, limit).length).toBe(limit);
  });

  it('decides from the bytes before the limit alone: text there is cut as text whatever follows', () => {
    const bytes = Buffer.concat([Buffer.from('héllo'), Buffer.from([0xc3, 0x28])]);
    expect(cutBytes(bytes, 7).toString()).toBe('héllo');
    expect(cutBytes(bytes, 8).length).toBe(8);
  });

  it('gives the same bytes when a body is cut twice as when it is cut once at the smaller limit', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }).map((s) => Buffer.from(s)), fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a))),
        fc.nat(45),
        fc.nat(45),
        (bytes, a, b) => {
          const [small, large] = a <= b ? [a, b] : [b, a];
          expect(hex(cutBytes(cutBytes(bytes, large), small))).toBe(hex(cutBytes(bytes, small)));
          const kept = cutBytes(bytes, small);
          expect(kept.length).toBeLessThanOrEqual(small);
          expect(kept.length).toBeGreaterThanOrEqual(Math.min(bytes.length, small) - 3);
          expect(hex(bytes.subarray(0, kept.length))).toBe(hex(kept));
        },
      ),
    );
  });
});

import { isUtf8 } from 'node:buffer';

// Where a body limit cuts a body. The tap cuts at its capture limit and to fit the NATS payload limit; the dispatcher
// cuts again at each target's `maxBodyBytes`. All three use this rule, so the same bytes cut at the same limit give
// the same body wherever the cut happens, and cutting twice gives what one cut at the smaller limit gives.
//
// The rule (UTF-8 as RFC 3629 section 4 defines well-formed sequences):
// - A body no longer than the limit is kept whole.
// - A body is text at the cut when its first `limit` bytes are well-formed UTF-8, or would be without an unfinished
//   last character (a lead byte and fewer continuation bytes than it announces, each in the range RFC 3629 allows
//   after it). Such a cut is moved back to the start of that character, so it keeps 1 to 3 bytes fewer than the
//   limit and the kept bytes stay UTF-8, published as `encoding: utf8`.
// - Any other body is binary at the cut and is cut at exactly the limit.
// The decision reads only the first `limit` bytes: bytes past the limit may never have been captured (the tap keeps
// no more than its limit), and a rule that looked further would cut the same prefix differently at the tap and at
// the dispatcher.

/** The first bytes of `bytes` that a cut at `limit` (bytes, ≥ 0) keeps; `bytes` itself when it fits. */
export function cutBytes(bytes: Buffer, limit: number): Buffer {
  return bytes.length <= limit ? bytes : bytes.subarray(0, keptLength(bytes.subarray(0, limit)));
}

/**
 * How many bytes to keep of `prefix`, the first bytes of a longer body where a limit cut it: `prefix.length`, or up
 * to 3 fewer when the prefix is text ending in an unfinished character.
 */
export function keptLength(prefix: Uint8Array): number {
  const end = prefix.length;
  for (let start = end - 1; start >= 0 && start >= end - 3; start--) {
    const byte = prefix[start] as number;
    if (isContinuation(byte)) continue;
    // The last byte that is not a continuation starts the last character; it is unfinished only when the bytes after
    // it are fewer than it announces and each is allowed where it stands.
    if (!isUnfinished(prefix, start)) break;
    return isUtf8(prefix.subarray(0, start)) ? start : end;
  }
  return end;
}

const isContinuation = (byte: number) => (byte & 0xc0) === 0x80;

/** Length of the sequence a lead byte starts (RFC 3629: C2–DF two, E0–EF three, F0–F4 four); 0 when not a lead. */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** The range RFC 3629 allows for the byte after `lead`: narrower after E0, ED, F0 and F4 (no overlongs, surrogates or code points past U+10FFFF). */
function secondByteRange(lead: number): readonly [number, number] {
  if (lead === 0xe0) return [0xa0, 0xbf];
  if (lead === 0xed) return [0x80, 0x9f];
  if (lead === 0xf0) return [0x90, 0xbf];
  if (lead === 0xf4) return [0x80, 0x8f];
  return [0x80, 0xbf];
}

function isUnfinished(prefix: Uint8Array, start: number): boolean {
  const lead = prefix[start] as number;
  const have = prefix.length - start;
  if (have >= sequenceLength(lead)) return false;
  if (have >= 2) {
    const [low, high] = secondByteRange(lead);
    const second = prefix[start + 1] as number;
    if (second < low || second > high) return false;
  }
  // A third byte, if any, only has to be a continuation, which the caller's scan already established.
  return true;
}

import { decodeTime } from 'ulid';
import { describe, expect, it } from 'vitest';
import { createEventIdFactory } from '../../ingress-tap/event-id.ts';

// Unit: the tap's own id generator. ULIDs whose time part is the request's time and whose random part comes from a
// pool of random bytes refilled 4 KiB at a time (16 bytes per new millisecond, so a refill every 256 milliseconds).

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const randomPart = (id: string) => id.slice(10);

describe('event ids (unit: the tap id generator)', () => {
  it('gives ULIDs carrying the time they are asked for, with random parts two taps do not share', () => {
    const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const a = createEventIdFactory()(time);
    const b = createEventIdFactory()(time);
    for (const id of [a, b]) {
      expect(id).toMatch(ULID);
      expect(decodeTime(id)).toBe(time);
    }
    expect(randomPart(a)).not.toBe(randomPart(b));
  });

  it('draws fresh random parts across several refills of its pool', () => {
    const id = createEventIdFactory();
    const start = Date.UTC(2026, 0, 2);
    // A new millisecond each time: 1,000 random parts take 16,000 pool bytes, four refills.
    const parts = Array.from({ length: 1000 }, (_, i) => randomPart(id(start + i)));
    expect(new Set(parts).size).toBe(1000);
    // Uniform over the 32 Crockford characters: none of them missing from 16,000 draws.
    expect(new Set(parts.join('')).size).toBe(32);
  });

  it('draws the first id of a new generator from its pool too, not from an unfilled one', () => {
    // ulid draws the last character first: a draw from a pool not yet filled would fix it.
    const time = Date.UTC(2026, 0, 2);
    const lastChars = new Set(Array.from({ length: 64 }, () => createEventIdFactory()(time).slice(-1)));
    expect(lastChars.size).toBeGreaterThan(1);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetryPolicy } from '../../contract/config.ts';
import { backoffMs, isRetryableStatus, retryAfterMs } from '../../dispatcher/retry-policy.ts';

const policy = RetryPolicy.parse({ initialBackoffMs: 100, maxBackoffMs: 1000, maxRetryAfterMs: 5000 });

describe('retry policy', () => {
  it('retries 408, 429 and 5xx and nothing else', () => {
    expect([408, 429, 500, 502, 503, 599].every(isRetryableStatus)).toBe(true);
    expect([300, 307, 400, 401, 403, 404, 410, 422].some(isRetryableStatus)).toBe(false);
  });

  it('keeps full-jitter backoff within [0, min(max, initial·2^(n-1))]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.double({ min: 0, max: 0.9999999, noNaN: true }), (n, r) => {
        const ms = backoffMs(policy, n, () => r);
        return ms >= 0 && ms <= Math.min(1000, 100 * 2 ** (n - 1));
      }),
    );
    expect(backoffMs(policy, 3, () => 0.9999999)).toBe(400);
    expect(backoffMs(policy, 3, () => 0)).toBe(0);
  });

  it('reads Retry-After as seconds or an HTTP date, capped at maxRetryAfterMs', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs('2', policy, now)).toBe(2000);
    expect(retryAfterMs('3600', policy, now)).toBe(5000);
    expect(retryAfterMs('Wed, 01 Jan 2025 00:00:03 GMT', policy, now)).toBe(3000);
    expect(retryAfterMs('Tue, 31 Dec 2024 23:00:00 GMT', policy, now)).toBe(0);
    expect(retryAfterMs('soon', policy, now)).toBeUndefined();
    // The obsolete forms recipients must accept (RFC 9110 section 5.6.7); asctime is GMT too.
    expect(retryAfterMs('Wednesday, 01-Jan-25 00:00:04 GMT', policy, now)).toBe(4000);
    expect(retryAfterMs('Wed Jan  1 00:00:01 2025', policy, now)).toBe(1000);
    expect(retryAfterMs(undefined, policy, now)).toBeUndefined();
  });

  it('reads delta-seconds only from a value that is all digits, around white space, and ignores hex, exponents and units', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs(' 2 ', policy, now)).toBe(2000);
    expect(retryAfterMs('10', policy, now)).toBe(5000);
    for (const junk of ['0x10', '1e3', '5 s', '5x']) expect(retryAfterMs(junk, policy, now), junk).toBeUndefined();
  });

  // Date.parse reads these as dates in 2001, which made them an immediate retry instead of the backoff.
  it.each(['2.5', '-5', '1.0', '2025-01-01T00:00:03Z', 'January 1, 2025'])('backs off for a Retry-After of %j, neither delta-seconds nor an HTTP-date', (value) => {
    expect(retryAfterMs(value, policy, Date.parse('2025-01-01T00:00:00Z'))).toBeUndefined();
  });
});

import type { RetryPolicy } from '../contract/config.ts';

// When to try a delivery again, and after how long.

/** 408, 429 and 5xx say "not now"; other 4xx say "never", and retrying them only adds load. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff And Jitter"): uniform in
 * [0, min(max, initial·2^(n-1))], which spreads a burst of failures better than equal or decorrelated jitter.
 * `failedAttempts` counts the attempts made so far, the first included.
 */
export function backoffMs(policy: RetryPolicy, failedAttempts: number, random: () => number): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (failedAttempts - 1));
  return Math.floor(random() * (ceiling + 1));
}

/**
 * `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 section 10.2.3; the three date forms of section 5.6.7),
 * capped at `maxRetryAfterMs`; undefined when absent or anything else, so that backoff applies. Only those forms:
 * Date.parse reads `2.5` or `-5` as dates in 2001, which would have meant an immediate retry.
 */
export function retryAfterMs(header: string | undefined, policy: RetryPolicy, now: number): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  let ms: number;
  if (/^\d+$/.test(value)) {
    ms = Number(value) * 1000;
  } else {
    const at = httpDate(value);
    if (at === undefined) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, policy.maxRetryAfterMs);
}

const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

function httpDate(value: string): number | undefined {
  // asctime carries no zone; HTTP dates are always GMT.
  const text = IMF_FIXDATE.test(value) || RFC850_DATE.test(value) ? value : ASCTIME_DATE.test(value) ? `${value} GMT` : undefined;
  if (text === undefined) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

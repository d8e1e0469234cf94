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

/** `Retry-After` as delta-seconds or an HTTP date, capped at `maxRetryAfterMs`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | undefined, policy: RetryPolicy, now: number): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  let ms: number;
  if (/^\d+$/.test(value)) {
    ms = Number(value) * 1000;
  } else {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, policy.maxRetryAfterMs);
}

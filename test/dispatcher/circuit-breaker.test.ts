import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../dispatcher/circuit-breaker.ts';

// The breaker's states one call at a time, on a clock the test moves (the breaker takes its clock as an argument).
// test/dispatcher/failures.test.ts drives the same rules through deliveries to real receivers.

function breaker(failureThreshold: number, cooldownMs: number) {
  let now = 1_000_000;
  const b = new CircuitBreaker({ failureThreshold, cooldownMs }, () => now);
  const advance = (ms: number) => {
    now += ms;
  };
  return { b, advance };
}

describe('circuit breaker', () => {
  it('passes every attempt while closed, and opens on the failure that reaches the threshold', () => {
    const { b } = breaker(3, 1000);
    expect(b.gate()).toBe('pass');
    expect(b.failed()).toBe(false);
    expect(b.failed()).toBe(false);
    expect(b.rejecting).toBe(false);
    expect(b.gate()).toBe('pass');
    expect(b.failed()).toBe(true);
    expect(b.rejecting).toBe(true);
    expect(b.gate()).toBe('reject');
  });

  it('counts consecutive failures only: a success starts the count again', () => {
    const { b } = breaker(2, 1000);
    expect(b.failed()).toBe(false);
    b.succeeded();
    expect(b.failed()).toBe(false);
    expect(b.failed()).toBe(true);
  });

  it('rejects until the cooldown is over, then lets exactly one trial through and holds the rest', () => {
    const { b, advance } = breaker(1, 1000);
    expect(b.failed()).toBe(true);
    advance(999);
    expect(b.gate()).toBe('reject');
    advance(1);
    expect(b.rejecting).toBe(false);
    expect(b.gate()).toBe('pass');
    expect(b.gate()).toBe('wait');
    expect(b.gate()).toBe('wait');
  });

  it('closes on a successful trial', () => {
    const { b, advance } = breaker(1, 1000);
    b.failed();
    advance(1000);
    expect(b.gate()).toBe('pass');
    b.succeeded();
    expect(b.gate()).toBe('pass');
    expect(b.gate()).toBe('pass');
    expect(b.rejecting).toBe(false);
  });

  it('re-opens on a failed trial, and lets another trial through after the next cooldown', () => {
    const { b, advance } = breaker(5, 1000);
    for (let i = 0; i < 4; i++) b.failed();
    expect(b.failed()).toBe(true);
    advance(1000);
    expect(b.gate()).toBe('pass');
    // One failure re-opens it: the trial failing is enough, whatever the threshold.
    expect(b.failed()).toBe(true);
    expect(b.gate()).toBe('reject');
    advance(1000);
    expect(b.gate()).toBe('pass');
    expect(b.gate()).toBe('wait');
    b.succeeded();
    expect(b.gate()).toBe('pass');
  });

  it('does not re-open on failures of attempts that were let through before it opened', () => {
    const { b, advance } = breaker(2, 1000);
    b.failed();
    expect(b.failed()).toBe(true);
    // Attempts already in flight when it opened fail one after the other: the circuit stays open from the first.
    advance(500);
    expect(b.failed()).toBe(false);
    advance(500);
    expect(b.rejecting).toBe(false);
    expect(b.gate()).toBe('pass');
  });

  it('lets another trial through when the trial is released without a verdict', () => {
    const { b, advance } = breaker(1, 1000);
    b.failed();
    advance(1000);
    expect(b.gate()).toBe('pass');
    expect(b.gate()).toBe('wait');
    b.released();
    expect(b.gate()).toBe('pass');
    expect(b.gate()).toBe('wait');
  });

  it('applies new settings to the next decisions', () => {
    const { b, advance } = breaker(100, 60_000);
    b.configure({ failureThreshold: 1, cooldownMs: 10 });
    expect(b.failed()).toBe(true);
    advance(10);
    expect(b.gate()).toBe('pass');
  });
});

import type { Target } from '../contract/config.ts';

// Makes a dead target fail fast instead of tying up a queue, sockets and retries: after `failureThreshold`
// consecutive failed attempts the circuit opens for `cooldownMs`, then one trial attempt decides.

export type BreakerSettings = Target['circuitBreaker'];
export type BreakerGate = 'pass' | 'reject' | 'wait';

export class CircuitBreaker {
  #settings: BreakerSettings;
  readonly #now: () => number;
  #failures = 0;
  #openedAt: number | undefined;
  #trialInFlight = false;

  constructor(settings: BreakerSettings, now: () => number) {
    this.#settings = settings;
    this.#now = now;
  }

  configure(settings: BreakerSettings): void {
    this.#settings = settings;
  }

  /** True while open and cooling down: new events are dropped rather than queued. */
  get rejecting(): boolean {
    return this.#openedAt !== undefined && this.#now() - this.#openedAt < this.#settings.cooldownMs;
  }

  /** Asked before each attempt. After the cooldown exactly one trial passes; the rest wait for its outcome. */
  gate(): BreakerGate {
    if (this.#openedAt === undefined) return 'pass';
    if (this.rejecting) return 'reject';
    if (this.#trialInFlight) return 'wait';
    this.#trialInFlight = true;
    return 'pass';
  }

  succeeded(): void {
    this.#failures = 0;
    this.#openedAt = undefined;
    this.#trialInFlight = false;
  }

  /** Returns true when this failure opened (or re-opened) the circuit. */
  failed(): boolean {
    this.#failures++;
    if (this.#trialInFlight || (this.#openedAt === undefined && this.#failures >= this.#settings.failureThreshold)) {
      this.#trialInFlight = false;
      this.#openedAt = this.#now();
      return true;
    }
    return false;
  }

  /** An attempt that says nothing about the target's health (e.g. refused by policy) must still release a trial. */
  released(): void {
    this.#trialInFlight = false;
  }
}

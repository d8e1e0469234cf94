import { performance } from 'node:perf_hooks';

// Bounds every attempt of a target with one timer instead of a setTimeout and an AbortController per attempt (both
// showed in the delivery profile). The timer is armed for the earliest deadline; attempts that finish leave it alone,
// so under load it fires about once per `timeoutMs`, finds the attempts of that moment still young, and re-arms.

export interface Deadline {
  readonly at: number;
  readonly expire: () => void;
}

export class Deadlines {
  readonly #open = new Set<Deadline>();
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Number.POSITIVE_INFINITY;

  /** Calls `expire` once, `ms` from now, unless the deadline is removed first. */
  add(ms: number, expire: () => void): Deadline {
    const deadline: Deadline = { at: performance.now() + ms, expire };
    this.#open.add(deadline);
    if (deadline.at < this.#armedAt) this.#arm(deadline.at);
    return deadline;
  }

  remove(deadline: Deadline): void {
    this.#open.delete(deadline);
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(() => {
      this.#fire();
    }, Math.max(0, at - performance.now()));
    // The requests themselves keep the process alive; a timer left armed after the last one must not.
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    const expired: Deadline[] = [];
    for (const deadline of this.#open) {
      if (deadline.at <= now) expired.push(deadline);
      else if (deadline.at < next) next = deadline.at;
    }
    for (const deadline of expired) this.#open.delete(deadline);
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    for (const deadline of expired) deadline.expire();
  }
}

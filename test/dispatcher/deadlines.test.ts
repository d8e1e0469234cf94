import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { Deadlines } from '../../dispatcher/deadlines.ts';
import { eventually } from '../support/eventually.ts';

// One timer bounds every attempt of a target. The claims here are about order and about never firing early; how
// late a timer fires depends on the machine, so "on time" is only checked against a far later deadline.

describe('deadlines', () => {
  it('expires each deadline once, never before its time', async () => {
    const deadlines = new Deadlines();
    const fired: { name: string; late: number }[] = [];
    const add = (name: string, ms: number) => {
      const due = performance.now() + ms;
      deadlines.add(ms, () => fired.push({ name, late: performance.now() - due }));
    };
    add('b', 60);
    add('a', 20);
    add('c', 60);
    await eventually('all three expired', () => fired.length === 3);
    expect(fired.map((f) => f.name)).toEqual(['a', 'b', 'c']);
    for (const f of fired) expect(f.late, f.name).toBeGreaterThanOrEqual(0);
  });

  it('fires an early deadline added after a far one at its own time, not at the far one', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    const far = deadlines.add(60_000, () => fired.push('far'));
    const start = performance.now();
    let at = 0;
    deadlines.add(10, () => {
      at = performance.now() - start;
      fired.push('near');
    });
    await eventually('the near deadline expired', () => fired.includes('near'), { timeoutMs: 10_000 });
    expect(at).toBeLessThan(10_000);
    expect(fired).toEqual(['near']);
    deadlines.remove(far);
  });

  it('keeps the early timer when a far deadline is added after it', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    deadlines.add(10, () => fired.push('near'));
    const far = deadlines.add(60_000, () => fired.push('far'));
    await eventually('the near deadline expired', () => fired.includes('near'), { timeoutMs: 10_000 });
    expect(fired).toEqual(['near']);
    deadlines.remove(far);
  });

  it('never expires a removed deadline, and still expires the others', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    const removed = deadlines.add(10, () => fired.push('removed'));
    deadlines.add(40, () => fired.push('kept'));
    deadlines.remove(removed);
    await eventually('the kept deadline expired', () => fired.includes('kept'));
    expect(fired).toEqual(['kept']);
  });

  it('re-arms for a deadline added while it fires', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    deadlines.add(5, () => {
      fired.push('first');
      deadlines.add(5, () => fired.push('second'));
    });
    await eventually('the deadline added from an expiry expired', () => fired.length === 2);
    expect(fired).toEqual(['first', 'second']);
  });

  it('re-arms for the earliest deadline left, whatever order they were added in', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    deadlines.add(10, () => fired.push('first'));
    deadlines.add(50, () => fired.push('second'));
    const far = deadlines.add(60_000, () => fired.push('far'));
    await eventually('the second deadline expired', () => fired.includes('second'), { timeoutMs: 10_000 });
    expect(fired).toEqual(['first', 'second']);
    deadlines.remove(far);
  });
});

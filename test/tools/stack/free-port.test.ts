import { describe, expect, it } from 'vitest';
import { freePort } from '../../../tools/stack/free-port.ts';

// The ports a stack gives its children up front: one config takes five in a row, and two equal ones made the tap
// refuse it (two listeners on one port).

describe('freePort', () => {
  it('never hands out the same port twice in one process', async () => {
    // 1,000 draws from the 12,767 ports of its range: drawn at random alone, repeats would be all but certain
    // (about 39 expected).
    const ports: number[] = [];
    for (let i = 0; i < 1000; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) expect(port).toBeGreaterThanOrEqual(20_000);
  });
});

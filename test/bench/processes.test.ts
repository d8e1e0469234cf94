import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, repoRelative } from '../../tools/bench/processes.ts';

describe('repoRelative', () => {
  it('shows a path inside the repository relative to its root, in NAME=PATH or bare', () => {
    const bin = join(REPO_ROOT, '.bench', 'run-1', 'S0-1000-r1.bin');
    expect(repoRelative(`-output=${bin}`)).toBe('-output=.bench/run-1/S0-1000-r1.bin');
    expect(repoRelative(bin)).toBe('.bench/run-1/S0-1000-r1.bin');
  });

  it('leaves a path outside the repository, and any other argument, unchanged', () => {
    expect(repoRelative('-targets=/tmp/rm-bench-x/targets-S0.txt')).toBe('-targets=/tmp/rm-bench-x/targets-S0.txt');
    expect(repoRelative(`-output=${REPO_ROOT}-other/x.bin`)).toBe(`-output=${REPO_ROOT}-other/x.bin`);
    expect(repoRelative('-rate=1000/s')).toBe('-rate=1000/s');
    expect(repoRelative('attack')).toBe('attack');
  });
});

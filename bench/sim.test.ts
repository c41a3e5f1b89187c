import { describe, expect, it } from 'vitest';
import { floorRun } from './sim.js';

describe('the simulator floor (bench/sim.ts)', () => {
  it('runs every awaited call of the 64 clients to the end, one reply per call', async () => {
    const { fsOps, wallMs } = await floorRun(25);
    expect(fsOps).toBe(64 * 25);
    expect(wallMs).toBeGreaterThanOrEqual(0);
  });
});

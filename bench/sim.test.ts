import { describe, expect, it } from 'vitest';
import { floorRun, pairedRuns } from './sim.js';

describe('the simulator floor (bench/sim.ts)', () => {
  it('runs every awaited call of the 64 clients to the end, one reply per call', async () => {
    const { fsOps, wallMs } = await floorRun(25);
    expect(fsOps).toBe(64 * 25);
    expect(wallMs).toBeGreaterThanOrEqual(0);
  });
});

describe('paired runs (the share of the ceiling)', () => {
  it('alternates the two, at least three pairs, and takes the median of the ratios within pairs', async () => {
    const order: string[] = [];
    // Rates per pair: the ratios are 0.5, 2 and 10/9 (median 10/9), while the ratio of the
    // medians would be 2000 / 2000 = 1.
    const firstRates = [1_000, 2_000, 10_000];
    const secondRates = [2_000, 1_000, 9_000];
    let firsts = 0;
    let seconds = 0;
    const result = await pairedRuns(
      0,
      async () => {
        order.push('first');
        return { fsOps: firstRates[firsts++]!, wallMs: 1_000 };
      },
      async () => {
        order.push('second');
        return { fsOps: secondRates[seconds++]!, wallMs: 1_000 };
      },
    );
    expect(order).toEqual(['first', 'second', 'first', 'second', 'first', 'second']);
    expect(result.ratio).toBeCloseTo(10 / 9, 9);
    expect(result.first.perWallSecond).toBe(2_000);
    expect(result.second.perWallSecond).toBe(2_000);
  });
});

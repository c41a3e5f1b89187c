import { afterAll, describe, expect, it } from 'vitest';
import { MachineScaling, timeReference } from './machine-scaling.js';

describe('machine scaling reference', () => {
  const machine = new MachineScaling();
  afterAll(() => machine.close());

  it('times each workload, and the result depends on the work done', () => {
    for (const kind of ['allocation', 'arithmetic'] as const) {
      const small = timeReference(kind, 800);
      const large = timeReference(kind, 1600);
      expect(small.ms).toBeGreaterThanOrEqual(0);
      expect(large.result).not.toBe(small.result);
    }
  });

  it('refuses an unknown workload or a bad unit count, saying what it expected', () => {
    expect(() => timeReference('sleep' as 'allocation', 10)).toThrow(/expected 'allocation' or 'arithmetic', got "sleep"/);
    expect(() => timeReference('allocation', 0)).toThrow(/positive integer, got 0/);
    expect(() => timeReference('arithmetic', 1.5)).toThrow(/positive integer, got 1.5/);
  });

  it('measures two threads against one as a ratio (2.0 is perfect scaling; bounds loose for a noisy host)', async () => {
    await machine.warmUp();
    const ratio = await machine.twoOverOne('arithmetic');
    expect(ratio).toBeGreaterThan(0.3);
    expect(ratio).toBeLessThan(3);
  }, 30_000);
});

import { describe, expect, it } from 'vitest';
import { caseDefect } from './cases.js';
import { runCaseOnSimulator } from './sim-driver.js';
import { firstGranted, simulateWaiterRace, tallyRace, waiterRaceCase } from './waiter-race.js';

describe('the waiter race (who gets a freed lock first)', () => {
  it('is a well-formed case whose model is first in, first out, as the simulated share answers by default', async () => {
    const round = waiterRaceCase(0);
    expect(caseDefect(round)).toBeUndefined();
    expect(await runCaseOnSimulator(round)).toEqual(round.model);
    expect(firstGranted(round.model)).toBe('B');
  });

  it('reads the winner from a round as Samba answered it (C, asked second, won this one)', () => {
    const samba = ['STATUS_SUCCESS', 'STATUS_SUCCESS', 'STATUS_SUCCESS', 'STATUS_SUCCESS', 'STATUS_SUCCESS', 'STATUS_SUCCESS', 'STATUS_SUCCESS', 'PENDING', 'PENDING', 'PENDING', 'PENDING', 'STATUS_SUCCESS', 'PENDING', 'STATUS_SUCCESS', 'PENDING', 'PENDING', 'STATUS_SUCCESS', 'STATUS_SUCCESS', 'STATUS_SUCCESS', 'STATUS_SUCCESS'];
    expect(firstGranted(samba)).toBe('C');
    const none = [...samba];
    none[13] = 'PENDING';
    expect(tallyRace([samba, samba, none])).toEqual({ B: 0, C: 2, D: 0, E: 0, none: 1 });
  });

  it('on the simulated share: always the first asker first in, first out; with randomLockWaiterOrder any of them, by seed', async () => {
    expect(await simulateWaiterRace(12, false)).toEqual({ B: 12, C: 0, D: 0, E: 0 });
    const random = await simulateWaiterRace(24, true);
    expect(Object.values(random).reduce((sum, count) => sum + count, 0)).toBe(24);
    expect(random.B).toBeLessThan(24);
    expect(Object.values(random).filter((count) => count > 0).length).toBeGreaterThanOrEqual(3);
    expect(await simulateWaiterRace(24, true)).toEqual(random);
  });
});

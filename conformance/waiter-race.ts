/**
 * Which of several waiters gets a freed lock: a measurement, not a comparison (the spec leaves the
 * order open, and Samba's waiters race for it: docs/conformance.md).
 *
 * A round: A holds an exclusive lock on the kernel file's first 100 bytes; four other clients ask
 * for it, blocking, one step apart (B first, E last); A unlocks; the outcome of each waiting
 * request says who was granted it first. Then the waiters drop their connections (ending the
 * requests still pending). Run on Samba (`nasq conformance --samba --waiter-race N`) and on the
 * simulated share, first in, first out and with randomLockWaiterOrder (a seed per round).
 */

import type { ConformanceCase, Step, StepStatus } from './cases.js';
import { runCaseOnSimulator } from './sim-driver.js';

export const raceWaiters = ['B', 'C', 'D', 'E'] as const;

const granted: StepStatus = 'STATUS_SUCCESS';

/** Round `round` of the race, as a case of the conformance drivers. */
export function waiterRaceCase(round: number): ConformanceCase {
  // Steps with what the model (first in, first out) says of each.
  const steps: Step[] = [];
  const model: StepStatus[] = [];
  const add = (step: Step, status: StepStatus): void => {
    steps.push(step);
    model.push(status);
  };
  add({ op: 'open', client: 'A', handle: 'a1', path: 'kernel' }, granted);
  add({ op: 'write', handle: 'a1', offset: 0, length: 200 }, granted);
  add({ op: 'lock', handle: 'a1', offset: 0, length: 100, mode: 'exclusive', wait: false }, granted);
  for (const waiter of raceWaiters) add({ op: 'open', client: waiter, handle: `${waiter.toLowerCase()}1`, path: 'kernel' }, granted);
  const lockSteps: number[] = [];
  for (const waiter of raceWaiters) {
    lockSteps.push(steps.length);
    add({ op: 'lock', handle: `${waiter.toLowerCase()}1`, offset: 0, length: 100, mode: 'exclusive', wait: true }, 'PENDING');
  }
  add({ op: 'unlock', handle: 'a1', offset: 0, length: 100 }, granted);
  lockSteps.forEach((step, index) => add({ op: 'outcome', of: step }, index === 0 ? granted : 'PENDING'));
  for (const waiter of raceWaiters) add({ op: 'drop', client: waiter }, granted);
  return { name: `waiter-race-${round}`, pins: 'section 1: the waiter order is unspecified (the model chooses FIFO); a measurement of who gets a freed lock first', steps, model };
}

/** Who was granted the lock first in a round's observed statuses ('none' or 'A+B' if not one). */
export function firstGranted(observed: readonly string[]): string {
  const outcomes = observed.slice(observed.length - 2 * raceWaiters.length, observed.length - raceWaiters.length);
  const winners = raceWaiters.filter((_, index) => outcomes[index] === granted);
  return winners.length === 0 ? 'none' : winners.join('+');
}

/** Rounds won per waiter (in the order B, C, D, E, then anything else seen). */
export function tallyRace(observedRounds: ReadonlyArray<readonly string[]>): Record<string, number> {
  const tally: Record<string, number> = Object.fromEntries(raceWaiters.map((waiter) => [waiter, 0]));
  for (const observed of observedRounds) {
    const winner = firstGranted(observed);
    tally[winner] = (tally[winner] ?? 0) + 1;
  }
  return tally;
}

/** The race on the simulated share, `rounds` times (round r with seed r + 1). */
export async function simulateWaiterRace(rounds: number, randomLockWaiterOrder: boolean): Promise<Record<string, number>> {
  const observed: string[][] = [];
  for (let round = 0; round < rounds; round += 1) {
    const entry = { ...waiterRaceCase(round), simServer: { randomLockWaiterOrder } };
    observed.push(await runCaseOnSimulator(entry, { seed: round + 1 }));
  }
  return tallyRace(observed);
}

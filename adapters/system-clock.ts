/**
 * SystemClock: the engine's Clock port on the host's wall clock.
 *
 * Real adapters are the only place in nasq where ambient time (Date.now, setTimeout) is allowed;
 * the engine sees time only through this port, and the simulator replaces it with virtual time.
 *
 * `now()` is the wall clock (Date.now), because the engine compares it with times other clients
 * wrote into shared files (leases), which a monotonic clock of this process could not do. Timers
 * run on Node's monotonic clock, so a sleep re-checks the wall clock when it wakes and sleeps
 * again if the wall clock has not reached the target yet (it was set back, or timers fired early
 * by a millisecond).
 */

import { assert, NasqError } from '../engine/errors.js';
import type { Clock, WaitResult, WatchHandle } from '../engine/ports.js';
import { NodeDirectoryWatch } from './node-directory-watch.js';

/** The longest delay setTimeout accepts (2^31 - 1 ms, about 24.8 days); longer sleeps go in steps. */
const timerDelayMsMax = 2 ** 31 - 1;

function requireTime(operation: string, name: string, value: number): void {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new NasqError('INVALID_ARGUMENT', `${operation}: ${name}: expected a number of ms since the epoch, given ${String(value)}`, {
      details: { operation, name, given: value },
    });
  }
}

export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  /**
   * Resolves once `now()` has reached `timeMs`. Each round waits for the remaining time (at most
   * `timerDelayMsMax`), so the loop ends once the wall clock gets there; `Infinity` never resolves.
   */
  async sleepUntil(timeMs: number): Promise<void> {
    requireTime('sleepUntil', 'timeMs', timeMs);
    for (let remainingMs = timeMs - Date.now(); remainingMs > 0; remainingMs = timeMs - Date.now()) {
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(Math.ceil(remainingMs), timerDelayMsMax)));
    }
  }

  /**
   * Waits for the watch to report a change, or until `now()` reaches `untilMs`. A change queued
   * since the previous wait on the same watch returns at once. Rejects with CLOSED_HANDLE if the
   * watch is closed before or during the wait (SMB completes a pending notify on close).
   */
  waitForChange(watch: WatchHandle, untilMs: number): Promise<WaitResult> {
    assert(watch instanceof NodeDirectoryWatch, 'waitForChange: the watch was not made by a NodeFileSystem');
    requireTime('waitForChange', 'untilMs', untilMs);
    const closed = (): NasqError =>
      new NasqError('CLOSED_HANDLE', `waitForChange '${watch.path}': the watch is closed`, { details: { path: watch.path } });
    if (watch.closed) return Promise.reject(closed());
    const queued = watch.takeChanges();
    if (queued !== undefined) return Promise.resolve(queued);
    if (Date.now() >= untilMs) return Promise.resolve('timeout');
    return new Promise<WaitResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        unsubscribe();
      };
      const unsubscribe = watch.onChange(() => {
        if (watch.closed) {
          finish();
          reject(closed());
          return;
        }
        const result = watch.takeChanges();
        if (result === undefined) return;
        finish();
        resolve(result);
      });
      const arm = (): void => {
        const remainingMs = untilMs - Date.now();
        if (remainingMs <= 0) {
          finish();
          // A change that arrived with the deadline still counts.
          resolve(watch.takeChanges() ?? 'timeout');
          return;
        }
        timer = setTimeout(arm, Math.min(Math.ceil(remainingMs), timerDelayMsMax));
      };
      arm();
    });
  }
}

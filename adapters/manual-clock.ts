/**
 * A clock whose time moves only when a test says so. Sleepers and watch waiters wake, in order
 * of their wake time, as `advanceTo` passes it; a watch event wakes its waiter at once.
 */

import { AssertionError, assert } from '../engine/errors.js';
import type { Clock, WaitResult, WatchHandle } from '../engine/ports.js';
import { WatchQueue } from './watch-queue.js';

interface Sleeper {
  readonly untilMs: number;
  readonly sequence: number;
  readonly wake: (result: WaitResult) => void;
}

export class ManualClock implements Clock {
  private timeMs: number;
  private sleepers: Sleeper[] = [];
  private sequence = 0;

  constructor(startMs = 0) {
    this.timeMs = startMs;
  }

  now(): number {
    return this.timeMs;
  }

  sleepUntil(timeMs: number): Promise<void> {
    if (timeMs <= this.timeMs) return Promise.resolve();
    return new Promise((resolve) => this.addSleeper(timeMs, () => resolve()));
  }

  waitForChange(watch: WatchHandle, untilMs: number): Promise<WaitResult> {
    if (!(watch instanceof WatchQueue)) throw new AssertionError('ManualClock waits only on WatchQueue watches');
    const queued = watch.take();
    if (queued !== undefined) return Promise.resolve(queued);
    if (untilMs <= this.timeMs) return Promise.resolve('timeout');
    return new Promise((resolve) => {
      let done = false;
      const sleeper = this.addSleeper(untilMs, (result) => {
        if (done) return;
        done = true;
        watch.onNext(undefined);
        resolve(result);
      });
      watch.onNext(() => {
        if (done) return;
        done = true;
        this.sleepers = this.sleepers.filter((entry) => entry !== sleeper);
        resolve(watch.take() ?? 'changed');
      });
    });
  }

  /** Moves time forward by `durationMs`, waking sleepers on the way. */
  async advance(durationMs: number): Promise<void> {
    assert(durationMs >= 0, `advance: expected a duration >= 0, got ${durationMs}`);
    await this.advanceTo(this.timeMs + durationMs);
  }

  /**
   * Moves time forward to `timeMs`, stopping at every sleeper's wake time to wake it and let its
   * continuation run (microtasks) before time moves on.
   */
  async advanceTo(timeMs: number): Promise<void> {
    assert(timeMs >= this.timeMs, `advanceTo: time cannot go back from ${this.timeMs} to ${timeMs}`);
    for (let step = 0; step < 1_000_000; step += 1) {
      this.sleepers.sort((a, b) => a.untilMs - b.untilMs || a.sequence - b.sequence);
      const first = this.sleepers[0];
      if (first === undefined || first.untilMs > timeMs) break;
      this.sleepers.shift();
      this.timeMs = Math.max(this.timeMs, first.untilMs);
      first.wake('timeout');
      // Let the woken code run to its next wait before time moves on.
      await settle(2_000);
    }
    this.timeMs = timeMs;
    await settle();
  }

  /** How many sleepers and waiters wait on this clock. */
  get waiting(): number {
    return this.sleepers.length;
  }

  private addSleeper(untilMs: number, wake: (result: WaitResult) => void): Sleeper {
    const sleeper = { untilMs, sequence: this.sequence++, wake };
    this.sleepers.push(sleeper);
    return sleeper;
  }
}

/** Lets pending promise continuations run (a bounded number of microtask turns). */
export async function settle(turns = 50): Promise<void> {
  for (let turn = 0; turn < turns; turn += 1) await Promise.resolve();
}

/**
 * A directory watch's queue of events, shared by the in-memory adapter and the clocks that wait
 * on it (SMB CHANGE_NOTIFY keeps events per handle between requests; so does this).
 *
 * Events are counted, not stored: a waiter only needs to know that something changed. Past
 * `capacity` unconsumed events the queue reports 'overflow' (STATUS_NOTIFY_ENUM_DIR): the waiter
 * must re-check everything, which the queue engine does after any wake-up anyway.
 */

import type { WaitResult, WatchFilter, WatchHandle } from '../engine/ports.js';

export type WatchEventKind = 'fileName' | 'attributes' | 'size' | 'lastWrite';

export class WatchQueue implements WatchHandle {
  private count = 0;
  private listener: (() => void) | undefined;
  closed = false;

  constructor(
    readonly path: string,
    readonly filter: WatchFilter,
    /** Unconsumed events kept before the queue overflows. Default 64. */
    readonly capacity = 64,
  ) {}

  /** Records a change of the given kind if the filter asks for it. */
  push(kind: WatchEventKind): void {
    if (this.closed || this.filter[kind] !== true) return;
    this.count += 1;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }

  /** Consumes the queued events, if any. */
  take(): WaitResult | undefined {
    if (this.count === 0) return undefined;
    const result: WaitResult = this.count > this.capacity ? 'overflow' : 'changed';
    this.count = 0;
    return result;
  }

  /** Calls `listener` once, at the next event. A later call replaces an earlier listener. */
  onNext(listener: (() => void) | undefined): void {
    this.listener = listener;
  }

  close(): void {
    this.closed = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }
}

/**
 * Byte-range locks of one file with SMB semantics (MS-SMB2 2.2.26, MS-FSA 2.1.4.10, 2.1.5.8/9),
 * as pinned by Samba's smb2.lock.* tests. Shared by the in-memory adapter and the simulated CIFS
 * server, so both enforce exactly the same rules.
 *
 * - The owner of a lock is an open (a number chosen by the caller), never a process.
 * - Exclusive: other opens may not read, write or lock the range. Shared: others may read and take
 *   shared locks; nobody writes the range, the holder included.
 * - Ranges are inclusive (last byte = offset + length - 1). A zero-length range at N > 0 sits
 *   between bytes N - 1 and N: it conflicts with a range that holds both (MS-FSA 2.1.4.10, as
 *   Samba does: conformance/cases.ts, zero-length); the range (0, 0) conflicts with nothing; a
 *   zero-length read or write transfers nothing and conflicts with nothing. Locking past the end
 *   of file is legal; offset + length beyond 2^64 is invalid (and here,
 *   beyond 2^53, where numbers stop being exact).
 * - Stacking: an open may add a shared lock on its own exclusive lock (two unlocks then needed) but
 *   may not stack an exclusive lock on any lock it holds on an overlapping range.
 * - Unlock must name exactly the offset and length of a lock the open holds; when a shared and an
 *   exclusive lock of the open match, the exclusive one goes first (MS-FSA 2.1.5.8 order).
 * - Waiters (blocking requests) are served in queue order, first in, first out unless a waiter is
 *   queued ahead of others (`enqueue`): a waiter is granted when it conflicts with no granted lock
 *   and with no waiter ahead of it still queued for an overlapping range.
 *   There is no timeout here: the caller cancels a waiter when its own bound passes.
 *
 * The table knows nothing of time, sessions or promises; callers react to what the methods return.
 */

import { assert } from '../engine/errors.js';
import type { LockMode } from '../engine/ports.js';

export interface HeldLock {
  readonly owner: number;
  readonly offset: number;
  readonly length: number;
  readonly mode: LockMode;
}

export interface LockWaiter<Token> extends HeldLock {
  readonly token: Token;
}

export type LockAttempt = 'granted' | 'conflict' | 'invalid';

/**
 * SMB allows any range within 64 bits; JavaScript numbers are exact only below 2^53, so ranges
 * reaching past that are refused as invalid here (nothing in nasq locks anywhere near it). An end
 * that is a safe integer is far below 2^64, so SMB's own overflow rule needs no separate check.
 */
export function isValidRange(offset: number, length: number): boolean {
  return Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && Number.isSafeInteger(offset + length);
}

/**
 * Do two ranges overlap (MS-FSA 2.1.4.10)? Each is [offset, offset + length - 1]; for a
 * zero-length range at N that is the point between bytes N - 1 and N, inside a range holding
 * both; (0, 0) is inside nothing.
 */
function overlaps(aOffset: number, aLength: number, bOffset: number, bLength: number): boolean {
  if ((aOffset === 0 && aLength === 0) || (bOffset === 0 && bLength === 0)) return false;
  return aOffset < bOffset + bLength && bOffset < aOffset + aLength;
}

/** Would a request (owner, range, mode) conflict with an existing lock? */
function requestConflicts(existing: HeldLock, owner: number, offset: number, length: number, mode: LockMode): boolean {
  if (!overlaps(existing.offset, existing.length, offset, length)) return false;
  if (existing.owner === owner) {
    // Same open: a shared lock may stack on anything of its own; an exclusive one on nothing.
    return mode === 'exclusive';
  }
  return mode === 'exclusive' || existing.mode === 'exclusive';
}

export class LockTable<Token = unknown> {
  private readonly locks: HeldLock[] = [];
  /**
   * The queue of waiters is `waiters[waiterHead ..]`: granting the head advances `waiterHead`
   * instead of shifting the array (Array.prototype.shift measured at ~0.6 us on a queue of 64 in
   * Node 20: it copies). The dead front is cut off when it is half the array, and before any
   * other method reads the queue (`compactWaiters`).
   */
  private readonly waiters: (LockWaiter<Token> | undefined)[] = [];
  private waiterHead = 0;
  /**
   * A range some waiter wants (the reference) and how many waiters want exactly it. When that is
   * every waiter, they all wait for one range (the common case: every client queues for the same
   * header lock), and a grant pass can stop at the first exclusive waiter that stays blocked: FIFO
   * keeps every later one behind it. Kept by counting, without a key string per waiter: whenever
   * no waiter wants the reference any more and some wait, the reference moves to the first one.
   */
  private referenceOffset = 0;
  private referenceLength = 0;
  private referenceWaiters = 0;

  /** Tries to take a lock at once. */
  tryLock(owner: number, offset: number, length: number, mode: LockMode): LockAttempt {
    if (!isValidRange(offset, length)) return 'invalid';
    for (const existing of this.locks) {
      if (requestConflicts(existing, owner, offset, length, mode)) return 'conflict';
    }
    this.locks.push({ owner, offset, length, mode });
    return 'granted';
  }

  /**
   * Queues a blocking request that `tryLock` refused. The caller must later see it granted (from
   * the return of `unlock`/`releaseOwner`/`cancel`) or cancel it. It goes last (first in, first
   * out), or `ahead` places before the end of the queue: a server whose waiters race for a freed
   * lock (Samba's processes do) is modelled by placing each at a random place, which makes the
   * queue a uniformly random order of the waiters.
   */
  enqueue(owner: number, offset: number, length: number, mode: LockMode, token: Token, ahead = 0): void {
    assert(isValidRange(offset, length), 'enqueue: an invalid range must be refused by tryLock first');
    const waiter = { owner, offset, length, mode, token };
    if (ahead === 0) {
      this.waiters.push(waiter);
    } else {
      this.compactWaiters();
      assert(Number.isSafeInteger(ahead) && ahead > 0 && ahead <= this.waiters.length, () => `enqueue: ${ahead} places ahead in a queue of ${this.waiters.length}`);
      this.waiters.splice(this.waiters.length - ahead, 0, waiter);
    }
    this.waiterAdded(offset, length);
  }

  /** Waiters queued. */
  get waiterCount(): number {
    return this.waiters.length - this.waiterHead;
  }

  /**
   * Releases exactly the lock (owner, offset, length). Returns the waiters granted as a result, in
   * grant order, or undefined if no such lock is held (STATUS_RANGE_NOT_LOCKED).
   */
  unlock(owner: number, offset: number, length: number): LockWaiter<Token>[] | undefined {
    let index = -1;
    for (let position = 0; position < this.locks.length; position += 1) {
      const lock = this.locks[position]!;
      if (lock.owner === owner && lock.offset === offset && lock.length === length) {
        if (lock.mode === 'exclusive') {
          index = position;
          break;
        }
        if (index === -1) index = position;
      }
    }
    if (index === -1) return undefined;
    this.locks.splice(index, 1);
    return this.grantWaiters();
  }

  /** Drops every lock and waiter of an open (its handle closed). */
  releaseOwner(owner: number): { granted: LockWaiter<Token>[]; dropped: LockWaiter<Token>[] } {
    this.compactWaiters();
    const dropped: LockWaiter<Token>[] = [];
    for (let position = this.waiters.length - 1; position >= 0; position -= 1) {
      const waiter = this.waiters[position]!;
      if (waiter.owner !== owner) continue;
      this.waiters.splice(position, 1);
      this.waiterRemoved(waiter.offset, waiter.length);
      dropped.unshift(waiter);
    }
    let removed = false;
    for (let position = this.locks.length - 1; position >= 0; position -= 1) {
      if (this.locks[position]!.owner === owner) {
        this.locks.splice(position, 1);
        removed = true;
      }
    }
    return { granted: removed || dropped.length > 0 ? this.grantWaiters() : [], dropped };
  }

  /** Removes a queued waiter (client-side bound passed, or an explicit cancel). */
  cancel(token: Token): { cancelled: boolean; granted: LockWaiter<Token>[] } {
    this.compactWaiters();
    const index = this.waiters.findIndex((waiter) => waiter!.token === token);
    if (index === -1) return { cancelled: false, granted: [] };
    const [waiter] = this.waiters.splice(index, 1);
    this.waiterRemoved(waiter!.offset, waiter!.length);
    // A later waiter may have been held back only by this one.
    return { cancelled: true, granted: this.grantWaiters() };
  }

  /** May `owner` read the range? Only another open's exclusive lock forbids it. */
  canRead(owner: number, offset: number, length: number): boolean {
    if (length === 0) return true;
    for (const lock of this.locks) {
      if (lock.owner !== owner && lock.mode === 'exclusive' && overlaps(lock.offset, lock.length, offset, length)) {
        return false;
      }
    }
    return true;
  }

  /** May `owner` write the range? Another open's lock of any mode, or any shared lock, forbids it. */
  canWrite(owner: number, offset: number, length: number): boolean {
    if (length === 0) return true;
    for (const lock of this.locks) {
      if ((lock.owner !== owner || lock.mode === 'shared') && overlaps(lock.offset, lock.length, offset, length)) {
        return false;
      }
    }
    return true;
  }

  /** The granted locks, oldest first. */
  held(): readonly HeldLock[] {
    return this.locks;
  }

  /** The queued requests, first in first. */
  queued(): readonly LockWaiter<Token>[] {
    this.compactWaiters();
    return this.waiters as LockWaiter<Token>[];
  }

  isEmpty(): boolean {
    return this.locks.length === 0 && this.waiters.length === this.waiterHead;
  }

  private waiterAdded(offset: number, length: number): void {
    if (offset === this.referenceOffset && length === this.referenceLength) this.referenceWaiters += 1;
    else if (this.referenceWaiters === 0) this.rebaseReference();
  }

  private waiterRemoved(offset: number, length: number): void {
    if (offset !== this.referenceOffset || length !== this.referenceLength) return;
    this.referenceWaiters -= 1;
    assert(this.referenceWaiters >= 0, 'lock table: waiters of the reference range below zero');
    if (this.referenceWaiters === 0 && this.waiters.length > this.waiterHead) this.rebaseReference();
  }

  /** The first waiter's range becomes the reference; its waiters are counted. */
  private rebaseReference(): void {
    const waiters = this.waiters;
    const first = waiters[this.waiterHead];
    this.referenceWaiters = 0;
    if (first === undefined) return;
    this.referenceOffset = first.offset;
    this.referenceLength = first.length;
    for (let position = this.waiterHead; position < waiters.length; position += 1) {
      const waiter = waiters[position]!;
      if (waiter.offset === first.offset && waiter.length === first.length) this.referenceWaiters += 1;
    }
  }

  private grantWaiters(): LockWaiter<Token>[] {
    const granted: LockWaiter<Token>[] = [];
    const waiters = this.waiters;
    if (waiters.length === this.waiterHead) return granted;
    const oneRange = this.referenceWaiters === waiters.length - this.waiterHead;
    for (let position = this.waiterHead; position < waiters.length; ) {
      const waiter = waiters[position]!;
      let blocked = false;
      for (const lock of this.locks) {
        if (requestConflicts(lock, waiter.owner, waiter.offset, waiter.length, waiter.mode)) {
          blocked = true;
          break;
        }
      }
      if (!blocked) {
        // First in, first out among overlapping waiters: do not overtake an earlier one.
        for (let earlier = this.waiterHead; earlier < position; earlier += 1) {
          const other = waiters[earlier]!;
          if (
            overlaps(other.offset, other.length, waiter.offset, waiter.length) &&
            (other.mode === 'exclusive' || waiter.mode === 'exclusive')
          ) {
            blocked = true;
            break;
          }
        }
      }
      if (blocked) {
        // Every later waiter wants this same range; a non-empty one overlaps this exclusive
        // waiter, which stays queued ahead of it: none of them can be granted in this pass. (Two
        // zero-length ranges at one point do not overlap: then each is judged on its own.)
        if (oneRange && waiter.mode === 'exclusive' && waiter.length > 0) break;
        position += 1;
        continue;
      }
      // The head is the common case: it leaves by moving the head on.
      if (position === this.waiterHead) {
        waiters[position] = undefined;
        this.waiterHead += 1;
        position += 1;
      } else {
        waiters.splice(position, 1);
      }
      this.waiterRemoved(waiter.offset, waiter.length);
      this.locks.push({ owner: waiter.owner, offset: waiter.offset, length: waiter.length, mode: waiter.mode });
      granted.push(waiter);
    }
    if (this.waiterHead === waiters.length) {
      waiters.length = 0;
      this.waiterHead = 0;
    } else if (this.waiterHead >= 32 && 2 * this.waiterHead >= waiters.length) {
      this.compactWaiters();
    }
    return granted;
  }

  /** Cuts the dead front off the queue: `waiters` is then exactly the waiters, first in first. */
  private compactWaiters(): void {
    if (this.waiterHead === 0) return;
    this.waiters.splice(0, this.waiterHead);
    this.waiterHead = 0;
  }
}

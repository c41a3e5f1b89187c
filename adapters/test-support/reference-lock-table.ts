/**
 * The lock table as it was before its grant pass learned to stop early (commit 9e2914d and earlier):
 * the reference the differential test compares the current table against. Do not optimise.
 * One change since: zero-length ranges follow MS-FSA 2.1.4.10 as Samba does (docs/conformance.md),
 * in both tables alike, so the comparison still tests the grant pass. And a waiter may be queued
 * `ahead` places before the end (a server whose waiters race: the simulator's randomLockWaiterOrder).
 */

import { assert } from '../../engine/errors.js';
import type { LockMode } from '../../engine/ports.js';

/** One past the largest byte a 64-bit range can reach. */
const maximumEndExclusive = 2n ** 64n;

interface HeldLock {
  readonly owner: number;
  readonly offset: number;
  readonly length: number;
  readonly mode: LockMode;
}

interface LockWaiter<Token> extends HeldLock {
  readonly token: Token;
}

type LockAttempt = 'granted' | 'conflict' | 'invalid';

/**
 * SMB allows any range within 64 bits; JavaScript numbers are exact only below 2^53, so ranges
 * reaching past that are refused as invalid here (nothing in nasq locks anywhere near it).
 */
export function referenceIsValidRange(offset: number, length: number): boolean {
  return (
    Number.isSafeInteger(offset) &&
    Number.isSafeInteger(length) &&
    Number.isSafeInteger(offset + length) &&
    offset >= 0 &&
    length >= 0 &&
    BigInt(offset) + BigInt(length) <= maximumEndExclusive
  );
}

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

export class ReferenceLockTable<Token = unknown> {
  private readonly locks: HeldLock[] = [];
  private readonly waiters: LockWaiter<Token>[] = [];

  /** Tries to take a lock at once. */
  tryLock(owner: number, offset: number, length: number, mode: LockMode): LockAttempt {
    if (!referenceIsValidRange(offset, length)) return 'invalid';
    for (const existing of this.locks) {
      if (requestConflicts(existing, owner, offset, length, mode)) return 'conflict';
    }
    this.locks.push({ owner, offset, length, mode });
    return 'granted';
  }

  /**
   * Queues a blocking request that `tryLock` refused. The caller must later see it granted (from
   * the return of `unlock`/`releaseOwner`/`cancel`) or cancel it. It goes `ahead` places before
   * the end of the queue (0: last).
   */
  enqueue(owner: number, offset: number, length: number, mode: LockMode, token: Token, ahead = 0): void {
    assert(referenceIsValidRange(offset, length), 'enqueue: an invalid range must be refused by tryLock first');
    this.waiters.splice(this.waiters.length - ahead, 0, { owner, offset, length, mode, token });
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
    const dropped: LockWaiter<Token>[] = [];
    for (let position = this.waiters.length - 1; position >= 0; position -= 1) {
      if (this.waiters[position]!.owner === owner) dropped.unshift(...this.waiters.splice(position, 1));
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
    const index = this.waiters.findIndex((waiter) => waiter.token === token);
    if (index === -1) return { cancelled: false, granted: [] };
    this.waiters.splice(index, 1);
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
    return this.waiters;
  }

  isEmpty(): boolean {
    return this.locks.length === 0 && this.waiters.length === 0;
  }

  private grantWaiters(): LockWaiter<Token>[] {
    const granted: LockWaiter<Token>[] = [];
    if (this.waiters.length === 0) return granted;
    for (let position = 0; position < this.waiters.length; ) {
      const waiter = this.waiters[position]!;
      let blocked = false;
      for (const lock of this.locks) {
        if (requestConflicts(lock, waiter.owner, waiter.offset, waiter.length, waiter.mode)) {
          blocked = true;
          break;
        }
      }
      if (!blocked) {
        // First in, first out among overlapping waiters: do not overtake an earlier one.
        for (let earlier = 0; earlier < position; earlier += 1) {
          const other = this.waiters[earlier]!;
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
        position += 1;
        continue;
      }
      this.waiters.splice(position, 1);
      this.locks.push({ owner: waiter.owner, offset: waiter.offset, length: waiter.length, mode: waiter.mode });
      granted.push(waiter);
    }
    return granted;
  }
}

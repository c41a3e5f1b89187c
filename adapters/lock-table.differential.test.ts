/**
 * The lock table against its reference (the implementation before the early-stopping grant pass,
 * kept verbatim in test-support): random sequences of lock, enqueue, unlock (mostly of a held
 * lock), close (release owner), cancel, read and write checks, with few owners and few ranges so
 * that they collide, must give the same answers, the same grants in the same order, and the same
 * held and queued locks after every step. Shown to catch a grant pass that stops too early.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LockMode } from '../engine/ports.js';
import { LockTable, isValidRange } from './lock-table.js';
import { ReferenceLockTable, referenceIsValidRange } from './test-support/reference-lock-table.js';

const ranges = [
  { offset: 0, length: 8192 },
  { offset: 0, length: 8192 },
  { offset: 0, length: 4096 },
  { offset: 4096, length: 4096 },
  { offset: 8192, length: 96 },
  { offset: 100, length: 0 },
];

type Step =
  | { kind: 'lock'; owner: number; range: number; mode: LockMode; wait: boolean; ahead?: number }
  | { kind: 'unlock'; owner: number; range: number }
  | { kind: 'unlockHeld'; pick: number }
  | { kind: 'close'; owner: number }
  | { kind: 'cancel'; pick: number }
  | { kind: 'read' | 'write'; owner: number; range: number };

const owner = fc.integer({ min: 1, max: 6 });
const range = fc.integer({ min: 0, max: ranges.length - 1 });
/** How far ahead of the end a waiter is queued: mostly last (first in, first out). */
const ahead = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat({ max: 8 }) });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('lock' as const), owner, range, mode: fc.constantFrom<LockMode>('exclusive', 'shared'), wait: fc.boolean(), ahead }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unlock' as const), owner, range }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('unlockHeld' as const), pick: fc.nat({ max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), owner }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat({ max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('read' as const, 'write' as const), owner, range }) },
);

/** What a table shows from outside, tokens included. */
function snapshot(table: LockTable<number> | ReferenceLockTable<number>) {
  return { held: table.held().map((lock) => ({ ...lock })), queued: table.queued().map((waiter) => ({ ...waiter })), empty: table.isEmpty() };
}

/**
 * Replays `steps` on the table and the reference, comparing every answer, and what both show from
 * outside every `snapshotEvery` steps and at the end. (Reading the queue tidies the table's
 * queue, so rare snapshots let long runs of grants leave it untidied in between.)
 */
function replay(steps: readonly Step[], snapshotEvery: number): void {
  const table = new LockTable<number>();
  const reference = new ReferenceLockTable<number>();
  let nextToken = 1;
  for (const [index, current] of steps.entries()) {
    switch (current.kind) {
      case 'lock': {
        const { offset, length } = ranges[current.range]!;
        const attempt = table.tryLock(current.owner, offset, length, current.mode);
        expect(attempt).toBe(reference.tryLock(current.owner, offset, length, current.mode));
        if (attempt === 'conflict' && current.wait) {
          // Queued last, or some places ahead (as many as there are waiters, at most).
          const ahead = Math.min(current.ahead ?? 0, reference.queued().length);
          table.enqueue(current.owner, offset, length, current.mode, nextToken, ahead);
          reference.enqueue(current.owner, offset, length, current.mode, nextToken, ahead);
          nextToken += 1;
        }
        break;
      }
      case 'unlock': {
        const { offset, length } = ranges[current.range]!;
        expect(table.unlock(current.owner, offset, length)).toEqual(reference.unlock(current.owner, offset, length));
        break;
      }
      case 'unlockHeld': {
        const held = reference.held();
        if (held.length === 0) break;
        const { owner: holder, offset, length } = held[current.pick % held.length]!;
        expect(table.unlock(holder, offset, length)).toEqual(reference.unlock(holder, offset, length));
        break;
      }
      case 'close':
        expect(table.releaseOwner(current.owner)).toEqual(reference.releaseOwner(current.owner));
        break;
      case 'cancel': {
        const queued = reference.queued();
        const token = queued.length === 0 ? 0 : queued[current.pick % queued.length]!.token;
        expect(table.cancel(token)).toEqual(reference.cancel(token));
        break;
      }
      case 'read':
      case 'write': {
        const { offset, length } = ranges[current.range]!;
        const method = current.kind === 'read' ? 'canRead' : 'canWrite';
        expect(table[method](current.owner, offset, length)).toBe(reference[method](current.owner, offset, length));
        break;
      }
    }
    if (index % snapshotEvery === 0) expect(snapshot(table)).toEqual(snapshot(reference));
  }
  expect(snapshot(table)).toEqual(snapshot(reference));
}

describe('LockTable against the reference implementation', () => {
  it('answers every sequence of operations exactly as the reference does', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 10, maxLength: 150, size: 'max' }), (steps) => {
        replay(steps, 1);
      }),
      { numRuns: 1_000 },
    );
  });

  it('agrees through long queues of many owners, looked at rarely (grants from the head of a queue of up to hundreds)', () => {
    const manyOwners = fc.integer({ min: 1, max: 120 });
    const longQueueStep: fc.Arbitrary<Step> = fc.oneof(
      { weight: 12, arbitrary: fc.record({ kind: fc.constant('lock' as const), owner: manyOwners, range: fc.constantFrom(0, 1, 1, 1, 2), mode: fc.constantFrom<LockMode>('exclusive', 'exclusive', 'exclusive', 'shared'), wait: fc.constant(true), ahead: fc.oneof(fc.constant(0), fc.nat({ max: 300 })) }) },
      { weight: 8, arbitrary: fc.record({ kind: fc.constant('unlockHeld' as const), pick: fc.nat({ max: 20 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), owner: manyOwners }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat({ max: 200 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('read' as const, 'write' as const), owner: manyOwners, range }) },
    );
    fc.assert(
      fc.property(fc.array(longQueueStep, { minLength: 100, maxLength: 800, size: 'max' }), fc.constantFrom(50, 200, 100_000), (steps, snapshotEvery) => {
        replay(steps, snapshotEvery);
      }),
      { numRuns: 150 },
    );
  });

  it('agrees on zero-length waiters of one point, which do not overlap each other (found by the property above)', () => {
    replay(
      [
        { kind: 'lock', owner: 1, range: 0, mode: 'exclusive', wait: false },
        { kind: 'lock', owner: 5, range: 0, mode: 'exclusive', wait: true },
        { kind: 'lock', owner: 1, range: 5, mode: 'exclusive', wait: true },
        { kind: 'unlockHeld', pick: 0 },
        { kind: 'lock', owner: 5, range: 0, mode: 'shared', wait: false },
        { kind: 'lock', owner: 1, range: 5, mode: 'shared', wait: true },
        { kind: 'lock', owner: 1, range: 0, mode: 'exclusive', wait: false },
        { kind: 'unlockHeld', pick: 0 },
        { kind: 'unlockHeld', pick: 0 },
        { kind: 'lock', owner: 1, range: 0, mode: 'exclusive', wait: false },
        { kind: 'read', owner: 1, range: 0 },
        { kind: 'unlock', owner: 1, range: 0 },
        { kind: 'unlockHeld', pick: 0 },
      ],
      1,
    );
  });

  it('agrees while grants come from the head of one queue, many between two looks at it', () => {
    const table = new LockTable<number>();
    const reference = new ReferenceLockTable<number>();
    for (const subject of [table, reference]) {
      subject.tryLock(1, 0, 8192, 'exclusive');
      for (let index = 2; index <= 60; index += 1) subject.enqueue(index, 0, 8192, index % 7 === 0 ? 'shared' : 'exclusive', index);
    }
    for (let round = 1; round <= 600; round += 1) {
      const holder = reference.held()[0];
      if (holder === undefined) break;
      // Every holder queues again behind the others, so the queue never runs dry.
      for (const subject of [table, reference]) {
        expect(subject.tryLock(holder.owner + 1000, 0, 8192, 'exclusive')).toBe('conflict');
        subject.enqueue(holder.owner + 1000, 0, 8192, 'exclusive', holder.owner + 1000);
      }
      for (const lock of [...reference.held()]) expect(table.unlock(lock.owner, 0, 8192)).toEqual(reference.unlock(lock.owner, 0, 8192));
      if (round % 150 === 0) expect(table.cancel(round + 10)).toEqual(reference.cancel(round + 10));
      if (round % 97 === 0) expect(snapshot(table)).toEqual(snapshot(reference));
    }
    expect(snapshot(table)).toEqual(snapshot(reference));
  });

  it('refuses the same ranges as the reference', () => {
    const edge = fc.oneof(fc.integer({ min: -2, max: 2 }), fc.constantFrom(2 ** 53 - 1, 2 ** 53, 2 ** 52, 2 ** 64, 0.5, Number.NaN));
    fc.assert(fc.property(edge, edge, (offset, length) => isValidRange(offset, length) === referenceIsValidRange(offset, length)), { numRuns: 2_000 });
  });

  it('stops the grant pass early only where the reference grants nothing more (many waiters on one range)', () => {
    const table = new LockTable<number>();
    const reference = new ReferenceLockTable<number>();
    for (const subject of [table, reference]) {
      subject.tryLock(1, 0, 8192, 'exclusive');
      for (let index = 2; index <= 1000; index += 1) subject.enqueue(index, 0, 8192, index % 7 === 0 ? 'shared' : 'exclusive', index);
    }
    for (let round = 0; round < 1000; round += 1) {
      const holder = table.held()[0]!;
      expect(table.unlock(holder.owner, 0, 8192)).toEqual(reference.unlock(holder.owner, 0, 8192));
      expect(snapshot(table)).toEqual(snapshot(reference));
      if (table.held().length === 0) break;
    }
  });
});

import { describe, expect, it } from 'vitest';
import { LockTable } from './lock-table.js';

describe('LockTable (SMB byte-range lock semantics)', () => {
  it('makes the open the owner: two opens conflict, even of one client (smb2.lock.context)', () => {
    const table = new LockTable();
    expect(table.tryLock(1, 0, 10, 'exclusive')).toBe('granted');
    expect(table.tryLock(2, 0, 10, 'exclusive')).toBe('conflict');
    expect(table.tryLock(2, 5, 1, 'shared')).toBe('conflict');
  });

  it('lets others read and share a shared lock, but nobody writes it, the holder included', () => {
    const table = new LockTable();
    expect(table.tryLock(1, 0, 10, 'shared')).toBe('granted');
    expect(table.tryLock(2, 0, 10, 'shared')).toBe('granted');
    expect(table.canRead(2, 0, 10)).toBe(true);
    expect(table.canWrite(1, 0, 10)).toBe(false);
    expect(table.canWrite(2, 0, 1)).toBe(false);
    expect(table.tryLock(3, 9, 1, 'exclusive')).toBe('conflict');
  });

  it('forbids other opens to read or write an exclusive range, but not the holder', () => {
    const table = new LockTable();
    table.tryLock(1, 100, 10, 'exclusive');
    expect(table.canRead(1, 100, 10)).toBe(true);
    expect(table.canWrite(1, 100, 10)).toBe(true);
    expect(table.canRead(2, 109, 5)).toBe(false);
    expect(table.canWrite(2, 90, 11)).toBe(false);
    expect(table.canWrite(2, 90, 10)).toBe(true);
    expect(table.canRead(2, 110, 10)).toBe(true);
  });

  it('treats a zero-length range at N > 0 as the point between bytes N - 1 and N (MS-FSA 2.1.4.10, as Samba)', () => {
    const table = new LockTable();
    expect(table.tryLock(1, 0, 100, 'exclusive')).toBe('granted');
    expect(table.tryLock(2, 50, 0, 'exclusive')).toBe('conflict');
    expect(table.tryLock(2, 50, 0, 'shared')).toBe('conflict');
    expect(table.tryLock(1, 50, 0, 'exclusive')).toBe('conflict');
    expect(table.tryLock(2, 100, 0, 'exclusive')).toBe('granted');
    expect(table.tryLock(2, 0, 0, 'exclusive')).toBe('granted');
    // Held zero-length locks conflict the same way with what spans their point.
    expect(table.tryLock(2, 200, 0, 'exclusive')).toBe('granted');
    expect(table.tryLock(3, 150, 100, 'shared')).toBe('conflict');
    expect(table.canRead(3, 150, 100)).toBe(false);
    expect(table.canWrite(3, 199, 2)).toBe(false);
    expect(table.tryLock(3, 200, 100, 'exclusive')).toBe('granted');
    expect(table.tryLock(4, 200, 0, 'exclusive')).toBe('granted');
    // A zero-length read or write transfers nothing.
    expect(table.canRead(2, 50, 0)).toBe(true);
    expect(table.canWrite(2, 50, 0)).toBe(true);
  });

  it('treats ranges as inclusive, (0, 0) as never conflicting, past EOF as legal, overflow as invalid', () => {
    const table = new LockTable();
    expect(table.tryLock(1, 0, 10, 'exclusive')).toBe('granted');
    expect(table.tryLock(2, 10, 10, 'exclusive')).toBe('granted');
    expect(table.tryLock(3, 9, 1, 'exclusive')).toBe('conflict');
    expect(table.tryLock(3, 0, 0, 'exclusive')).toBe('granted');
    expect(table.tryLock(4, 2 ** 40, 1, 'exclusive')).toBe('granted');
    expect(table.tryLock(4, 2 ** 64 - 4096, 8192, 'exclusive')).toBe('invalid');
    expect(table.tryLock(4, -1, 2, 'exclusive')).toBe('invalid');
    // Past 2^53 numbers are not exact: 2^60 + 1 === 2^60, so such ranges are refused.
    expect(table.tryLock(5, 2 ** 60, 1, 'exclusive')).toBe('invalid');
  });

  it('stacks a shared lock on an own exclusive one (two unlocks), never two exclusive ones', () => {
    const table = new LockTable();
    expect(table.tryLock(1, 0, 10, 'exclusive')).toBe('granted');
    expect(table.tryLock(1, 0, 10, 'exclusive')).toBe('conflict');
    expect(table.tryLock(1, 0, 10, 'shared')).toBe('granted');
    // The exclusive lock goes first: others may now read but still not write or lock exclusively.
    expect(table.unlock(1, 0, 10)).toEqual([]);
    expect(table.canRead(2, 0, 10)).toBe(true);
    expect(table.tryLock(2, 0, 10, 'exclusive')).toBe('conflict');
    expect(table.unlock(1, 0, 10)).toEqual([]);
    expect(table.tryLock(2, 0, 10, 'exclusive')).toBe('granted');
  });

  it('requires unlock to name exactly a held range of the same open', () => {
    const table = new LockTable();
    table.tryLock(1, 0, 10, 'exclusive');
    expect(table.unlock(1, 0, 5)).toBeUndefined();
    expect(table.unlock(2, 0, 10)).toBeUndefined();
    expect(table.unlock(1, 0, 10)).toEqual([]);
    expect(table.unlock(1, 0, 10)).toBeUndefined();
  });

  it('serves waiters first in, first out, and lets a closed handle drop its locks and waiters', () => {
    const table = new LockTable<string>();
    table.tryLock(1, 0, 10, 'exclusive');
    table.enqueue(2, 0, 10, 'exclusive', 'two');
    table.enqueue(3, 0, 10, 'shared', 'three');
    table.enqueue(4, 0, 10, 'shared', 'four');
    expect(table.unlock(1, 0, 10)?.map((waiter) => waiter.token)).toEqual(['two']);
    const closed = table.releaseOwner(2);
    expect(closed.granted.map((waiter) => waiter.token)).toEqual(['three', 'four']);
    table.enqueue(5, 0, 10, 'exclusive', 'five');
    expect(table.releaseOwner(5).dropped.map((waiter) => waiter.token)).toEqual(['five']);
  });

  it('does not let a later waiter overtake an earlier overlapping one, and regrants on cancel', () => {
    const table = new LockTable<string>();
    table.tryLock(1, 0, 10, 'shared');
    table.enqueue(2, 0, 10, 'exclusive', 'writer');
    table.enqueue(3, 0, 10, 'shared', 'reader');
    // The reader would be compatible with the shared holder, but the writer came first.
    expect(table.queued().length).toBe(2);
    expect(table.cancel('writer')).toEqual({ cancelled: true, granted: [expect.objectContaining({ token: 'reader' })] });
    expect(table.cancel('writer').cancelled).toBe(false);
  });
});

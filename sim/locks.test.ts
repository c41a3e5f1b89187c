/**
 * Byte-range lock semantics of the simulated share, case by case: one or more tests per bullet of
 * cifs-nas-model.md section 1, driven through the engine's ports by virtual clients.
 */

import { describe, expect, it } from 'vitest';
import type { FileHandle, FileSystem } from '../engine/ports.js';
import { Call, CallFlag, type CallOwner, Operation, Status } from './protocol.js';
import type { ServerOpen } from './server.js';
import { at, bytes, elapsed, expectCode, testSimulation, text } from './test-support/harness.js';

const header = { offset: 0, length: 100 } as const;

async function twoOpens(fs: FileSystem): Promise<[FileHandle, FileHandle]> {
  const first = await fs.open('kernel', { create: true });
  await fs.write(first, 0, new Uint8Array(200));
  const second = await fs.open('kernel');
  return [first, second];
}

describe('section 1: the owner of a lock is the open (smb2.lock.context)', () => {
  it('two opens of one client conflict with each other', async () => {
    const simulation = testSimulation();
    let locks: ReturnType<typeof simulation.server.locks> = [];
    simulation.at(50, (sim) => {
      locks = sim.server.locks('kernel');
    });
    simulation.addClient('solo', async ({ fs, clock }) => {
      const [first, second] = await twoOpens(fs);
      await fs.lock(first, header);
      await expectCode(fs.lock(second, header), 'LOCK_NOT_GRANTED');
      await expectCode(fs.read(second, 0, 10), 'LOCK_CONFLICT');
      await expectCode(fs.unlock(second, header), 'RANGE_NOT_LOCKED');
      expect((await fs.read(first, 0, 10)).length).toBe(10);
      await at(clock, 100);
    });
    await simulation.run();
    expect(locks).toHaveLength(1);
    expect(locks[0]).toMatchObject({ client: 'solo', offset: 0, length: 100, mode: 'exclusive' });
  });

  it('two clients conflict the same way', async () => {
    const simulation = testSimulation();
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 10);
    });
    simulation.addClient('other', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('kernel');
      await expectCode(fs.lock(handle, header), 'LOCK_NOT_GRANTED');
    });
    let holders: string[] = [];
    simulation.at(4, (sim) => {
      holders = sim.server.locks().map((lock) => `${lock.client}:${lock.path}:${lock.openId}`);
    });
    await simulation.run();
    expect(holders).toEqual(['holder:kernel:1']);
    // A client that finishes ends its session: its opens close and its locks go.
    expect(simulation.server.locks()).toEqual([]);
  });
});

describe('section 1: exclusive and shared locks (MS-SMB2 2.2.26.1; smb2.lock.rw-*)', () => {
  it('exclusive: the holder reads and writes; other opens may not read, write or lock the range', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const [holder, other] = await twoOpens(fs);
      await fs.lock(holder, header, { mode: 'exclusive' });
      await fs.write(holder, 10, bytes('mine'));
      expect(text(await fs.read(holder, 10, 4))).toBe('mine');
      await expectCode(fs.read(other, 50, 10), 'LOCK_CONFLICT');
      await expectCode(fs.write(other, 99, bytes('x')), 'LOCK_CONFLICT');
      await expectCode(fs.lock(other, { offset: 99, length: 1 }, { mode: 'shared' }), 'LOCK_NOT_GRANTED');
      await expectCode(fs.lock(other, { offset: 50, length: 1 }, { mode: 'exclusive' }), 'LOCK_NOT_GRANTED');
      // Outside the range everything is allowed.
      await fs.write(other, 100, bytes('free'));
      expect(text(await fs.read(other, 100, 4))).toBe('free');
      await fs.lock(other, { offset: 100, length: 10 });
    });
    await simulation.run();
  });

  it('shared: others read and share it; nobody writes the range, the holder included', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const [holder, other] = await twoOpens(fs);
      await fs.lock(holder, header, { mode: 'shared' });
      expect((await fs.read(other, 0, 100)).length).toBe(100);
      await fs.lock(other, { offset: 50, length: 100 }, { mode: 'shared' });
      await expectCode(fs.write(holder, 0, bytes('x')), 'LOCK_CONFLICT');
      await expectCode(fs.write(other, 60, bytes('x')), 'LOCK_CONFLICT');
      await expectCode(fs.lock(other, { offset: 0, length: 1 }, { mode: 'exclusive' }), 'LOCK_NOT_GRANTED');
    });
    await simulation.run();
  });
});

describe('section 1: locks are mandatory and conflicts fail at once (smb2.lock.rw-*)', () => {
  it('a conflicting read or write fails after one round trip, without waiting for the unlock', async () => {
    const simulation = testSimulation();
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 50);
      await fs.unlock(handle, header);
      await at(clock, 60);
    });
    simulation.addClient('other', async ({ fs, clock }) => {
      await at(clock, 10);
      const handle = await fs.open('kernel');
      const start = elapsed(clock);
      await expectCode(fs.write(handle, 0, bytes('x')), 'LOCK_CONFLICT');
      // 0.1 ms there, 0.1 service, 0.1 back: no waiting for the lock at 50 ms.
      expect(elapsed(clock) - start).toBeCloseTo(0.3, 3);
      await expectCode(fs.read(handle, 0, 1), 'LOCK_CONFLICT');
      await at(clock, 55);
      await fs.write(handle, 0, bytes('x'));
    });
    await simulation.run();
  });
});

describe('section 1: STATUS_LOCK_NOT_GRANTED, also on repeats (smb2.lock.errorcode)', () => {
  it('answers every repeated conflicting request with LOCK_NOT_GRANTED', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const [holder, other] = await twoOpens(fs);
      await fs.lock(holder, header);
      for (let attempt = 0; attempt < 4; attempt += 1) {
        await expectCode(fs.lock(other, header), 'LOCK_NOT_GRANTED');
      }
      // The holder's own repeat of an exclusive lock is refused the same way.
      await expectCode(fs.lock(holder, header), 'LOCK_NOT_GRANTED');
    });
    await simulation.run();
  });
});

describe('section 1: ranges (MS-FSA 2.1.4.10, 2.1.5.8)', () => {
  it('is inclusive: offset 10 length 10 covers bytes 10 to 19 only', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const [holder, other] = await twoOpens(fs);
      await fs.lock(holder, { offset: 10, length: 10 });
      await fs.lock(other, { offset: 9, length: 1 });
      await fs.lock(other, { offset: 20, length: 1 });
      await expectCode(fs.lock(other, { offset: 19, length: 1 }), 'LOCK_NOT_GRANTED');
      await expectCode(fs.lock(other, { offset: 5, length: 6 }), 'LOCK_NOT_GRANTED');
      await fs.write(other, 20, bytes('a'));
      await expectCode(fs.write(other, 19, bytes('a')), 'LOCK_CONFLICT');
    });
    await simulation.run();
  });

  it('a zero-length lock at 0 never conflicts; at N it is the point between bytes N - 1 and N (MS-FSA 2.1.4.10, as Samba)', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const [holder, other] = await twoOpens(fs);
      await fs.lock(holder, { offset: 0, length: 0 });
      await fs.lock(other, { offset: 0, length: 0 });
      await fs.lock(other, { offset: 0, length: 10 });
      await expectCode(fs.lock(holder, { offset: 5, length: 0 }), 'LOCK_NOT_GRANTED');
      await fs.lock(holder, { offset: 10, length: 0 });
      await expectCode(fs.read(other, 5, 10), 'LOCK_CONFLICT');
      await fs.write(holder, 20, bytes('ok'));
      // A zero-length lock is still a lock to unlock exactly.
      await fs.unlock(holder, { offset: 0, length: 0 });
      await expectCode(fs.unlock(holder, { offset: 0, length: 0 }), 'RANGE_NOT_LOCKED');
      await fs.unlock(holder, { offset: 10, length: 0 });
      expect((await fs.read(other, 5, 10)).length).toBe(10);
    });
    await simulation.run();
  });

  it('locking past the end of the file is legal', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const handle = await fs.open('empty', { create: true });
      await fs.lock(handle, { offset: 1_000_000_000, length: 4096 });
      await fs.lock(handle, { offset: 2 ** 52, length: 1 });
    });
    await simulation.run();
    expect(simulation.server.attributes('empty')?.size).toBe(0);
  });

  it('a range past the exact-number bound is INVALID_LOCK_RANGE (SMB: 2^64; here 2^53, see lock-table.ts)', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const handle = await fs.open('f', { create: true });
      await fs.lock(handle, { offset: 2 ** 52, length: 2 ** 52 - 1 });
      await expectCode(fs.lock(handle, { offset: 2 ** 52, length: 2 ** 52 }), 'INVALID_LOCK_RANGE');
      await expectCode(fs.lock(handle, { offset: 2 ** 63, length: 2 ** 63 }), 'INVALID_LOCK_RANGE');
      await expectCode(fs.lock(handle, { offset: 2 ** 64, length: 1 }), 'INVALID_LOCK_RANGE');
      await expectCode(fs.lock(handle, { offset: -1, length: 1 }), 'INVALID_ARGUMENT');
      await expectCode(fs.lock(handle, { offset: 1.5, length: 1 }), 'INVALID_ARGUMENT');
    });
    await simulation.run();
  });
});

describe('section 1: stacking (MS-FSA 2.1.5.9; smb2.lock.stacking)', () => {
  it('refuses a second exclusive lock of the same open on the same range', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const handle = await fs.open('f', { create: true });
      await fs.lock(handle, header);
      await expectCode(fs.lock(handle, header), 'LOCK_NOT_GRANTED');
      await expectCode(fs.lock(handle, { offset: 50, length: 100 }), 'LOCK_NOT_GRANTED');
      await fs.unlock(handle, header);
      await expectCode(fs.unlock(handle, header), 'RANGE_NOT_LOCKED');
    });
    await simulation.run();
  });

  it('stacks a shared lock on its own exclusive one, which then needs two unlocks', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const [holder, other] = await twoOpens(fs);
      await fs.lock(holder, header, { mode: 'exclusive' });
      await fs.lock(holder, header, { mode: 'shared' });
      await expectCode(fs.lock(other, header, { mode: 'shared' }), 'LOCK_NOT_GRANTED');
      await fs.unlock(holder, header);
      // The exclusive lock went first (MS-FSA order): the shared one remains.
      await fs.read(other, 0, 10);
      await fs.lock(other, header, { mode: 'shared' });
      await fs.unlock(other, header);
      await expectCode(fs.write(other, 0, bytes('x')), 'LOCK_CONFLICT');
      await expectCode(fs.write(holder, 0, bytes('x')), 'LOCK_CONFLICT');
      await fs.unlock(holder, header);
      await expectCode(fs.unlock(holder, header), 'RANGE_NOT_LOCKED');
      await fs.lock(other, header, { mode: 'exclusive' });
    });
    await simulation.run();
  });

  it('refuses an exclusive lock on top of its own shared lock', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const handle = await fs.open('f', { create: true });
      await fs.lock(handle, header, { mode: 'shared' });
      await fs.lock(handle, header, { mode: 'shared' });
      await expectCode(fs.lock(handle, header, { mode: 'exclusive' }), 'LOCK_NOT_GRANTED');
      await fs.unlock(handle, header);
      await fs.unlock(handle, header);
      await fs.lock(handle, header, { mode: 'exclusive' });
    });
    await simulation.run();
  });
});

describe('section 1: blocking requests (MS-SMB2 3.3.5.14.2; smb2.lock.async, cancel)', () => {
  it('a waiting request is granted when the range frees', async () => {
    const simulation = testSimulation();
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 20);
      await fs.unlock(handle, header);
      await at(clock, 40);
    });
    simulation.addClient('waiter', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header, { waitMs: 1000 });
      // Granted at the unlock's arrival (20.1 ms) and told 0.15 ms later.
      expect(elapsed(clock)).toBeCloseTo(20.1 + 0.15, 3);
    });
    await simulation.run();
  });

  /** The order in which waiters (name, when it asks, ms) are granted the lock a holder frees at 50 ms. */
  async function grantOrder(seed: number, server: { randomLockWaiterOrder?: boolean }, waiters: ReadonlyArray<readonly [string, number]>): Promise<string[]> {
    const simulation = testSimulation({ seed, server });
    const order: string[] = [];
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 50);
      await fs.unlock(handle, header);
    });
    for (const [name, startMs] of waiters) {
      simulation.addClient(name, async ({ fs, clock }) => {
        await at(clock, startMs);
        const handle = await fs.open('kernel');
        await fs.lock(handle, header, { waitMs: 10_000 });
        order.push(name);
        await at(clock, elapsed(clock) + 5);
        await fs.unlock(handle, header);
        await fs.close(handle);
      });
    }
    await simulation.run();
    return order;
  }

  it('serves waiters first in, first out', async () => {
    // Added in another order than they ask: the order of their requests decides.
    expect(await grantOrder(1, {}, [['third', 12], ['first', 10], ['second', 11]])).toEqual(['first', 'second', 'third']);
  });

  it('with randomLockWaiterOrder (Samba\'s waiters race) grants every waiter once, in an order drawn from the seed', async () => {
    // Eight waiters, 1 ms apart (w0 first).
    const arrival = ['w0', 'w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7'];
    const waiters = arrival.map((name, index) => [name, 10 + index] as const);
    expect(await grantOrder(1, {}, waiters)).toEqual(arrival);
    const orders: string[][] = [];
    for (let seed = 1; seed <= 6; seed += 1) {
      const order = await grantOrder(seed, { randomLockWaiterOrder: true }, waiters);
      expect([...order].sort()).toEqual(arrival);
      expect(await grantOrder(seed, { randomLockWaiterOrder: true }, waiters)).toEqual(order);
      orders.push(order);
    }
    // Not first in, first out, and not one fixed other order either: the first of eight is
    // another waiter than w0 in most seeds (7 in 8 chance each).
    expect(orders.filter((order) => order[0] !== 'w0').length).toBeGreaterThanOrEqual(3);
    expect(new Set(orders.map((order) => order.join())).size).toBeGreaterThanOrEqual(4);
  });

  it('has no server-side timeout: an unbounded wait lasts until the release', async () => {
    const simulation = testSimulation();
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 3_600_000);
      await fs.close(handle);
    });
    simulation.addClient('waiter', async ({ fs, clock }) => {
      await at(clock, 1);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header, { waitMs: Number.POSITIVE_INFINITY });
      expect(elapsed(clock)).toBeGreaterThan(3_600_000);
    });
    await simulation.run();
  });

  it("the client's bound cancels the wait: LOCK_NOT_GRANTED, and the server forgets the waiter", async () => {
    const simulation = testSimulation();
    let waitersDuringWait = 0;
    let waitersAfter = -1;
    simulation.at(30, (sim) => {
      waitersDuringWait = sim.server.lockWaiters('kernel').length;
    });
    simulation.at(200, (sim) => {
      waitersAfter = sim.server.lockWaiters('kernel').length;
    });
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 300);
    });
    simulation.addClient('waiter', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('kernel');
      const start = elapsed(clock);
      await expectCode(fs.lock(handle, header, { waitMs: 100 }), 'LOCK_NOT_GRANTED');
      // The bound, plus the cancel's trip to the server and the answer's trip back (with the
      // lock's 0.05 ms service time).
      expect(elapsed(clock) - start).toBeCloseTo(100 + 0.1 + 0.05 + 0.1, 3);
    });
    await simulation.run();
    expect(waitersDuringWait).toBe(1);
    expect(waitersAfter).toBe(0);
  });

  it('at the server, a cancel ends the request with STATUS_CANCELLED and a closed handle with STATUS_RANGE_NOT_LOCKED', async () => {
    const simulation = testSimulation();
    const server = simulation.server;
    const completed: { call: Call; status: Status }[] = [];
    const owner: CallOwner = {
      serverCompleted(call: Call): void {
        completed.push({ call, status: call.status });
      },
    };
    const session = server.connect('direct', 0);
    const request = (operation: Operation, fill: (call: Call) => void): Call => {
      const call = new Call(operation, owner, session);
      fill(call);
      return call;
    };
    const created = request(Operation.open, (call) => {
      call.path = 'f';
      call.flags = CallFlag.create;
    });
    expect(server.execute(created)).toBe(Status.success);
    const holder = created.value as ServerOpen;
    const secondOpen = request(Operation.open, (call) => {
      call.path = 'f';
    });
    server.execute(secondOpen);
    const waiterOpen = secondOpen.value as ServerOpen;
    const lockCall = (open: ServerOpen, blocking: boolean): Call =>
      request(Operation.lock, (call) => {
        call.target = open;
        call.position = 0;
        call.length = 10;
        call.flags = blocking ? CallFlag.blocking : 0;
      });
    expect(server.execute(lockCall(holder, false))).toBe(Status.success);
    const cancelled = lockCall(waiterOpen, true);
    expect(server.execute(cancelled)).toBe(Status.pending);
    server.cancelLock(cancelled);
    expect(completed.map((entry) => entry.status)).toEqual([Status.cancelled]);

    const orphaned = lockCall(waiterOpen, true);
    expect(server.execute(orphaned)).toBe(Status.pending);
    const close = request(Operation.close, (call) => {
      call.target = waiterOpen;
    });
    expect(server.execute(close)).toBe(Status.success);
    expect(completed.map((entry) => entry.status)).toEqual([Status.cancelled, Status.rangeNotLocked]);
    expect(server.lockWaiters()).toEqual([]);
    server.checkInvariants();
  });
});

describe('section 1: unlock must match exactly (smb2.lock.unlock)', () => {
  it('answers RANGE_NOT_LOCKED to a different offset, length, sub-range or open', async () => {
    const simulation = testSimulation();
    simulation.addClient('solo', async ({ fs }) => {
      const [holder, other] = await twoOpens(fs);
      await fs.lock(holder, { offset: 10, length: 10 });
      await expectCode(fs.unlock(holder, { offset: 10, length: 9 }), 'RANGE_NOT_LOCKED');
      await expectCode(fs.unlock(holder, { offset: 11, length: 9 }), 'RANGE_NOT_LOCKED');
      await expectCode(fs.unlock(holder, { offset: 0, length: 100 }), 'RANGE_NOT_LOCKED');
      await expectCode(fs.unlock(other, { offset: 10, length: 10 }), 'RANGE_NOT_LOCKED');
      await fs.unlock(holder, { offset: 10, length: 10 });
      await expectCode(fs.unlock(holder, { offset: 10, length: 10 }), 'RANGE_NOT_LOCKED');
    });
    await simulation.run();
  });
});

describe('section 1: closing a handle releases its locks (LockFileEx remarks)', () => {
  it('frees the range for others, and grants a waiter', async () => {
    const simulation = testSimulation();
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await fs.lock(handle, { offset: 200, length: 10 }, { mode: 'shared' });
      await at(clock, 20);
      await fs.close(handle);
      await expectCode(fs.unlock(handle, header), 'CLOSED_HANDLE');
      await at(clock, 40);
    });
    simulation.addClient('waiter', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header, { waitMs: 1000 });
      expect(elapsed(clock)).toBeLessThan(21);
      await fs.lock(handle, { offset: 200, length: 10 }, { mode: 'exclusive' });
    });
    await simulation.run();
  });
});

describe('section 1: lock sequence numbers (MS-SMB2 3.3.5.14)', () => {
  it('a lock replayed after a reconnect on a durable handle applies once', async () => {
    const simulation = testSimulation();
    // Drop the session after the lock reached the server (0.1 ms) but before its reply (0.25 ms).
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true, durable: true });
      await at(clock, 10);
      await fs.lock(handle, header);
      // The reply was lost and the request replayed with its sequence number: one lock only.
      await fs.unlock(handle, header);
      await expectCode(fs.unlock(handle, header), 'RANGE_NOT_LOCKED');
    });
    simulation.at(10.2, (sim) => sim.dropSession('holder'));
    await simulation.run();
    const kinds = simulation.trace.window().filter((record) => record.operation === 'lock').map((record) => record.kind);
    expect(kinds).toEqual(['apply', 'lost', 'apply', 'reply']);
  });
});

describe('what the server counts about locks (the check reports it as exercised)', () => {
  it('counts requests that found the range taken, and locks lost with their session, per path', async () => {
    const simulation = testSimulation();
    simulation.addClient('crasher', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 100); // crashed at 20 while holding the lock
    });
    simulation.addClient('dropped', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header, { waitMs: 1_000 }); // waits for the crasher: a conflict; granted at its crash
      await at(clock, 40); // its session drops at 30 while it holds the lock
      await expectCode(fs.unlock(handle, header), 'CLOSED_HANDLE');
    });
    simulation.addClient('polite', async ({ fs, clock }) => {
      await at(clock, 50);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header);
      await fs.unlock(handle, header);
      await fs.close(handle);
      await at(clock, 60); // crashed at 55 holding nothing
    });
    simulation.at(20, (sim) => sim.crash('crasher'));
    simulation.at(30, (sim) => sim.dropSession('dropped'));
    simulation.at(55, (sim) => sim.crash('polite'));
    const grants: string[] = [];
    simulation.server.onLockGranted('kernel', (grant) => grants.push(`${grant.timeMs.toFixed(1)} ${grant.client} ${grant.offset}+${grant.length} ${grant.mode}`));
    await simulation.run();
    // Granted at once (crasher, polite) and to a waiter when the crash released the lock (dropped).
    expect(grants.map((grant) => grant.replace(/^[\d.]+ /, ''))).toEqual(['crasher 0+100 exclusive', 'dropped 0+100 exclusive', 'polite 0+100 exclusive']);
    expect(grants[1]).toMatch(/^20\.0 dropped/);
    expect(simulation.server.lockConflicts('kernel')).toBe(1);
    expect(simulation.server.locksLost('kernel')).toBe(2);
    expect(simulation.server.locksLost('other')).toBe(0);
  });
});

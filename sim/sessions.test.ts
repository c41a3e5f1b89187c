/**
 * Sessions, handles and failover of the simulated share: cifs-nas-model.md section 2, plus the
 * crash / restart controls of virtual clients.
 */

import { describe, expect, it } from 'vitest';
import { isNasqError, type NasqError } from '../engine/errors.js';
import type { FileHandle } from '../engine/ports.js';
import { at, bytes, elapsed, expectCode, testSimulation, text } from './test-support/harness.js';

const header = { offset: 0, length: 100 } as const;

describe('section 2: a dropped session releases its locks while the client believes it holds them (MS-SMB2 3.3.7.1)', () => {
  it('another client takes the lock; the old holder learns only when its next call fails', async () => {
    const simulation = testSimulation();
    const events: string[] = [];
    simulation.addClient('old-holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      events.push(`old-holder locked at ${elapsed(clock).toFixed(2)}`);
      // Believing it holds the header lock, it works slowly; its session drops at 10 ms.
      await at(clock, 30);
      await expectCode(fs.write(handle, 0, bytes('stale header')), 'CLOSED_HANDLE');
      events.push('old-holder write failed: CLOSED_HANDLE');
      await expectCode(fs.unlock(handle, header), 'CLOSED_HANDLE');
      // Path calls reconnect transparently with a new session (after the newcomer is done).
      await at(clock, 45);
      expect(text(await fs.readFile('kernel')).startsWith('new header')).toBe(true);
    });
    simulation.addClient('newcomer', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('kernel');
      await expectCode(fs.lock(handle, header), 'LOCK_NOT_GRANTED');
      await at(clock, 15);
      await fs.lock(handle, header);
      events.push(`newcomer locked at ${elapsed(clock).toFixed(2)}`);
      await fs.write(handle, 0, bytes('new header'));
      await at(clock, 40);
    });
    let holdersAfterDrop: string[] = [];
    simulation.at(10, (sim) => sim.dropSession('old-holder'));
    simulation.at(20, (sim) => {
      holdersAfterDrop = sim.server.locks('kernel').map((lock) => lock.client);
    });
    await simulation.run();
    expect(events).toEqual(['old-holder locked at 0.75', 'newcomer locked at 15.25', 'old-holder write failed: CLOSED_HANDLE']);
    expect(holdersAfterDrop).toEqual(['newcomer']);
  });

  it('the call in flight when the session drops fails with SHARE_UNAVAILABLE, after sessionLossNoticeMs', async () => {
    const simulation = testSimulation({ sessionLossNoticeMs: 120_000 });
    simulation.addClient('client', async ({ fs, clock }) => {
      const handle = await fs.open('f', { create: true });
      await at(clock, 10);
      await expectCode(fs.write(handle, 0, bytes('lost')), 'SHARE_UNAVAILABLE');
      // The failure comes when the client gives up on the dead server (~2 echo intervals).
      expect(elapsed(clock)).toBeCloseTo(10.05 + 120_000, 3);
    });
    // Drop while the write is on the wire (it arrives at 10.1 ms): it never reaches the server.
    simulation.at(10.05, (sim) => sim.dropSession('client'));
    await simulation.run();
    expect(simulation.server.contents('f')?.length).toBe(0);
  });

  it('a waiting lock request dies with the session and frees its place in the queue', async () => {
    const simulation = testSimulation();
    const order: string[] = [];
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true });
      await fs.lock(handle, header);
      await at(clock, 50);
      await fs.unlock(handle, header);
      await at(clock, 60);
    });
    simulation.addClient('dropped-waiter', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('kernel');
      await expectCode(fs.lock(handle, header, { waitMs: 1000 }), 'SHARE_UNAVAILABLE');
      order.push('dropped-waiter gave up');
    });
    simulation.addClient('second-waiter', async ({ fs, clock }) => {
      await at(clock, 6);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header, { waitMs: 1000 });
      order.push(`second-waiter granted at ${elapsed(clock).toFixed(2)}`);
    });
    simulation.at(20, (sim) => sim.dropSession('dropped-waiter'));
    await simulation.run();
    expect(order).toEqual(['dropped-waiter gave up', 'second-waiter granted at 50.25']);
  });
});

describe('section 2: durable handles (MS-SMB2 3.3.2.2; Samba smb2_create.c)', () => {
  it('survive a disconnect within the window: the locks stay held and the client carries on', async () => {
    const simulation = testSimulation({ server: { durableTimeoutMs: 60_000 } });
    simulation.addClient('durable-holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true, durable: true });
      await fs.lock(handle, header);
      await at(clock, 30_000);
      // Reconnects (new session), reclaims the durable handle with its lock, goes on.
      await fs.write(handle, 0, bytes('still mine'));
      await fs.unlock(handle, header);
    });
    simulation.addClient('other', async ({ fs, clock }) => {
      await at(clock, 1000);
      const handle = await fs.open('kernel');
      // During the disconnect the lock is still held, by a disconnected handle.
      await expectCode(fs.lock(handle, header), 'LOCK_NOT_GRANTED');
      await fs.lock(handle, header, { waitMs: 60_000 });
      expect(elapsed(clock)).toBeGreaterThan(30_000);
      expect(text(await fs.read(handle, 0, 10))).toBe('still mine');
    });
    let during: string[] = [];
    simulation.at(10, (sim) => sim.dropSession('durable-holder'));
    simulation.at(500, (sim) => {
      during = sim.server.locks('kernel').map((lock) => `${lock.client}:${lock.handleState}`);
    });
    await simulation.run();
    expect(during).toEqual(['durable-holder:disconnected']);
    const operations = simulation.trace.window().map((record) => record.operation);
    expect(operations).toContain('durableReclaim');
  });

  it('lose their locks when the window passes: the old holder gets CLOSED_HANDLE', async () => {
    const simulation = testSimulation({ server: { durableTimeoutMs: 60_000 } });
    simulation.addClient('durable-holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true, durable: true });
      await fs.lock(handle, header);
      await at(clock, 90_000);
      await expectCode(fs.write(handle, 0, bytes('too late')), 'CLOSED_HANDLE');
    });
    simulation.addClient('other', async ({ fs, clock }) => {
      await at(clock, 1000);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header, { waitMs: 120_000 });
      // Granted when the durable handle expired, 60 s after the drop at 10 ms.
      expect(elapsed(clock)).toBeCloseTo(60_010 + 0.15, 3);
      await at(clock, 100_000);
    });
    simulation.at(10, (sim) => sim.dropSession('durable-holder'));
    await simulation.run();
    expect(simulation.trace.window().some((record) => record.operation === 'durableExpire')).toBe(true);
  });

  it('are purged early by another open when purgeDisconnectedOnOpen is on', async () => {
    const simulation = testSimulation({ server: { purgeDisconnectedOnOpen: true } });
    simulation.addClient('durable-holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true, durable: true });
      await fs.lock(handle, header);
      await at(clock, 5000);
      await expectCode(fs.write(handle, 0, bytes('purged')), 'CLOSED_HANDLE');
    });
    simulation.addClient('other', async ({ fs, clock }) => {
      await at(clock, 1000);
      const handle = await fs.open('kernel');
      await fs.lock(handle, header);
      await at(clock, 6000);
    });
    simulation.at(10, (sim) => sim.dropSession('durable-holder'));
    await simulation.run();
    expect(simulation.trace.window().some((record) => record.operation === 'durablePurge')).toBe(true);
  });

  it("keep their locks across a disconnect only as their file's sole open under Samba's rule (durableLocksNeedSoleOpen)", async () => {
    const run = async (otherOpensFirst: boolean, otherOpensLater: boolean): Promise<string> => {
      const simulation = testSimulation({ server: { durableLocksNeedSoleOpen: true } });
      let outcome = '';
      simulation.addClient('durable-holder', async ({ fs, clock }) => {
        await at(clock, 5);
        const handle = await fs.open('kernel', { create: true, durable: true });
        await fs.lock(handle, header);
        await at(clock, 5000);
        try {
          await fs.write(handle, 0, bytes('mine'));
          outcome = 'kept';
        } catch (error) {
          outcome = (error as NasqError).code;
        }
      });
      simulation.addClient('other', async ({ fs, clock }) => {
        if (!otherOpensFirst) await at(clock, otherOpensLater ? 8 : 1000);
        const handle = await fs.open('kernel', { create: true });
        await at(clock, 2000);
        const granted = await fs.lock(handle, header, { waitMs: 0 }).then(
          () => true,
          () => false,
        );
        if (granted) await fs.unlock(handle, header);
        await at(clock, 6000);
      });
      simulation.at(10, (sim) => sim.dropSession('durable-holder'));
      await simulation.run();
      return outcome;
    };
    // The only open at the drop, and since it was opened: kept with its lock, reclaimed.
    expect(await run(false, false)).toBe('kept');
    // Another open was there first, or came while it was open: the drop closes it, its lock goes.
    expect(await run(true, false)).toBe('CLOSED_HANDLE');
    expect(await run(false, true)).toBe('CLOSED_HANDLE');
  });

  it('are not granted when the server does not offer them (durableHandles: false)', async () => {
    const simulation = testSimulation({ server: { durableHandles: false } });
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true, durable: true });
      await fs.lock(handle, header);
      await at(clock, 100);
      await expectCode(fs.write(handle, 0, bytes('x')), 'CLOSED_HANDLE');
    });
    simulation.at(10, (sim) => sim.dropSession('holder'));
    await simulation.run();
  });
});

describe('crashes and restarts of virtual clients', () => {
  it('a crash ends the client at its await; the effect may have happened while the reply is lost', async () => {
    const simulation = testSimulation();
    let resumedAfterWrite = false;
    simulation.addClient('victim', async ({ fs, clock }) => {
      const handle = await fs.open('f', { create: true });
      await at(clock, 10);
      await fs.write(handle, 0, bytes('applied'));
      resumedAfterWrite = true;
    });
    // The write arrives at 10.1 ms and its reply would come at 10.3 ms: crash in between.
    simulation.at(10.2, (sim) => sim.crash('victim'));
    const { stats } = await simulation.run();
    expect(resumedAfterWrite).toBe(false);
    expect(text(simulation.server.contents('f'))).toBe('applied');
    expect(simulation.client('victim').status).toBe('crashed');
    expect(stats.clients.crashed).toBe(1);
    const writes = simulation.trace.window().filter((record) => record.operation === 'write').map((record) => record.kind);
    expect(writes).toEqual(['apply', 'lost']);
  });

  it("a crashed client's locks go with its session, at once or after dropSessionAfterMs", async () => {
    for (const dropSessionAfterMs of [0, 5000]) {
      const simulation = testSimulation();
      let grantedAtMs = 0;
      simulation.addClient('victim', async ({ fs, clock }) => {
        const handle = await fs.open('kernel', { create: true });
        await fs.lock(handle, header);
        await at(clock, 1_000_000);
      });
      simulation.addClient('survivor', async ({ fs, clock }) => {
        await at(clock, 5);
        const handle = await fs.open('kernel');
        await fs.lock(handle, header, { waitMs: 60_000 });
        grantedAtMs = elapsed(clock);
      });
      simulation.at(10, (sim) => sim.crash('victim', { dropSessionAfterMs }));
      await simulation.run();
      expect(grantedAtMs).toBeCloseTo(10 + dropSessionAfterMs + 0.15, 3);
    }
  });

  it('a restart runs a fresh main with a new session; durable handles of the dead one are orphans', async () => {
    const simulation = testSimulation({ server: { durableTimeoutMs: 2000 } });
    const incarnations: number[] = [];
    simulation.addClient('phoenix', async ({ fs, clock }, context) => {
      incarnations.push(context.incarnation);
      const handle = await fs.open('kernel', { create: true, durable: true });
      if (context.incarnation === 1) {
        await fs.lock(handle, header);
        await at(clock, 1_000_000);
        return;
      }
      // The old incarnation's durable handle still holds the lock until it expires.
      await expectCode(fs.lock(handle, header), 'LOCK_NOT_GRANTED');
      await fs.lock(handle, header, { waitMs: 10_000 });
      expect(elapsed(clock)).toBeCloseTo(10 + 2000 + 0.15, 3);
      return 'reborn';
    });
    simulation.at(10, (sim) => {
      sim.crash('phoenix');
      sim.restart('phoenix', undefined, { afterMs: 100 });
    });
    await simulation.run();
    expect(incarnations).toEqual([1, 2]);
    expect(simulation.client('phoenix').status).toBe('finished');
    expect(simulation.client('phoenix').result).toBe('reborn');
  });

  it('an engine-style holder notices a lost session and never writes with a stale lock', async () => {
    // What the engine is expected to do: treat CLOSED_HANDLE / SHARE_UNAVAILABLE as "the lock may
    // be someone else's now", reopen, and lock again before touching the header.
    const simulation = testSimulation();
    const log: string[] = [];
    const withHeaderLock = async (fs: import('../engine/ports.js').FileSystem, name: string, body: (handle: FileHandle) => Promise<void>): Promise<void> => {
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const handle = await fs.open('kernel', { create: true });
        try {
          await fs.lock(handle, header, { waitMs: 10_000 });
          await body(handle);
          await fs.unlock(handle, header);
          await fs.close(handle);
          return;
        } catch (error) {
          if (!isNasqError(error, 'CLOSED_HANDLE', 'SHARE_UNAVAILABLE')) throw error;
          log.push(`${name} lost its session (${error.code}), retrying`);
        }
      }
      throw new Error('gave up');
    };
    simulation.addClient('a', async ({ fs, clock }) => {
      await withHeaderLock(fs, 'a', async (handle) => {
        await at(clock, 20);
        await fs.write(handle, 0, bytes('a'));
        log.push('a wrote');
      });
    });
    simulation.addClient('b', async ({ fs, clock }) => {
      await at(clock, 5);
      await withHeaderLock(fs, 'b', async (handle) => {
        await fs.write(handle, 0, bytes('b'));
        log.push('b wrote');
        await at(clock, 30);
      });
    });
    simulation.at(10, (sim) => sim.dropSession('a'));
    await simulation.run();
    expect(log).toEqual(['b wrote', 'a lost its session (CLOSED_HANDLE), retrying', 'a wrote']);
    expect(text(simulation.server.contents('kernel'))).toBe('a');
  });
});

describe('section 2: repeated drops', () => {
  it('a durable handle survives two drops in a row, the second before the first reclaim arrived', async () => {
    const simulation = testSimulation();
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('kernel', { create: true, durable: true });
      await fs.lock(handle, header);
      await at(clock, 10);
      // Reconnects at 10 ms (its reclaim reaches the server at 11.1 ms), dropped again at 10.5 ms.
      await expectCode(fs.write(handle, 0, bytes('x')), 'SHARE_UNAVAILABLE');
      await fs.write(handle, 0, bytes('y'));
      await fs.unlock(handle, header);
    });
    simulation.at(5, (sim) => sim.dropSession('holder'));
    simulation.at(10.5, (sim) => sim.dropSession('holder'));
    await simulation.run();
    expect(text(simulation.server.contents('kernel'))).toBe('y');
  });
});

/**
 * Caching, visibility and notification of the simulated share: cifs-nas-model.md section 3
 * (CHANGE_NOTIFY queueing and overflow, the actimeo attribute cache, timestamp granularity).
 */

import { describe, expect, it } from 'vitest';
import { at, bytes, elapsed, expectCode, testSimulation } from './test-support/harness.js';
import { defaultEpochMs } from './server.js';

describe('CHANGE_NOTIFY (MS-SMB2 2.2.35; smb2.notify.*)', () => {
  it('works on directories only: watching a file is INVALID_ARGUMENT (STATUS_INVALID_PARAMETER)', async () => {
    const simulation = testSimulation();
    simulation.addClient('client', async ({ fs }) => {
      await fs.mkdir('queue');
      await fs.writeFile('queue/notify', bytes(''));
      await expectCode(fs.watch('queue/notify', { lastWrite: true }), 'INVALID_ARGUMENT');
      await expectCode(fs.watch('missing', { lastWrite: true }), 'NOT_FOUND');
      await expectCode(fs.watch('queue', {}), 'INVALID_ARGUMENT');
      await fs.watch('queue', { lastWrite: true });
    });
    await simulation.run();
  });

  it('wakes a waiting receiver when the notification file gets an explicit mtime', async () => {
    const simulation = testSimulation();
    simulation.addClient('receiver', async ({ fs, clock }) => {
      await fs.mkdir('queue');
      await fs.writeFile('queue/notify', bytes(''));
      const watch = await fs.watch('queue', { lastWrite: true });
      const result = await clock.waitForChange(watch, clock.now() + 10_000);
      expect(result).toBe('changed');
      // The sender's setTimes reaches the server at 20.1 ms; the notify reply takes 0.1 ms.
      expect(elapsed(clock)).toBeCloseTo(20.2, 3);
    });
    simulation.addClient('sender', async ({ fs, clock }) => {
      await at(clock, 20);
      await fs.setTimes('queue/notify', clock.now(), clock.now());
    });
    await simulation.run();
  });

  it('times out at the deadline when nothing changes', async () => {
    const simulation = testSimulation();
    simulation.addClient('receiver', async ({ fs, clock }) => {
      await fs.mkdir('queue');
      const watch = await fs.watch('queue', { lastWrite: true, size: true, fileName: true });
      const deadline = clock.now() + 50;
      expect(await clock.waitForChange(watch, deadline)).toBe('timeout');
      expect(clock.now()).toBeCloseTo(deadline, 3);
      // A deadline already past still asks the server once (changes queued meanwhile count).
      expect(await clock.waitForChange(watch, clock.now())).toBe('timeout');
    });
    await simulation.run();
  });

  it('filters: size changes and explicit mtimes notify; a plain in-place write does not (Samba)', async () => {
    for (const notifyOnPlainWrite of [false, true]) {
      const simulation = testSimulation({ server: { notifyOnPlainWrite } });
      const results: string[] = [];
      simulation.addClient('client', async ({ fs, clock }) => {
        await fs.mkdir('queue');
        const handle = await fs.open('queue/notify', { create: true });
        await fs.write(handle, 0, bytes('0123'));
        const sizeWatch = await fs.watch('queue', { size: true });
        const writeWatch = await fs.watch('queue', { lastWrite: true });
        // SMB arms a watch with its first request: these report what comes after.
        await clock.waitForChange(sizeWatch, clock.now());
        await clock.waitForChange(writeWatch, clock.now());
        const check = async (label: string): Promise<void> => {
          const size = await clock.waitForChange(sizeWatch, clock.now());
          const lastWrite = await clock.waitForChange(writeWatch, clock.now());
          results.push(`${label}: size ${size}, lastWrite ${lastWrite}`);
        };
        await fs.write(handle, 0, bytes('abcd'));
        await check('in-place write');
        await fs.write(handle, 4, bytes('e'));
        await check('growing write');
        await fs.setTimes('queue/notify', clock.now(), clock.now());
        await check('setTimes');
        await fs.truncate(handle, 1);
        await check('truncate');
      });
      await simulation.run();
      expect(results).toEqual([
        `in-place write: size timeout, lastWrite ${notifyOnPlainWrite ? 'changed' : 'timeout'}`,
        `growing write: size changed, lastWrite ${notifyOnPlainWrite ? 'changed' : 'timeout'}`,
        'setTimes: size timeout, lastWrite changed',
        `truncate: size changed, lastWrite ${notifyOnPlainWrite ? 'changed' : 'timeout'}`,
      ]);
    }
  });

  it('file names: create, rename and unlink notify the directory, not its parent (no tree watch)', async () => {
    const simulation = testSimulation();
    simulation.addClient('client', async ({ fs, clock }) => {
      await fs.mkdir('queue/bodies', { recursive: true });
      const bodies = await fs.watch('queue/bodies', { fileName: true });
      const queue = await fs.watch('queue', { fileName: true });
      expect(await clock.waitForChange(bodies, clock.now())).toBe('timeout');
      expect(await clock.waitForChange(queue, clock.now())).toBe('timeout');
      await fs.writeFile('queue/bodies/tmp', bytes('body'));
      expect(await clock.waitForChange(bodies, clock.now())).toBe('changed');
      await fs.rename('queue/bodies/tmp', 'queue/bodies/1');
      expect(await clock.waitForChange(bodies, clock.now())).toBe('changed');
      await fs.unlink('queue/bodies/1');
      expect(await clock.waitForChange(bodies, clock.now())).toBe('changed');
      expect(await clock.waitForChange(bodies, clock.now())).toBe('timeout');
      // 'queue' saw only the creation of 'bodies' (before the watch): nothing since.
      expect(await clock.waitForChange(queue, clock.now())).toBe('timeout');
    });
    await simulation.run();
  });

  it('reports nothing from before its first wait: SMB arms a watch with its first request (Samba; notifyBeforeFirstWait reports it)', async () => {
    for (const notifyBeforeFirstWait of [false, true]) {
      const simulation = testSimulation({ server: { notifyBeforeFirstWait } });
      const results: string[] = [];
      simulation.addClient('client', async ({ fs, clock }) => {
        await fs.mkdir('queue');
        await fs.writeFile('queue/notify', bytes(''));
        const watch = await fs.watch('queue', { lastWrite: true });
        await fs.setTimes('queue/notify', clock.now(), clock.now());
        results.push(await clock.waitForChange(watch, clock.now() + 10));
        await fs.setTimes('queue/notify', clock.now(), clock.now());
        results.push(await clock.waitForChange(watch, clock.now() + 10));
      });
      await simulation.run();
      expect(results).toEqual([notifyBeforeFirstWait ? 'changed' : 'timeout', 'changed']);
    }
  });

  it('queues changes between waits, and overflows into a rescan hint past the limit', async () => {
    const simulation = testSimulation({ server: { notifyQueueLimit: 4 } });
    simulation.addClient('client', async ({ fs, clock }) => {
      await fs.mkdir('queue');
      await fs.writeFile('queue/notify', bytes(''));
      const watch = await fs.watch('queue', { lastWrite: true });
      expect(await clock.waitForChange(watch, clock.now())).toBe('timeout');
      await fs.setTimes('queue/notify', clock.now(), clock.now());
      await fs.setTimes('queue/notify', clock.now(), clock.now());
      // Changes made between two waits are queued: it returns at once with 'changed'...
      expect(await clock.waitForChange(watch, clock.now() + 1000)).toBe('changed');
      // ...and the queue is now empty.
      expect(await clock.waitForChange(watch, clock.now() + 10)).toBe('timeout');
      for (let change = 0; change < 5; change += 1) await fs.setTimes('queue/notify', clock.now(), clock.now());
      const start = elapsed(clock);
      expect(await clock.waitForChange(watch, clock.now() + 1000)).toBe('overflow');
      expect(elapsed(clock) - start).toBeLessThan(1);
      expect(await clock.waitForChange(watch, clock.now() + 10)).toBe('timeout');
      // Exactly at the limit there is no overflow.
      for (let change = 0; change < 4; change += 1) await fs.setTimes('queue/notify', clock.now(), clock.now());
      expect(await clock.waitForChange(watch, clock.now() + 1000)).toBe('changed');
    });
    await simulation.run();
  });

  it('a watch is a handle: unwatched or from a dropped session it is CLOSED_HANDLE', async () => {
    const simulation = testSimulation();
    simulation.addClient('client', async ({ fs, clock }) => {
      await fs.mkdir('queue');
      const first = await fs.watch('queue', { lastWrite: true });
      await fs.unwatch(first);
      await expectCode(clock.waitForChange(first, clock.now() + 10), 'CLOSED_HANDLE');
      const second = await fs.watch('queue', { lastWrite: true });
      await at(clock, 20);
      await expectCode(clock.waitForChange(second, clock.now() + 10), 'CLOSED_HANDLE');
      const third = await fs.watch('queue', { lastWrite: true });
      await expectCode(clock.waitForChange(third, clock.now() + 100), 'SHARE_UNAVAILABLE');
    });
    simulation.at(10, (sim) => sim.dropSession('client'));
    simulation.at(40, (sim) => sim.dropSession('client'));
    await simulation.run();
  });
});

describe('attribute cache (Linux cifs actimeo)', () => {
  it("hides another client's size and mtime change until the cache entry is actimeoMs old", async () => {
    const simulation = testSimulation();
    const seen: string[] = [];
    simulation.addClient('poller', async ({ fs, clock }) => {
      await fs.writeFile('notify', bytes(''));
      const first = await fs.stat('notify');
      seen.push(`t0 size ${first.size}`);
      await at(clock, 500);
      const cached = await fs.stat('notify');
      seen.push(`t500 size ${cached.size} same mtime ${cached.mtimeMs === first.mtimeMs}`);
      await at(clock, 1100);
      seen.push(`t1100 size ${(await fs.stat('notify')).size}`);
    });
    simulation.addClient('writer', async ({ fs, clock }) => {
      await at(clock, 100);
      await fs.writeFile('notify', bytes('12345'));
    });
    await simulation.run();
    expect(seen).toEqual(['t0 size 0', 't500 size 0 same mtime true', 't1100 size 5']);
  });

  it('is per client, configurable (0 disables it) and dropped by the client’s own changes', async () => {
    const simulation = testSimulation({ actimeoMs: 0 });
    simulation.addClient('no-cache', async ({ fs, clock }) => {
      await fs.writeFile('f', bytes(''));
      await fs.stat('f');
      await at(clock, 200);
      expect((await fs.stat('f')).size).toBe(3);
    });
    simulation.addClient('cached', async ({ fs, clock }) => {
      await at(clock, 10);
      expect((await fs.stat('f')).size).toBe(0);
      await fs.writeFile('f', bytes('abc'));
      // Its own write dropped the entry: the next stat asks the server.
      expect((await fs.stat('f')).size).toBe(3);
      const before = elapsed(clock);
      await fs.stat('f');
      // A cache hit costs only the local operation time.
      expect(elapsed(clock) - before).toBeCloseTo(0.001, 3);
    }, { actimeoMs: 1000 });
    await simulation.run();
  });
});

describe('timestamps', () => {
  it('FAT granularity: last-write times are multiples of 2 s', async () => {
    const simulation = testSimulation({ server: { timestampGranularityMs: 2000 } });
    const mtimes: number[] = [];
    simulation.addClient('client', async ({ fs, clock }) => {
      const handle = await fs.open('f', { create: true });
      for (const atMs of [1000, 2500, 3900, 4100]) {
        await at(clock, atMs);
        await fs.write(handle, 0, bytes('x'));
        mtimes.push((await fs.stat('f')).mtimeMs - defaultEpochMs);
      }
      await fs.setTimes('f', defaultEpochMs + 12_345, defaultEpochMs + 12_345);
      mtimes.push((await fs.stat('f')).mtimeMs - defaultEpochMs);
    }, { actimeoMs: 0 });
    await simulation.run();
    expect(mtimes).toEqual([0, 2000, 2000, 4000, 12_000]);
  });

  it('NTFS granularity (default): a write 1 ms later has a later mtime, within float precision of its arrival', async () => {
    const simulation = testSimulation();
    const mtimes: number[] = [];
    simulation.addClient('client', async ({ fs, clock }) => {
      const handle = await fs.open('f', { create: true });
      for (const atMs of [10, 11]) {
        await at(clock, atMs);
        await fs.write(handle, 0, bytes('x'));
        mtimes.push((await fs.stat('f')).mtimeMs - defaultEpochMs);
      }
    }, { actimeoMs: 0 });
    await simulation.run();
    expect(mtimes[0]).toBeCloseTo(10.1, 3);
    expect(mtimes[1]).toBeCloseTo(11.1, 3);
  });

  it("mtimeUpdate 'close': a write moves the last-write time only when its handle closes", async () => {
    const simulation = testSimulation({ server: { mtimeUpdate: 'close' } });
    simulation.addClient('client', async ({ fs, clock }) => {
      const handle = await fs.open('f', { create: true });
      const created = (await fs.stat('f')).mtimeMs;
      await at(clock, 100);
      await fs.write(handle, 0, bytes('x'));
      expect((await fs.stat('f')).mtimeMs).toBe(created);
      await at(clock, 200);
      await fs.close(handle);
      expect((await fs.stat('f')).mtimeMs - defaultEpochMs).toBeCloseTo(200.1, 3);
    }, { actimeoMs: 0 });
    await simulation.run();
  });
});

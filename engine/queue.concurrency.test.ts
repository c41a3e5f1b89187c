/**
 * Concurrent clients on one queue, with fast-check's scheduler choosing the order of every port
 * call: each interleaving of lock, read, write and unlock calls is a case. After every write of
 * the kernel file its invariants hold; at the end, after a drain, every message whose send
 * returned was acked exactly once.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryFileSystem } from '../adapters/memory-file-system.js';
import { ManualClock } from '../adapters/manual-clock.js';
import { isNasqError } from './errors.js';
import { kernelViolations } from './kernel-image.js';
import type { FileSystem } from './ports.js';
import { QueueClient, createQueue, type Delivery } from './queue.js';

type Operation = 'send' | 'receive' | 'ack' | 'release' | 'sendBatch' | 'receiveBatch' | 'tick';

/** A FileSystem whose every call waits for the scheduler to pick it. */
function scheduled(
  inner: FileSystem,
  scheduler: fc.Scheduler,
  label: string,
  afterWrite: (path: string) => void,
  plantedBug: PlantedBug,
): FileSystem {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        // Planted bug: a client that skips the header lock (lock and unlock do nothing).
        if (plantedBug === 'no-lock' && (property === 'lock' || property === 'unlock')) return undefined;
        await scheduler.schedule(Promise.resolve(), `${label}.${String(property)}`);
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (property === 'write') afterWrite((args[0] as { path: string }).path);
        return result;
      };
    },
  });
}

type PlantedBug = 'none' | 'no-lock';

async function runScripts(scheduler: fc.Scheduler, scripts: Operation[][], slots: number, plantedBug: PlantedBug = 'none'): Promise<void> {
  const clock = new ManualClock(1_000_000);
  const memory = new MemoryFileSystem({ clock });
  await createQueue({ fs: memory, clock }, 'q', { slots, maximumDeliveries: 100 });
  const kernelViolationsAfterWrite: string[] = [];
  const afterWrite = (path: string): void => {
    if (!path.endsWith('/kernel')) return;
    const violations = kernelViolations(new Uint8Array(memory.volume.readFileSync('/q/kernel') as Uint8Array));
    kernelViolationsAfterWrite.push(...violations);
  };
  const sent = new Set<string>();
  const acked: string[] = [];

  const actor = async (index: number, script: Operation[]): Promise<void> => {
    const client = await QueueClient.open({ fs: scheduled(memory, scheduler, `c${index}`, afterWrite, plantedBug), clock }, 'q', {
      leaseMs: 500,
      lockWaitMs: 1e9,
      journalSoftLimit: 1 + (index % 4),
    });
    const held: Delivery[] = [];
    for (const operation of script) {
      try {
        switch (operation) {
          case 'send':
            sent.add(await client.send(`from ${index}`));
            break;
          case 'sendBatch':
            for (const id of await client.sendBatch([{ body: 'x' }, { body: 'y' }, { body: 'z' }])) sent.add(id);
            break;
          case 'receive': {
            const delivery = await client.receive();
            if (delivery !== null) held.push(delivery);
            break;
          }
          case 'receiveBatch':
            held.push(...(await client.receiveBatch(3)));
            break;
          case 'ack': {
            const delivery = held.shift();
            if (delivery !== undefined) {
              await client.ack(delivery.receipt);
              acked.push(delivery.id);
            }
            break;
          }
          case 'release': {
            const delivery = held.shift();
            if (delivery !== undefined) await client.release(delivery.receipt);
            break;
          }
          case 'tick':
            await scheduler.schedule(Promise.resolve(), `c${index}.tick`);
            await clock.advance(300);
            break;
        }
      } catch (error) {
        if (isNasqError(error, 'QUEUE_FULL')) {
          const sentBefore = error.details['sent'];
          if (Array.isArray(sentBefore)) for (const id of sentBefore) sent.add(id as string);
          continue;
        }
        // Without the lock, a read may overlap nothing locked yet see a half-made state.
        if (!isNasqError(error, 'LEASE_LOST')) throw error;
      }
    }
  };

  await scheduler.waitFor(Promise.all(scripts.map((script, index) => actor(index, script))));
  expect(kernelViolationsAfterWrite).toEqual([]);

  // Drain: every lease runs out, one client takes and acks everything left.
  await clock.advance(10_000);
  const drainer = await QueueClient.open({ fs: memory, clock }, 'q', { leaseMs: 500 });
  for (let round = 0; round < 1_000; round += 1) {
    const deliveries = await drainer.receiveBatch(8);
    if (deliveries.length === 0) break;
    for (const delivery of deliveries) {
      await drainer.ack(delivery.receipt);
      acked.push(delivery.id);
    }
  }
  expect(kernelViolations(new Uint8Array(memory.volume.readFileSync('/q/kernel') as Uint8Array))).toEqual([]);
  const duplicates = acked.filter((id, index) => acked.indexOf(id) !== index);
  expect(duplicates).toEqual([]);
  expect([...sent].sort()).toEqual([...acked].sort());
  expect(await drainer.stat()).toMatchObject({ emptyCount: slots, pendingCount: 0, unreadCount: 0 });
}

const operation = fc.constantFrom<Operation>('send', 'send', 'receive', 'receive', 'ack', 'ack', 'release', 'sendBatch', 'receiveBatch', 'tick');

describe('queue engine under scheduled concurrency (MemoryFileSystem)', () => {
  it('keeps invariants after every write and acks every sent message exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.array(operation, { minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 3, max: 12 }),
        async (scheduler, scripts, slots) => {
          await runScripts(scheduler, scripts, slots);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('finds a planted bug: clients that skip the header lock', async () => {
    const result = await fc.check(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.array(operation, { minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 3, max: 12 }),
        async (scheduler, scripts, slots) => {
          await runScripts(scheduler, scripts, slots, 'no-lock');
        },
      ),
      { numRuns: 300, seed: 42 },
    );
    expect(result.failed).toBe(true);
  });
});

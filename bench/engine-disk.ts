/**
 * Engine throughput on real local disk: NodeFileSystem (fcntl locks) and SystemClock on a
 * temporary directory under os.tmpdir(), one process, one client, send + receive + ack.
 *
 * - engine.disk.msgsPerSec: unbatched, not durable.
 * - engine.disk.msgsPerSec.batch32: sendBatch, receiveBatch and ackBatch of 32, not durable.
 * - engine.disk.msgsPerSec.durable: unbatched, durable (fsync of body, directory and kernel).
 * - engine.disk.bodyFileFloorUs: what the body files alone cost per message, measured with
 *   node:fs/promises directly (create a 256-byte file exclusively, read it, delete it), serially:
 *   the floor of a design with one file per message body, for comparison.
 * - engine.disk.msgsPerSec.batch32.bodiesInMemory: batch32 with the kernel file, locks and
 *   notification on disk but the bodies kept in memory: what the lock cycles alone allow, the
 *   ceiling of any body layout (for instance one body file per batch). Not a real configuration.
 */

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import type { FileSystem } from '../engine/ports.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import { batchOf, benchmarkBody, medianRate, oneMessage, round, type Figures, type Suite } from './harness.js';


async function openQueue(root: string, name: string, durable: boolean, bodiesInMemory = false): Promise<QueueClient> {
  const disk = new NodeFileSystem(root);
  const ports = { fs: bodiesInMemory ? withBodiesInMemory(disk) : disk, clock: new SystemClock() };
  await createQueue(ports, name, { slots: 1024 });
  return QueueClient.open(ports, name, { durable });
}

/** Whole-file calls on message bodies go to a Map; everything else to the disk. */
function withBodiesInMemory(disk: FileSystem): FileSystem {
  const bodies = new Map<string, Uint8Array>();
  const isBody = (path: string): boolean => path.includes('/msg/');
  const memory: Partial<FileSystem> = {
    writeFile: async (path, data, options) => {
      if (!isBody(path)) return disk.writeFile(path, data, options);
      bodies.set(path, data);
    },
    readFile: async (path) => (isBody(path) ? bodies.get(path)! : disk.readFile(path)),
    unlink: async (path, options) => {
      if (!isBody(path)) return disk.unlink(path, options);
      bodies.delete(path);
    },
  };
  return new Proxy(disk, {
    get(target, property, receiver) {
      if (typeof property === 'string' && property in memory) return memory[property as keyof FileSystem];
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export const engineDiskSuite: Suite = {
  name: 'engine.disk',
  async run({ timeMs }): Promise<Figures> {
    const root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-bench-disk-'));
    const clients: QueueClient[] = [];
    try {
      const single = await openQueue(root, 'single', false);
      const batched = await openQueue(root, 'batched', false);
      const durable = await openQueue(root, 'durable', true);
      const kernelOnly = await openQueue(root, 'kernel-only', false, true);
      clients.push(single, batched, durable, kernelOnly);
      const raw = nodePath.join(root, 'raw');
      await fs.mkdir(raw);
      let sequence = 0;
      const rawRate = await medianRate(
        'engine.disk raw body file',
        async () => {
          const path = nodePath.join(raw, String((sequence += 1)));
          await fs.writeFile(path, benchmarkBody, { flag: 'wx' });
          await fs.readFile(path);
          await fs.unlink(path);
        },
        { timeMs },
      );
      return {
        'engine.disk.msgsPerSec': round(await medianRate('engine.disk unbatched', () => oneMessage(single), { timeMs })),
        'engine.disk.msgsPerSec.batch32': round(
          await medianRate('engine.disk batch32', () => batchOf(batched, 32), { timeMs, itemsPerIteration: 32 }),
        ),
        'engine.disk.msgsPerSec.durable': round(await medianRate('engine.disk durable', () => oneMessage(durable), { timeMs })),
        'engine.disk.bodyFileFloorUs': round(1_000_000 / rawRate, 1),
        'engine.disk.msgsPerSec.batch32.bodiesInMemory': round(
          await medianRate('engine.disk batch32 bodies in memory', () => batchOf(kernelOnly, 32), { timeMs, itemsPerIteration: 32 }),
        ),
      };
    } finally {
      for (const client of clients) await client.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  },
};

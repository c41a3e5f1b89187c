/** Test helpers: a queue on an in-memory file system with a manual clock. */

import { ManualClock } from '../../adapters/manual-clock.js';
import { MemoryFileSystem } from '../../adapters/memory-file-system.js';
import type { FileSystem, Ports } from '../ports.js';
import { QueueClient, createQueue, type CreateQueueOptions, type QueueOptions } from '../queue.js';

export interface MemoryQueue {
  clock: ManualClock;
  fs: MemoryFileSystem;
  ports: Ports;
  directory: string;
  open(options?: QueueOptions, fs?: FileSystem): Promise<QueueClient>;
  kernelBytes(): Uint8Array;
}

export async function memoryQueue(options: Partial<CreateQueueOptions> & { startMs?: number; directory?: string } = {}): Promise<MemoryQueue> {
  const clock = new ManualClock(options.startMs ?? 1_000_000);
  const fs = new MemoryFileSystem({ clock });
  const ports: Ports = { fs, clock };
  const directory = options.directory ?? 'q';
  await createQueue(ports, directory, { slots: options.slots ?? 16, ...(options.maximumDeliveries === undefined ? {} : { maximumDeliveries: options.maximumDeliveries }) });
  return {
    clock,
    fs,
    ports,
    directory,
    open: (queueOptions = {}, otherFs = fs) => QueueClient.open({ fs: otherFs, clock }, directory, queueOptions),
    kernelBytes: () => new Uint8Array(fs.volume.readFileSync(`/${directory}/kernel`) as Uint8Array),
  };
}

/**
 * A queue (maximumDeliveries 2) whose one message, "poison", was received twice and never acked:
 * the third receive moved it to the dead letters. `client` leases for 100 ms.
 */
export async function poisonedQueue(): Promise<{ queue: MemoryQueue; client: QueueClient; id: string }> {
  const queue = await memoryQueue({ maximumDeliveries: 2 });
  const client = await queue.open({ leaseMs: 100 });
  const id = await client.send('poison');
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const delivery = await client.receive();
    if (delivery?.id !== id) throw new Error(`poisonedQueue: delivery ${attempt + 1} was ${delivery?.id ?? 'nothing'}, expected ${id}`);
    await queue.clock.advance(100);
  }
  if ((await client.receive()) !== null) throw new Error('poisonedQueue: the message was delivered a third time');
  return { queue, client, id };
}

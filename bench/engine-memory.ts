/**
 * Engine throughput on MemoryFileSystem, and file-system port calls per message end to end
 * (send + receive + ack), unbatched and with batches of 32. Port calls are counted, not timed.
 */

import { countingFileSystem } from '../adapters/counting-file-system.js';
import { ManualClock } from '../adapters/manual-clock.js';
import { MemoryFileSystem } from '../adapters/memory-file-system.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import { medianRate, round, type Figures, type Suite } from './harness.js';

const body = new Uint8Array(256).fill(7);

async function setup(slots: number) {
  const clock = new ManualClock(1_700_000_000_000);
  const memory = new MemoryFileSystem({ clock });
  await createQueue({ fs: memory, clock }, 'q', { slots });
  const fs = countingFileSystem(memory);
  const client = await QueueClient.open({ fs, clock }, 'q');
  return { fs, client };
}

/** One message end to end, unbatched. */
async function oneMessage(client: QueueClient): Promise<void> {
  await client.send(body);
  const delivery = await client.receive();
  if (delivery === null) throw new Error('benchmark: the message did not arrive');
  await client.ack(delivery.receipt);
}

async function batchOf(client: QueueClient, size: number): Promise<void> {
  await client.sendBatch(Array.from({ length: size }, () => ({ body })));
  const deliveries = await client.receiveBatch(size);
  if (deliveries.length !== size) throw new Error(`benchmark: ${deliveries.length} of ${size} messages arrived`);
  await client.ackBatch(deliveries.map((delivery) => delivery.receipt));
}

/** Port calls per message over `messages` messages after a warm-up. */
export async function callsPerMessage(run: (client: QueueClient) => Promise<void>, perRun: number, slots = 1024): Promise<number> {
  const { fs, client } = await setup(slots);
  for (let index = 0; index < 10; index += 1) await run(client);
  fs.reset();
  const runs = Math.ceil(1_000 / perRun);
  for (let index = 0; index < runs; index += 1) await run(client);
  return fs.total() / (runs * perRun);
}

export const engineMemorySuite: Suite = {
  name: 'engine.memory',
  async run({ timeMs }): Promise<Figures> {
    const single = await setup(1024);
    const batched = await setup(1024);
    return {
      'engine.memory.msgsPerSec': round(await medianRate('engine.memory unbatched', () => oneMessage(single.client), { timeMs })),
      'engine.memory.msgsPerSec.batch32': round(
        await medianRate('engine.memory batch32', () => batchOf(batched.client, 32), { timeMs, itemsPerIteration: 32 }),
      ),
      'engine.fsCallsPerMessage': round(await callsPerMessage(oneMessage, 1), 3),
      'engine.fsCallsPerMessage.batch32': round(await callsPerMessage((client) => batchOf(client, 32), 32), 3),
    };
  },
};

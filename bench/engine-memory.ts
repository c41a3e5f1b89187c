/**
 * Engine throughput on MemoryFileSystem, and file-system port calls per message end to end
 * (send + receive + ack), unbatched and with batches of 32. Port calls are counted, not timed.
 */

import { countingFileSystem } from '../adapters/counting-file-system.js';
import { ManualClock } from '../adapters/manual-clock.js';
import { MemoryFileSystem } from '../adapters/memory-file-system.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import { batchOf, medianRate, oneMessage, round, type Figures, type Suite } from './harness.js';


async function setup(slots: number) {
  const clock = new ManualClock(1_700_000_000_000);
  const memory = new MemoryFileSystem({ clock });
  await createQueue({ fs: memory, clock }, 'q', { slots });
  const fs = countingFileSystem(memory);
  const client = await QueueClient.open({ fs, clock }, 'q');
  return { fs, client };
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

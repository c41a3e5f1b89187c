/**
 * readKernelImage with a SlotMemo (what the simulator's header-invariants checker uses after every
 * commit) says exactly what it says without one, whatever changed between two reads.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { slotOffsetOf } from './format.js';
import { SlotMemo, kernelViolations, readKernelImage } from './kernel-image.js';
import { memoryQueue } from './test-support/memory-queue.js';

const slots = 12;

/** The kernel file after each step of a small run: sends, a batch, receives, acks, a release. */
async function snapshots(): Promise<Uint8Array[]> {
  const queue = await memoryQueue({ slots });
  const client = await queue.open({ journalSoftLimit: 2, leaseMs: 1_000 });
  const result = [queue.kernelBytes()];
  for (let index = 0; index < 4; index += 1) {
    await client.send(`body ${index}`, index === 3 ? { deliverAt: queue.clock.now() + 60_000 } : {});
    result.push(queue.kernelBytes());
  }
  await client.sendBatch([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
  result.push(queue.kernelBytes());
  const taken = await client.receiveBatch(3);
  result.push(queue.kernelBytes());
  await client.ack(taken[0]!.receipt);
  result.push(queue.kernelBytes());
  await client.release(taken[1]!.receipt);
  result.push(queue.kernelBytes());
  await client.ackBatch(taken.slice(2).map((delivery) => delivery.receipt));
  result.push(queue.kernelBytes());
  await client.close();
  return result;
}

const step = fc.record({
  snapshot: fc.nat(),
  flips: fc.array(fc.record({ position: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }), { maxLength: 2 }),
});

describe('SlotMemo', () => {
  it('reads every sequence of files (sound, damaged, cut short) as a fresh read does, in one live buffer or at an odd offset', async () => {
    const files = await snapshots();
    const size = Math.max(...files.map((file) => file.length));
    await fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), fc.boolean(), fc.boolean(), (steps, misaligned, cut) => {
        const memo = new SlotMemo();
        // One buffer written over and over, as the server's copy of the file is.
        const live = new Uint8Array(size + 1);
        const start = misaligned ? 1 : 0;
        for (const { snapshot, flips } of steps) {
          const file = files[snapshot % files.length]!;
          live.set(file, start);
          for (const { position, mask } of flips) live[start + (position % file.length)]! ^= mask;
          const length = cut && flips.length > 0 ? file.length - 1 : file.length;
          const bytes = live.subarray(start, start + length);
          let fresh: unknown;
          let fromMemo: unknown;
          try {
            fresh = readKernelImage(bytes.slice());
          } catch (error) {
            fresh = (error as Error).message;
          }
          try {
            fromMemo = readKernelImage(bytes, memo);
          } catch (error) {
            fromMemo = (error as Error).message;
          }
          expect(fromMemo).toEqual(fresh);
          expect(kernelViolations(bytes, memo)).toEqual(kernelViolations(bytes.slice()));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('sees one flipped byte in a slot it read sound before', async () => {
    const files = await snapshots();
    const bytes = files[files.length - 1]!.slice();
    const memo = new SlotMemo();
    expect(kernelViolations(bytes, memo)).toEqual([]);
    bytes[slotOffsetOf(5) + 20]! ^= 0x10;
    const violations = kernelViolations(bytes, memo);
    expect(violations.some((violation) => violation.includes(`slot at offset ${slotOffsetOf(5)} has checksum`))).toBe(true);
    // And once mended, sound again.
    bytes[slotOffsetOf(5) + 20]! ^= 0x10;
    expect(kernelViolations(bytes, memo)).toEqual([]);
  });
});

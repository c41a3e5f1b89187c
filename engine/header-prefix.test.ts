/**
 * A lock cycle reads a prefix of the header region (all of copy A, copy B's fields and journal as
 * long as the client has seen it) and the whole region only when the prefix does not settle the
 * choice. The choice must be the whole region's: a differential property over random pairs of
 * copies (either newer, journals of any length, damage anywhere), and the reads a queue client
 * makes (one prefix read normally, a second whole read once when copy B's journal outgrows it).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FileHandle, FileSystem } from './ports.js';
import {
  chooseCycleHeader,
  chooseHeader,
  choosePrefixCycleHeader,
  emptyQueueHeader,
  emptySlot,
  encodeHeader,
  headerCopySize,
  headerFixedSize,
  headerRegionSize,
  journalCapacity,
  slotOffsetOf,
  slotSize,
  type Header,
} from './format.js';
import { memoryQueue } from './test-support/memory-queue.js';

const totalSlots = 64;

function header(generation: number, journalLength: number): Header {
  const journal = Array.from({ length: journalLength }, (_, index) => emptySlot(slotOffsetOf(index), index + 1 < totalSlots ? slotOffsetOf(index + 1) : 0, generation));
  return { ...emptyQueueHeader(totalSlots, 10), generation, journal };
}

/** A header region of two copies; `stale` fills what lies after each copy's journal. */
function region(first: Header, second: Header, stale: number): Uint8Array {
  const bytes = new Uint8Array(headerRegionSize).fill(stale);
  const a = encodeHeader(first);
  const b = encodeHeader(second);
  bytes.set(a.subarray(0, headerFixedSize + first.journal.length * slotSize), 0);
  bytes.set(b.subarray(0, headerFixedSize + second.journal.length * slotSize), headerCopySize);
  return bytes;
}

describe('choosePrefixCycleHeader', () => {
  it('settles the choice only as the whole region does, whatever the copies, their journals and their damage', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 1_000 }),
        fc.boolean(),
        fc.nat({ max: journalCapacity }),
        fc.nat({ max: journalCapacity }),
        fc.option(fc.record({ at: fc.nat({ max: headerRegionSize - 1 }), flip: fc.integer({ min: 1, max: 255 }) }), { nil: undefined }),
        fc.integer({ min: headerCopySize + headerFixedSize, max: headerRegionSize - 1 }),
        fc.nat({ max: 255 }),
        (base, secondNewer, firstJournal, secondJournal, damage, prefixLength, stale) => {
          const bytes = region(header(base + (secondNewer ? 1 : 2), firstJournal), header(base + (secondNewer ? 2 : 1), secondJournal), stale);
          if (damage !== undefined) bytes[damage.at] = bytes[damage.at]! ^ damage.flip;
          const fromPrefix = choosePrefixCycleHeader(bytes.slice(0, prefixLength));
          let whole: ReturnType<typeof chooseCycleHeader> | Error;
          try {
            whole = chooseCycleHeader(bytes);
          } catch (error) {
            whole = error as Error;
          }
          if (fromPrefix === undefined) return; // the whole region decides
          expect(whole).not.toBeInstanceOf(Error);
          const chosen = whole as ReturnType<typeof chooseCycleHeader>;
          expect(fromPrefix.copy).toBe(chosen.copy);
          expect(fromPrefix.header).toEqual(chosen.header);
          expect(fromPrefix.journalOffsets).toEqual(chosen.journalOffsets);
          expect(fromPrefix.journalAt).toBe(chosen.journalAt);
          expect(fromPrefix.imagesSealed).toBe(chosen.imagesSealed);
          // And the images it will carry are the same bytes.
          const length = chosen.journalOffsets.length * slotSize;
          expect(fromPrefix.journalBytes.subarray(fromPrefix.journalAt, fromPrefix.journalAt + length)).toEqual(
            chosen.journalBytes.subarray(chosen.journalAt, chosen.journalAt + length),
          );
        },
      ),
      { numRuns: 600 },
    );
  });

  it('settles the common case: copy A newer, or copy B newer with its journal inside the prefix', () => {
    const prefix = headerCopySize + headerFixedSize + 13 * slotSize;
    expect(choosePrefixCycleHeader(region(header(5, 30), header(4, 40), 0).subarray(0, prefix))?.copy).toBe(0);
    expect(choosePrefixCycleHeader(region(header(4, 30), header(5, 13), 0).subarray(0, prefix))?.copy).toBe(1);
    expect(choosePrefixCycleHeader(region(header(4, 30), header(5, 14), 0).subarray(0, prefix))).toBeUndefined();
  });
});

/** A file system that records the length of every read of offset 0 (the header region). */
function recordingReads(inner: FileSystem, lengths: number[]): FileSystem {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'read') {
        return (handle: FileHandle, position: number, length: number, into?: Uint8Array) => {
          if (position === 0) lengths.push(length);
          return target.read(handle, position, length, into);
        };
      }
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? (value as (...parameters: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('a queue client reads the header region', () => {
  it('as a prefix, once per cycle, reading the whole region a second time only when copy B outgrows the prefix', async () => {
    const queue = await memoryQueue({ slots: 256 });
    const lengths: number[] = [];
    const client = await queue.open({ journalSoftLimit: 8 }, recordingReads(queue.fs, lengths));
    const prefix = headerCopySize + headerFixedSize + 13 * slotSize;
    for (let index = 0; index < 6; index += 1) await client.send(`m${index}`);
    expect(lengths.length).toBeGreaterThanOrEqual(6);
    expect(new Set(lengths)).toEqual(new Set([prefix]));

    // Another client commits big batches until copy B is in force with a journal past the prefix.
    const batcher = await queue.open({ journalSoftLimit: journalCapacity });
    let batches = 0;
    for (let round = 0; round < 4; round += 1) {
      await batcher.sendBatch(Array.from({ length: 25 }, (_, index) => ({ body: `b${round}-${index}` })));
      batches += 1;
      const chosen = chooseHeader(queue.kernelBytes().subarray(0, headerRegionSize));
      if (chosen.copy === 1 && chosen.header.journal.length > 13) break;
    }
    const inForce = chooseHeader(queue.kernelBytes().subarray(0, headerRegionSize));
    expect(inForce.copy).toBe(1);
    lengths.length = 0;
    for (let index = 0; index < 4; index += 1) await client.send(`n${index}`);
    // The first cycle reads the prefix, finds copy B newer and its journal beyond it, and reads
    // the whole region; from then on its prefix covers copy B's journal.
    expect(lengths[0]).toBe(prefix);
    expect(lengths[1]).toBe(headerRegionSize);
    const grown = lengths[2]!;
    expect(grown).toBeGreaterThan(prefix);
    expect(lengths.slice(2).every((length) => length === grown)).toBe(true);

    // Every message is there, once.
    const receiver = await queue.open();
    const bodies: string[] = [];
    for (let delivery = await receiver.receive(); delivery !== null; delivery = await receiver.receive()) {
      bodies.push(new TextDecoder().decode(delivery.body));
      await receiver.ack(delivery.receipt);
    }
    expect(bodies.length).toBe(6 + 25 * batches + 4);
    expect(new Set(bodies).size).toBe(bodies.length);
  });
});

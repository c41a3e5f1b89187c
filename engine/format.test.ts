import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32.js';
import {
  decodeHeaderCopy,
  emptyQueueHeader,
  emptySlot,
  encodeHeader,
  encodeSlot,
  headerCopySize,
  headerFixedSize,
  journalCapacity,
  sealHeaderCopy,
  sealHeaderCopyOfSealedImages,
  slotOffsetOf,
  slotSize,
  type Header,
} from './format.js';

const header = (journal: Header['journal']): Header => ({ ...emptyQueueHeader(4, 10), generation: 5, journal });

describe('format', () => {
  it('computes CRC-32C (Castagnoli) of the standard check string', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('rejects a header copy whose journal image was swapped for another valid image (a torn write mixing generations)', () => {
    const bytes = encodeHeader(header([emptySlot(slotOffsetOf(0), slotOffsetOf(1), 5)]));
    expect(decodeHeaderCopy(bytes, 0).ok).toBe(true);
    const other = new Uint8Array(slotSize);
    encodeSlot(emptySlot(slotOffsetOf(0), slotOffsetOf(3), 2), other, 0);
    const forged = bytes.slice();
    forged.set(other, 128);
    expect(forged).not.toEqual(bytes);
    const result = decodeHeaderCopy(forged, 0);
    expect(result.ok).toBe(false);
  });

  it('seals a copy from its images\' own checksums exactly as from their bytes, and ignores what lies after its journal', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ slot: fc.nat({ max: 3 }), next: fc.nat({ max: 3 }), stamp: fc.nat({ max: 1_000 }) }), { maxLength: journalCapacity }),
        fc.uint8Array({ minLength: headerCopySize, maxLength: headerCopySize }),
        (images, stale) => {
          const journal = images.map(({ slot, next, stamp }) => emptySlot(slotOffsetOf(slot), slotOffsetOf(next), stamp));
          const full = encodeHeader(header(journal));
          // A commit writes only the used part of the copy; older bytes stay after it in the file.
          const used = headerFixedSize + journal.length * slotSize;
          const written = stale.slice();
          written.set(full.subarray(0, used));
          written.fill(0xee, 124, 128);
          sealHeaderCopyOfSealedImages(written, journal.length);
          expect(written.subarray(0, used)).toEqual(full.subarray(0, used));
          sealHeaderCopy(written, journal.length);
          expect(written.subarray(0, used)).toEqual(full.subarray(0, used));
          const decoded = decodeHeaderCopy(written, 0);
          expect(decoded.ok).toBe(true);
          expect(decoded.ok && decoded.header).toEqual(header(journal));
        },
      ),
      { numRuns: 200 },
    );
  });
});

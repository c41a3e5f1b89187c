/**
 * CRC-32C: the word-at-a-time version against the bit-by-bit definition, on random bytes at every
 * alignment and length (also chained), and the standard check value.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cBitwise, crc32cContinue, crc32cShiftTables } from './crc32.js';

describe('crc32c', () => {
  it('gives the standard check value of "123456789" (0xe3069283)', () => {
    const bytes = new TextEncoder().encode('123456789');
    expect(crc32c(bytes)).toBe(0xe3069283);
    expect(crc32cBitwise(bytes)).toBe(0xe3069283);
  });

  it('agrees with the bitwise definition at every offset, length and chaining', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(), fc.nat(), fc.nat({ max: 7 }), fc.nat({ max: 2 ** 32 - 1 }), (data, a, b, shift, previous) => {
        // A view at an odd offset of a bigger buffer: exercises the unaligned head and tail.
        const buffer = new Uint8Array(data.length + shift);
        buffer.set(data, shift);
        const bytes = buffer.subarray(shift);
        const start = data.length === 0 ? 0 : a % (data.length + 1);
        const end = start + (data.length === 0 ? 0 : b % (data.length - start + 1));
        expect(crc32c(bytes, start, end, previous)).toBe(crc32cBitwise(bytes, start, end, previous));
        const middle = start + Math.floor((end - start) / 2);
        expect(crc32c(bytes, middle, end, crc32c(bytes, start, middle))).toBe(crc32cBitwise(bytes, start, end));
      }),
      { numRuns: 2_000 },
    );
  });

  it('continues a checksum over a block from the block\'s own checksum alone (the header seal)', () => {
    const tablesByLength = new Map<number, Int32Array>();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 1, maxLength: 130 }), fc.nat({ max: 2 ** 32 - 1 }), (before, block, previous) => {
        let tables = tablesByLength.get(block.length);
        if (tables === undefined) {
          tables = crc32cShiftTables(block.length);
          tablesByLength.set(block.length, tables);
        }
        const prefix = crc32cBitwise(before, 0, before.length, previous);
        expect(crc32cContinue(tables, prefix, crc32cBitwise(block))).toBe(crc32cBitwise(block, 0, block.length, prefix));
      }),
      { numRuns: 500 },
    );
  });
});

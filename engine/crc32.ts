/**
 * CRC-32C (Castagnoli polynomial, as in iSCSI and ext4 metadata), slicing-by-8.
 *
 * Every header and slot read of the kernel file is verified with it, so it sits on the hot path
 * of every lock cycle; slicing-by-8 handles eight bytes per step with eight lookup tables.
 */

const polynomialReversed = 0x82f63b78;

const tables: Uint32Array[] = (() => {
  const result: Uint32Array[] = [];
  const first = new Uint32Array(256);
  for (let index = 0; index < 256; index += 1) {
    let value = index;
    for (let bit = 0; bit < 8; bit += 1) {
      value = value & 1 ? (value >>> 1) ^ polynomialReversed : value >>> 1;
    }
    first[index] = value >>> 0;
  }
  result.push(first);
  for (let slice = 1; slice < 8; slice += 1) {
    const previous = result[slice - 1]!;
    const table = new Uint32Array(256);
    for (let index = 0; index < 256; index += 1) {
      const value = previous[index]!;
      table[index] = ((value >>> 8) ^ first[value & 0xff]!) >>> 0;
    }
    result.push(table);
  }
  return result;
})();

const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [
  Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array,
];

/**
 * Continues a CRC-32C over bytes[start, end). Start a new checksum with `previous` = 0.
 * Chaining calls over adjacent ranges gives the checksum of their concatenation.
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, previous = 0): number {
  let crc = ~previous >>> 0;
  let position = start;
  const stop8 = end - 8;
  while (position <= stop8) {
    const low =
      (crc ^ (bytes[position]! | (bytes[position + 1]! << 8) | (bytes[position + 2]! << 16) | (bytes[position + 3]! << 24))) >>> 0;
    crc =
      t7[low & 0xff]! ^
      t6[(low >>> 8) & 0xff]! ^
      t5[(low >>> 16) & 0xff]! ^
      t4[low >>> 24]! ^
      t3[bytes[position + 4]!]! ^
      t2[bytes[position + 5]!]! ^
      t1[bytes[position + 6]!]! ^
      t0[bytes[position + 7]!]!;
    position += 8;
  }
  while (position < end) {
    crc = t0[(crc ^ bytes[position]!) & 0xff]! ^ (crc >>> 8);
    position += 1;
  }
  return ~crc >>> 0;
}

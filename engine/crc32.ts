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
 * The eight tables in one array (table k at 256 * k), for the word loop. Int32: every entry is
 * used with xor and shifts only, so the sign bit does no harm and the loads stay integer.
 */
const joined = new Int32Array(8 * 256);
tables.forEach((table, slice) => joined.set(table, slice * 256));

/** Typed-array loads of 32-bit words are little-endian only on a little-endian host. */
const hostIsLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Word views of the last two buffers checksummed (a lock cycle alternates between the header
 * region it read, a client's own buffer, and the copy it writes, carved from a few big slabs):
 * saves a view per call. The same two-entry cache as format.ts's viewOf, kept apart on purpose
 * (see there: shared, it made the loads through the views polymorphic).
 */
let wordsBuffer: ArrayBufferLike | undefined;
let wordsOfBuffer: Int32Array | undefined;
let previousWordsBuffer: ArrayBufferLike | undefined;
let previousWordsOfBuffer: Int32Array | undefined;

function wordsOf(buffer: ArrayBufferLike): Int32Array {
  if (buffer !== wordsBuffer) {
    const lastBuffer = wordsBuffer;
    const lastWords = wordsOfBuffer;
    wordsOfBuffer = buffer === previousWordsBuffer ? previousWordsOfBuffer : new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    wordsBuffer = buffer;
    previousWordsBuffer = lastBuffer;
    previousWordsOfBuffer = lastWords;
  }
  return wordsOfBuffer!;
}

/**
 * Continues a CRC-32C over bytes[start, end). Start a new checksum with `previous` = 0.
 * Chaining calls over adjacent ranges gives the checksum of their concatenation.
 *
 * Eight bytes per step as two aligned 32-bit loads (on a little-endian host; byte loads
 * elsewhere), single bytes up to the first aligned position and after the last whole step.
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, previous = 0): number {
  let crc = ~previous;
  let position = start;
  const base = bytes.byteOffset;
  if (hostIsLittleEndian && end - position >= 16) {
    while (((base + position) & 3) !== 0) {
      crc = joined[(crc ^ bytes[position]!) & 0xff]! ^ (crc >>> 8);
      position += 1;
    }
    const words = wordsOf(bytes.buffer);
    let word = (base + position) >>> 2;
    const stop = word + (((end - position) >>> 3) << 1);
    for (; word < stop; word += 2) {
      const low = crc ^ words[word]!;
      const high = words[word + 1]!;
      crc =
        joined[1792 + (low & 0xff)]! ^
        joined[1536 + ((low >>> 8) & 0xff)]! ^
        joined[1280 + ((low >>> 16) & 0xff)]! ^
        joined[1024 + (low >>> 24)]! ^
        joined[768 + (high & 0xff)]! ^
        joined[512 + ((high >>> 8) & 0xff)]! ^
        joined[256 + ((high >>> 16) & 0xff)]! ^
        joined[high >>> 24]!;
    }
    position = (word << 2) - base;
  } else {
    const stop8 = end - 8;
    while (position <= stop8) {
      const low = crc ^ (bytes[position]! | (bytes[position + 1]! << 8) | (bytes[position + 2]! << 16) | (bytes[position + 3]! << 24));
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
  }
  while (position < end) {
    crc = joined[(crc ^ bytes[position]!) & 0xff]! ^ (crc >>> 8);
    position += 1;
  }
  return ~crc >>> 0;
}

/**
 * Tables of the linear map "run the CRC register over `length` zero bytes", one 256-entry table
 * per byte of the register (table k at 256 * k). With them a checksum can be continued over a
 * block whose own checksum is already known, without reading the block again:
 *
 *   crc32c(block, 0, L, previous) === crc32cContinue(crc32cShiftTables(L), previous, crc32c(block, 0, L))
 *
 * (CRC is linear over GF(2): the register after previous-then-block is previous's register moved
 * L zero bytes on, xor the block's own checksum; the pre- and post-inversions cancel.)
 */
export function crc32cShiftTables(length: number): Int32Array {
  const zeros = new Uint8Array(length);
  // The register after `length` zero bytes from register r is ~crc32c(zeros, ~r).
  const shift = (register: number): number => ~crc32c(zeros, 0, length, ~register >>> 0) >>> 0;
  const tables = new Int32Array(4 * 256);
  for (let byte = 0; byte < 4; byte += 1) {
    for (let value = 0; value < 256; value += 1) tables[byte * 256 + value] = shift((value << (8 * byte)) >>> 0);
  }
  return tables;
}

/** The checksum of `previous`'s bytes followed by a block of the tables' length whose own checksum is `blockChecksum`. */
export function crc32cContinue(tables: Int32Array, previous: number, blockChecksum: number): number {
  return (
    (tables[previous & 0xff]! ^
      tables[256 + ((previous >>> 8) & 0xff)]! ^
      tables[512 + ((previous >>> 16) & 0xff)]! ^
      tables[768 + (previous >>> 24)]! ^
      blockChecksum) >>>
    0
  );
}

/** Bit by bit, for tests: the definition the fast version must match. */
export function crc32cBitwise(bytes: Uint8Array, start = 0, end = bytes.length, previous = 0): number {
  let crc = ~previous >>> 0;
  for (let position = start; position < end; position += 1) {
    crc ^= bytes[position]!;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 1 ? (crc >>> 1) ^ polynomialReversed : crc >>> 1;
  }
  return ~crc >>> 0;
}

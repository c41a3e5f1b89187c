/**
 * Fresh zeroed byte buffers carved out of larger slabs.
 *
 * Allocating a typed array of more than 64 bytes gives it an ArrayBuffer of its own, outside the
 * JavaScript heap: measured at 1 to 3 microseconds each in Node 20 (allocation, zeroing and the
 * garbage collector's bookkeeping of external memory), more than the rest of a lock cycle's
 * encoding. A view into a slab costs tens of nanoseconds. Every buffer handed out is a region
 * used by nobody else, ever: no buffer is recycled, so a port or a fault layer that keeps a
 * written buffer (against the rule) still sees the bytes it was given. The cost is retention: a
 * slab lives until its last view dies.
 *
 * Deterministic and free of ambient state: only where the bytes live changes, never their values.
 */

/** Bytes per slab. */
const slabSize = 256 * 1024;
/** Larger requests get an ArrayBuffer of their own (a slab would hold few of them). */
const largestSlabbedLength = 16 * 1024;

let slab = new ArrayBuffer(0);
let used = 0;

/** A zeroed `length`-byte buffer that shares its ArrayBuffer with other fresh buffers. */
export function freshBytes(length: number): Uint8Array {
  if (length > largestSlabbedLength) return new Uint8Array(length);
  if (used + length > slab.byteLength) {
    slab = new ArrayBuffer(slabSize);
    used = 0;
  }
  const bytes = new Uint8Array(slab, used, length);
  // Keep every region 8-byte aligned (cheap to copy, and DataView reads of floats stay aligned).
  used += (length + 7) & ~7;
  return bytes;
}

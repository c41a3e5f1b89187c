/**
 * Byte buffers carved out of larger slabs.
 *
 * Allocating a typed array of more than 64 bytes gives it an ArrayBuffer of its own, outside the
 * JavaScript heap, zero-filled: measured at 1 to 3 microseconds per 4 to 8 KiB in Node 20 on the
 * benchmark machine (the zeroing, the allocation, the collector's bookkeeping of external
 * memory), more than the rest of a lock cycle's encoding. A view into a slab costs tens of
 * nanoseconds, and a slab that is about to be overwritten need not be zeroed.
 *
 * Every buffer handed out is a region used by nobody else, ever: nothing is recycled, so a port or
 * a fault layer that keeps a buffer it was given still sees the bytes it was given. The price is
 * retention: a slab lives until its last view dies.
 *
 * Deterministic: only where the bytes live changes, never their values (`bytesToOverwrite` hands
 * out stale bytes, so its callers must write every byte before anyone reads one).
 */

import { Buffer } from 'node:buffer';

/** Bytes per slab. */
const slabSize = 256 * 1024;
/** Larger requests get an ArrayBuffer of their own (a slab would hold few of them). */
const largestSlabbedLength = 16 * 1024;

let slab: Uint8Array = new Uint8Array(0);
let used = 0;

/**
 * A `length`-byte buffer whose contents are undefined (old bytes of this process): the caller
 * writes every byte of it before it is read or handed on.
 */
export function bytesToOverwrite(length: number): Uint8Array {
  if (length > largestSlabbedLength) return new Uint8Array(length);
  if (used + length > slab.length) {
    // Not zero-filled: every region of it is overwritten by its taker.
    const fresh = Buffer.allocUnsafeSlow(slabSize);
    slab = new Uint8Array(fresh.buffer, fresh.byteOffset, fresh.length);
    used = 0;
  }
  const bytes = slab.subarray(used, used + length);
  // Keep every region 8-byte aligned (cheap to copy; word and float reads stay aligned).
  used += (length + 7) & ~7;
  return bytes;
}

/** A zeroed `length`-byte buffer that shares its ArrayBuffer with other slab buffers. */
export function freshBytes(length: number): Uint8Array {
  return bytesToOverwrite(length).fill(0);
}

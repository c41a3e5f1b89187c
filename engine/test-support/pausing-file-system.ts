/**
 * A FileSystem wrapper for crash tests: once armed, it stops the process at a chosen point of a
 * lock cycle (announcing it, then never returning), so the test can SIGKILL it exactly there.
 *
 * Stop points:
 * - 'after-lock': the header lock was just granted (the process holds it while stopped).
 * - 'torn-header-write': a write of a header copy lands only its first 100 bytes (new counts and
 *   generation, but not the checksum at 124), then the process stops: a crash in the middle of
 *   the commit write.
 * - 'after-slot-area-write': a journal flush wrote slot images to the slot area; the header write
 *   that commits them has not happened yet.
 * - 'before-lock': the call to take the header lock is not made (used after a body was written:
 *   the body is on disk, its slot not linked).
 * - 'after-body-unlink': an ack deleted a body under the lock, before its commit.
 */

import { headerCopySize, headerRegionSize } from '../format.js';
import type { FileHandle, FileSystem } from '../ports.js';

/** Bytes of a header copy a torn write lands: fields, but not the checksum at offset 124. */
const tornHeaderBytes = 100;

export type StopPoint = 'after-lock' | 'torn-header-write' | 'after-slot-area-write' | 'before-lock' | 'after-body-unlink';

export const stopPoints: readonly StopPoint[] = ['after-lock', 'torn-header-write', 'after-slot-area-write', 'before-lock', 'after-body-unlink'];

export interface PausingFileSystem {
  readonly fs: FileSystem;
  /** From now on, stop at the first occurrence of `point`. */
  arm(point: StopPoint): void;
}

/**
 * @param announce Called once when the process stops (e.g. prints a line the test waits for).
 */
export function pausingFileSystem(inner: FileSystem, announce: (point: StopPoint) => void): PausingFileSystem {
  let armed: StopPoint | undefined;
  const stop = async (point: StopPoint): Promise<never> => {
    armed = undefined;
    announce(point);
    // Keep the event loop alive (a bare pending promise would let Node exit) until killed.
    setInterval(() => undefined, 60_000);
    return new Promise<never>(() => undefined);
  };
  const isKernel = (handle: FileHandle): boolean => handle.path.endsWith('/kernel') || handle.path === 'kernel';
  const isBody = (path: string): boolean => /(^|\/)msg\/[^/]+$/.test(path);

  const fs: FileSystem = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const call = (...args: unknown[]): Promise<unknown> => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      if (property === 'lock') {
        return async (handle: FileHandle, ...rest: unknown[]) => {
          if (armed === 'before-lock' && isKernel(handle)) return stop('before-lock');
          const result = await call(handle, ...rest);
          if (armed === 'after-lock' && isKernel(handle)) return stop('after-lock');
          return result;
        };
      }
      if (property === 'write') {
        return async (handle: FileHandle, position: number, data: Uint8Array) => {
          const headerWrite = isKernel(handle) && (position === 0 || position === headerCopySize) && data.length <= headerCopySize;
          if (armed === 'torn-header-write' && headerWrite) {
            await call(handle, position, data.subarray(0, tornHeaderBytes));
            return stop('torn-header-write');
          }
          const result = await call(handle, position, data);
          if (armed === 'after-slot-area-write' && isKernel(handle) && position >= headerRegionSize) return stop('after-slot-area-write');
          return result;
        };
      }
      if (property === 'unlink') {
        return async (path: string) => {
          const result = await call(path);
          if (armed === 'after-body-unlink' && isBody(path)) return stop('after-body-unlink');
          return result;
        };
      }
      return call;
    },
  });
  return { fs, arm: (point) => void (armed = point) };
}

/**
 * Deliberately broken engines, for tests only: each plants one bug that the checkers must find.
 * Production code has no switch for any of them; they are built here from the outside, as a
 * subclass of QueueClient or as a wrapper around a client's ports (a "bad redirector").
 */

import { isNasqError, sessionLostCodes } from '../../engine/errors.js';
import { SlotState, headerRegionSize, type Slot } from '../../engine/format.js';
import type { ByteRange, FileHandle, FileSystem, LockOptions, Ports } from '../../engine/ports.js';
import { QueueClient, type Receipt } from '../../engine/queue.js';
import type { RunOptions } from '../run.js';

function delegate(inner: FileSystem): FileSystem {
  return {
    open: (path, options) => inner.open(path, options),
    close: (handle) => inner.close(handle),
    read: (handle, position, length) => inner.read(handle, position, length),
    write: (handle, position, data) => inner.write(handle, position, data),
    sync: (handle) => inner.sync(handle),
    truncate: (handle, length) => inner.truncate(handle, length),
    lock: (handle, range, options) => inner.lock(handle, range, options),
    unlock: (handle, range) => inner.unlock(handle, range),
    readFile: (path) => inner.readFile(path),
    writeFile: (path, data, options) => inner.writeFile(path, data, options),
    stat: (path) => inner.stat(path),
    setTimes: (path, atimeMs, mtimeMs) => inner.setTimes(path, atimeMs, mtimeMs),
    rename: (from, to) => inner.rename(from, to),
    unlink: (path) => inner.unlink(path),
    readdir: (path) => inner.readdir(path),
    mkdir: (path, options) => inner.mkdir(path, options),
    watch: (directory, filter) => inner.watch(directory, filter),
    unwatch: (watch) => inner.unwatch(watch),
  };
}

const isKernel = (handle: FileHandle): boolean => handle.path.endsWith('kernel');

/** Bug: receive (and everything else) without the header lock: lock and unlock do nothing. */
export function withoutHeaderLock(ports: Ports): Ports {
  const fs = delegate(ports.fs);
  fs.lock = async (handle, range, options) => (isKernel(handle) ? undefined : ports.fs.lock(handle, range, options));
  fs.unlock = async (handle, range) => (isKernel(handle) ? undefined : ports.fs.unlock(handle, range));
  return { fs, clock: ports.clock };
}

/** Bug: unlock before the header write reaches the file (a write-behind cache that flushes late). */
export function unlockBeforeHeaderWrite(ports: Ports): Ports {
  const fs = delegate(ports.fs);
  const held = new Map<FileHandle, Array<{ position: number; data: Uint8Array }>>();
  fs.write = async (handle, position, data) => {
    if (isKernel(handle) && position < headerRegionSize) {
      const list = held.get(handle) ?? [];
      list.push({ position, data });
      held.set(handle, list);
      return;
    }
    await ports.fs.write(handle, position, data);
  };
  fs.unlock = async (handle, range) => {
    await ports.fs.unlock(handle, range);
    const list = held.get(handle) ?? [];
    held.delete(handle);
    for (const write of list) await ports.fs.write(handle, write.position, write.data);
  };
  return { fs, clock: ports.clock };
}

/**
 * Bug: carry on after the lock was lost with a dropped session: like a redirector that reopens a
 * dead handle behind the engine's back and retries the call, without taking the lock again.
 */
export function carryOnAfterLostSession(ports: Ports): Ports {
  const fs = delegate(ports.fs);
  const replacement = new Map<FileHandle, FileHandle>();
  const current = (handle: FileHandle): FileHandle => replacement.get(handle) ?? handle;
  const retry = async <T>(handle: FileHandle, call: (live: FileHandle) => Promise<T>): Promise<T> => {
    try {
      return await call(current(handle));
    } catch (error) {
      if (!isNasqError(error, ...sessionLostCodes)) throw error;
      const reopened = await ports.fs.open(handle.path);
      replacement.set(handle, reopened);
      return call(reopened);
    }
  };
  fs.read = (handle, position, length) => retry(handle, (live) => ports.fs.read(live, position, length));
  fs.write = (handle, position, data) => retry(handle, (live) => ports.fs.write(live, position, data));
  fs.sync = (handle) => retry(handle, (live) => ports.fs.sync(live));
  // Lock and unlock go to the reopened handle too, as the redirector resends them; an unlock of a
  // lock the new handle never took fails quietly.
  fs.lock = (handle: FileHandle, range: ByteRange, options?: LockOptions) => retry(handle, (live) => ports.fs.lock(live, range, options));
  fs.unlock = async (handle, range) => {
    try {
      await retry(handle, (live) => ports.fs.unlock(live, range));
    } catch (error) {
      if (!isNasqError(error, 'RANGE_NOT_LOCKED')) throw error;
    }
  };
  fs.close = (handle) => retry(handle, (live) => ports.fs.close(live));
  return { fs, clock: ports.clock };
}

/**
 * Bug: free the slot before the body is deleted: the ack's unlink of the body is put off until
 * after the lock cycle that frees the slot. A crash in between leaves the body of an acked
 * message behind, which a repair would deliver again.
 */
export function freeSlotBeforeBodyDeleted(ports: Ports): Ports {
  const fs = delegate(ports.fs);
  let lockedKernel = false;
  const deferred: string[] = [];
  fs.lock = async (handle, range, options) => {
    await ports.fs.lock(handle, range, options);
    if (isKernel(handle)) lockedKernel = true;
  };
  fs.unlink = async (path) => {
    if (lockedKernel && path.includes('/msg/')) {
      deferred.push(path);
      return;
    }
    await ports.fs.unlink(path);
  };
  fs.unlock = async (handle, range) => {
    await ports.fs.unlock(handle, range);
    if (!isKernel(handle)) return;
    lockedKernel = false;
    for (const path of deferred.splice(0)) {
      try {
        await ports.fs.unlink(path);
      } catch (error) {
        if (!isNasqError(error, 'NOT_FOUND')) throw error;
      }
    }
  };
  return { fs, clock: ports.clock };
}

/** Bug: ack and release without the fencing check. */
export class UnfencedQueueClient extends QueueClient {
  protected override leaseHolds(slot: Slot, receipt: Receipt): boolean {
    return slot.state === SlotState.pending && slot.flags === 0 && receipt.id.length > 0;
  }
}

/** Bug: deliver without checking the delivery time. */
export class EagerQueueClient extends QueueClient {
  protected override isDue(): boolean {
    return true;
  }
}

export const plantedBugs: Record<string, { readonly description: string; readonly runOptions: RunOptions }> = {
  'no-header-lock': { description: 'receive without the header lock', runOptions: { wrapPorts: withoutHeaderLock } },
  'unlock-before-write': { description: 'unlock before the header write reaches the file', runOptions: { wrapPorts: unlockBeforeHeaderWrite } },
  'no-fencing': { description: 'ack without the fencing check', runOptions: { clientClass: UnfencedQueueClient } },
  'carry-on-after-session-loss': {
    description: 'carrying on after the lock was lost with a dropped session',
    runOptions: { wrapPorts: carryOnAfterLostSession },
  },
  'no-delivery-time-check': { description: 'delivering without checking the delivery time', runOptions: { clientClass: EagerQueueClient } },
  'free-before-body-delete': { description: 'freeing a slot before its body is deleted', runOptions: { wrapPorts: freeSlotBeforeBodyDeleted } },
};

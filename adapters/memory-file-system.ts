/**
 * An in-memory FileSystem: memfs for files and directories, plus a lock table with SMB
 * semantics (adapters/lock-table.ts): the owner of a lock is the handle, and a read or write
 * that overlaps another handle's lock fails at once with LOCK_CONFLICT.
 *
 * Several queue clients in one process can share one MemoryFileSystem: each open is its own
 * lock owner, exactly as two opens on a CIFS share.
 */

import { Volume } from 'memfs';
import { NasqError, assert } from '../engine/errors.js';
import type {
  ByteRange,
  Clock,
  FileHandle,
  FileStat,
  FileSystem,
  LockOptions,
  OpenOptions,
  WatchFilter,
  WatchHandle,
  WriteFileOptions,
  UnlinkOptions,
  RenameOptions,
} from '../engine/ports.js';
import { isReadBuffer } from '../engine/ports.js';
import { LockTable } from './lock-table.js';
import { WatchQueue, type WatchEventKind } from './watch-queue.js';

export interface MemoryFileSystemOptions {
  /** Clock for bounded lock waits and for the times of writes. Required for `waitMs` > 0. */
  readonly clock?: Clock;
  /** Events a watch keeps before it reports overflow. Default 64. */
  readonly watchCapacity?: number;
}

class MemoryHandle implements FileHandle {
  closed = false;
  constructor(
    readonly path: string,
    readonly id: number,
    readonly descriptor: number,
  ) {}
}

interface Waiter {
  resolve(): void;
  reject(error: NasqError): void;
}

/** No real open owns this: whole-file reads and writes check it against every lock. */
const anonymousOwner = -1;

function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function parentOf(path: string): string {
  const index = path.lastIndexOf('/');
  return index <= 0 ? '/' : path.slice(0, index);
}

function mapError(error: unknown, path: string): never {
  const code = (error as { code?: string } | null)?.code;
  switch (code) {
    case 'ENOENT':
      throw new NasqError('NOT_FOUND', `${path}: no such file or directory`, { cause: error });
    case 'EEXIST':
      throw new NasqError('EXISTS', `${path}: already exists`, { cause: error });
    case 'EBADF':
      throw new NasqError('CLOSED_HANDLE', `${path}: the handle is closed`, { cause: error });
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ENOTEMPTY':
      throw new NasqError('INVALID_ARGUMENT', `${path}: ${code}`, { cause: error });
    default:
      throw new NasqError('IO_ERROR', `${path}: ${String((error as Error)?.message ?? error)}`, { cause: error });
  }
}

export class MemoryFileSystem implements FileSystem {
  readonly volume = new Volume();
  private readonly locks = new Map<string, LockTable<Waiter>>();
  private readonly watches = new Map<string, Set<WatchQueue>>();
  private readonly clock: Clock | undefined;
  private readonly watchCapacity: number;
  private nextHandleId = 1;

  constructor(options: MemoryFileSystemOptions = {}) {
    this.clock = options.clock;
    this.watchCapacity = options.watchCapacity ?? 64;
    if (!Number.isInteger(this.watchCapacity) || this.watchCapacity < 1) {
      throw new NasqError('INVALID_ARGUMENT', `watchCapacity: expected an integer >= 1, got ${String(options.watchCapacity)}`);
    }
  }

  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    const name = normalize(path);
    const exists = this.volume.existsSync(name);
    if (!exists && options.create !== true) throw new NasqError('NOT_FOUND', `${path}: no such file`);
    if (exists && options.create === true && options.exclusive === true) throw new NasqError('EXISTS', `${path}: already exists`);
    let descriptor: number;
    try {
      descriptor = this.volume.openSync(name, exists ? 'r+' : 'w+');
    } catch (error) {
      mapError(error, path);
    }
    if (!exists) {
      this.touch(name);
      this.notify(name, 'fileName');
    }
    return new MemoryHandle(name, this.nextHandleId++, descriptor);
  }

  async close(handle: FileHandle): Promise<void> {
    const open = this.live(handle);
    open.closed = true;
    this.volume.closeSync(open.descriptor);
    const table = this.locks.get(open.path);
    if (table === undefined) return;
    const { granted, dropped } = table.releaseOwner(open.id);
    for (const waiter of dropped) waiter.token.reject(new NasqError('RANGE_NOT_LOCKED', `${open.path}: the waiting handle closed`));
    for (const waiter of granted) waiter.token.resolve();
  }

  async read(handle: FileHandle, position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const open = this.live(handle);
    this.checkAccess(open.path, open.id, position, length, 'read');
    if (!isReadBuffer(into, length)) {
      throw new NasqError('INVALID_ARGUMENT', `read: into must be a Uint8Array of at least ${length} bytes`);
    }
    const buffer = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    const count = this.volume.readSync(open.descriptor, buffer, 0, length, position);
    return count === length ? buffer : buffer.subarray(0, count);
  }

  async write(handle: FileHandle, position: number, data: Uint8Array): Promise<void> {
    const open = this.live(handle);
    this.checkAccess(open.path, open.id, position, data.length, 'write');
    const before = this.volume.fstatSync(open.descriptor).size;
    this.volume.writeSync(open.descriptor, data, 0, data.length, position);
    this.touch(open.path);
    if (position + data.length > before) this.notify(open.path, 'size');
  }

  async sync(handle: FileHandle): Promise<void> {
    this.live(handle);
  }

  async truncate(handle: FileHandle, length: number): Promise<void> {
    const open = this.live(handle);
    this.checkAccess(open.path, open.id, Math.min(length, this.volume.fstatSync(open.descriptor).size), Number.MAX_SAFE_INTEGER, 'write');
    this.volume.ftruncateSync(open.descriptor, length);
    this.notify(open.path, 'size');
  }

  async lock(handle: FileHandle, range: ByteRange, options: LockOptions = {}): Promise<void> {
    const open = this.live(handle);
    const mode = options.mode ?? 'exclusive';
    const waitMs = options.waitMs ?? 0;
    const table = this.tableOf(open.path);
    const attempt = table.tryLock(open.id, range.offset, range.length, mode);
    if (attempt === 'granted') return;
    if (attempt === 'invalid') {
      throw new NasqError('INVALID_LOCK_RANGE', `${open.path}: range ${range.offset}+${range.length} is invalid`);
    }
    if (waitMs <= 0) throw new NasqError('LOCK_NOT_GRANTED', `${open.path}: range ${range.offset}+${range.length} is locked by another open`);
    const clock = this.clock;
    if (clock === undefined) throw new NasqError('INVALID_ARGUMENT', 'a bounded lock wait needs a clock: pass one to MemoryFileSystem');
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const waiter: Waiter = {
        resolve: () => {
          if (settled) return;
          settled = true;
          resolve();
        },
        reject: (error) => {
          if (settled) return;
          settled = true;
          reject(error);
        },
      };
      table.enqueue(open.id, range.offset, range.length, mode, waiter);
      void clock.sleepUntil(clock.now() + waitMs).then(() => {
        if (settled) return;
        const { cancelled, granted } = table.cancel(waiter);
        for (const other of granted) other.token.resolve();
        if (cancelled) {
          waiter.reject(new NasqError('LOCK_NOT_GRANTED', `${open.path}: range ${range.offset}+${range.length} still locked after ${waitMs} ms`));
        }
      });
    });
  }

  async unlock(handle: FileHandle, range: ByteRange): Promise<void> {
    const open = this.live(handle);
    const granted = this.tableOf(open.path).unlock(open.id, range.offset, range.length);
    if (granted === undefined) {
      throw new NasqError('RANGE_NOT_LOCKED', `${open.path}: this open holds no lock at ${range.offset}+${range.length}`);
    }
    for (const waiter of granted) waiter.token.resolve();
  }

  async readFile(path: string): Promise<Uint8Array> {
    const name = normalize(path);
    let bytes: Uint8Array;
    try {
      bytes = this.volume.readFileSync(name) as Uint8Array;
    } catch (error) {
      mapError(error, path);
    }
    this.checkAccess(name, anonymousOwner, 0, bytes.length, 'read');
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  async writeFile(path: string, data: Uint8Array, options: WriteFileOptions = {}): Promise<void> {
    const name = normalize(path);
    const existed = this.volume.existsSync(name);
    if (existed) this.checkAccess(name, anonymousOwner, 0, Number.MAX_SAFE_INTEGER, 'write');
    try {
      this.volume.writeFileSync(name, data, { flag: options.exclusive === true ? 'wx' : 'w' });
    } catch (error) {
      mapError(error, path);
    }
    this.touch(name);
    this.notify(name, existed ? 'size' : 'fileName');
  }

  async stat(path: string): Promise<FileStat> {
    const name = normalize(path);
    try {
      const stats = this.volume.statSync(name);
      return { size: Number(stats.size), mtimeMs: Number(stats.mtimeMs), isDirectory: stats.isDirectory() };
    } catch (error) {
      mapError(error, path);
    }
  }

  async setTimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    const name = normalize(path);
    try {
      this.volume.utimesSync(name, atimeMs / 1000, mtimeMs / 1000);
    } catch (error) {
      mapError(error, path);
    }
    this.notify(name, 'lastWrite');
    this.notify(name, 'attributes');
  }

  /** In memory there is nothing to flush: `sync` changes nothing. */
  async rename(from: string, to: string, _options?: RenameOptions): Promise<void> {
    const source = normalize(from);
    const target = normalize(to);
    if (this.volume.existsSync(target)) throw new NasqError('EXISTS', `${to}: already exists`);
    try {
      this.volume.renameSync(source, target);
    } catch (error) {
      mapError(error, from);
    }
    this.notify(source, 'fileName');
    this.notify(target, 'fileName');
  }

  /** In memory there is nothing to flush: `sync` changes nothing. */
  async unlink(path: string, _options?: UnlinkOptions): Promise<void> {
    const name = normalize(path);
    try {
      this.volume.unlinkSync(name);
    } catch (error) {
      mapError(error, path);
    }
    this.notify(name, 'fileName');
  }

  async readdir(path: string): Promise<string[]> {
    try {
      return (this.volume.readdirSync(normalize(path)) as string[]).map(String).sort();
    } catch (error) {
      mapError(error, path);
    }
  }

  async mkdir(path: string, options: { readonly recursive?: boolean } = {}): Promise<void> {
    const name = normalize(path);
    try {
      this.volume.mkdirSync(name, { recursive: options.recursive === true });
    } catch (error) {
      mapError(error, path);
    }
  }

  async watch(directory: string, filter: WatchFilter): Promise<WatchHandle> {
    const name = normalize(directory);
    let isDirectory = false;
    try {
      isDirectory = this.volume.statSync(name).isDirectory();
    } catch (error) {
      mapError(error, directory);
    }
    // SMB CHANGE_NOTIFY works on directory handles only (on a file: STATUS_INVALID_PARAMETER).
    if (!isDirectory) throw new NasqError('INVALID_ARGUMENT', `${directory}: a watch needs a directory`);
    const watch = new WatchQueue(name, filter, this.watchCapacity);
    let set = this.watches.get(name);
    if (set === undefined) this.watches.set(name, (set = new Set()));
    set.add(watch);
    return watch;
  }

  async unwatch(watch: WatchHandle): Promise<void> {
    assert(watch instanceof WatchQueue, 'unwatch: not a watch of this file system');
    this.watches.get(watch.path)?.delete(watch);
    watch.close();
  }

  /** Who holds which lock on a file: for tests and inspection. */
  locksOf(path: string): ReadonlyArray<{ owner: number; offset: number; length: number; mode: string }> {
    return this.locks.get(normalize(path))?.held() ?? [];
  }

  private live(handle: FileHandle): MemoryHandle {
    assert(handle instanceof MemoryHandle, 'not a handle of this file system');
    if (handle.closed) throw new NasqError('CLOSED_HANDLE', `${handle.path}: the handle is closed`);
    return handle;
  }

  private tableOf(path: string): LockTable<Waiter> {
    let table = this.locks.get(path);
    if (table === undefined) this.locks.set(path, (table = new LockTable<Waiter>()));
    return table;
  }

  private checkAccess(path: string, owner: number, position: number, length: number, access: 'read' | 'write'): void {
    const table = this.locks.get(path);
    if (table === undefined || length === 0) return;
    const allowed = access === 'read' ? table.canRead(owner, position, length) : table.canWrite(owner, position, length);
    if (!allowed) {
      throw new NasqError('LOCK_CONFLICT', `${path}: ${access} of ${position}+${length} overlaps a range locked by another open`);
    }
  }

  /** Stamps a change with the clock's time (so ages agree with the clock the engine sees). */
  private touch(path: string): void {
    if (this.clock === undefined) return;
    const seconds = this.clock.now() / 1000;
    try {
      this.volume.utimesSync(path, seconds, seconds);
    } catch {
      // The file went away meanwhile: nothing to stamp.
    }
  }

  private notify(path: string, kind: WatchEventKind): void {
    const watchers = this.watches.get(parentOf(path));
    if (watchers === undefined) return;
    for (const watch of watchers) watch.push(kind);
  }
}

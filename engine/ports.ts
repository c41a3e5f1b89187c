/**
 * The engine's ports: everything the queue needs from the outside world.
 *
 * The engine touches files, time and waiting only through these interfaces. Real adapters
 * (`adapters/`) implement them with node:fs and the system clock; the simulator (`sim/`)
 * implements them with a simulated CIFS share and virtual time. The engine cannot tell the two
 * apart, so the simulator runs the production code unchanged.
 *
 * Rules every implementation follows:
 * - Operating errors are thrown as `NasqError` with a `code` (see errors.ts); nothing else is
 *   thrown for a condition of the world.
 * - Paths are POSIX-style ('/'-separated). Relative paths are relative to the file system's root.
 * - A `FileHandle` is an open: the owner of byte-range locks (SMB semantics, not POSIX).
 * - Every method that returns a promise is one "port call": the unit the benchmarks count and the
 *   simulator schedules. A client has at most one port call outstanding at a time.
 */

/** An open file. Opaque to the engine except for its path. */
export interface FileHandle {
  readonly path: string;
}

/** A directory watch (SMB CHANGE_NOTIFY on a directory handle). */
export interface WatchHandle {
  readonly path: string;
}

export type LockMode = 'exclusive' | 'shared';

export interface ByteRange {
  /** First byte of the range. */
  readonly offset: number;
  /**
   * Number of bytes; the last byte is offset + length - 1. A zero-length lock at 0 never
   * conflicts; one at N > 0 conflicts with another open's lock holding bytes N - 1 and N
   * (MS-FSA 2.1.4.10; the node adapter cannot ask fcntl for it across processes and lets it be).
   */
  readonly length: number;
}

export interface LockOptions {
  /** Default 'exclusive'. */
  readonly mode?: LockMode;
  /**
   * How long to wait for a conflicting lock to go away, in milliseconds of the client's clock.
   * Default 0: fail immediately with LOCK_NOT_GRANTED. A positive bound queues the request (FIFO
   * at the server) and fails with LOCK_NOT_GRANTED when the bound passes (the client cancels).
   */
  readonly waitMs?: number;
}

export interface OpenOptions {
  /** Create the file if it does not exist. Default false (NOT_FOUND if missing). */
  readonly create?: boolean;
  /** With `create`: fail with EXISTS if the file exists. Default false. */
  readonly exclusive?: boolean;
  /**
   * Ask for a durable handle: it survives a short disconnect and keeps its locks (SMB2 durable
   * handle v2). Adapters without the notion ignore it. Default false.
   */
  readonly durable?: boolean;
}

export interface WriteFileOptions {
  /** Fail with EXISTS if the file exists. Default false (replace). */
  readonly exclusive?: boolean;
  /** Flush the file to stable storage before returning. Default false. */
  readonly sync?: boolean;
}

export interface UnlinkOptions {
  /**
   * Flush the directory's entries (this removal, and any earlier one in the same directory) to
   * stable storage before returning. A name that is already gone still gets the flush (it may
   * have been removed by a call that died before its own flush), then NOT_FOUND. Default false.
   */
  readonly sync?: boolean;
}

export interface RenameOptions {
  /**
   * Flush the directories of both names to stable storage before returning. A rename that finds
   * its source gone (NOT_FOUND) or its target there (EXISTS), as a repeat of a rename that died
   * before its flush would, still gets the flush, then the error. Default false.
   */
  readonly sync?: boolean;
}

export interface FileStat {
  readonly size: number;
  /** Last write time in milliseconds since the epoch, at the file system's granularity. */
  readonly mtimeMs: number;
  readonly isDirectory: boolean;
}

/** What a watch can be told to report (SMB2 CHANGE_NOTIFY completion filter). */
export interface WatchFilter {
  readonly fileName?: boolean;
  readonly attributes?: boolean;
  readonly size?: boolean;
  readonly lastWrite?: boolean;
}

/** The result of waiting on a watch. 'overflow' means events were dropped: re-check everything. */
export type WaitResult = 'changed' | 'timeout' | 'overflow';

/** Whether `into` is usable as FileSystem.read's buffer for `length` bytes (or absent). */
export function isReadBuffer(into: unknown, length: number): boolean {
  return into === undefined || (into instanceof Uint8Array && into.length >= length);
}

/** An asynchronous file system with SMB-style byte-range locks. */
export interface FileSystem {
  open(path: string, options?: OpenOptions): Promise<FileHandle>;
  /** Closes the open and releases every lock it holds. */
  close(handle: FileHandle): Promise<void>;
  /**
   * Positioned read. Returns fewer bytes than asked at end of file.
   *
   * `into`, if given (at least `length` bytes), is a buffer the file system may read into and
   * return (or a view of its start) instead of a new one: a caller that reads the same region
   * again and again saves an allocation and writes into memory that is warm. The caller uses the
   * returned bytes either way (an implementation may ignore `into`), and neither reads nor
   * changes `into` until the call settles.
   */
  read(handle: FileHandle, position: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Positioned write; extends the file with zeros if position is past its end. */
  write(handle: FileHandle, position: number, data: Uint8Array): Promise<void>;
  /** Flushes the file's written data to stable storage. */
  sync(handle: FileHandle): Promise<void>;
  truncate(handle: FileHandle, length: number): Promise<void>;
  lock(handle: FileHandle, range: ByteRange, options?: LockOptions): Promise<void>;
  /** Must name exactly the offset and length of a lock this open holds. */
  unlock(handle: FileHandle, range: ByteRange): Promise<void>;

  /** Whole-file read (open, read, close as one call). */
  readFile(path: string): Promise<Uint8Array>;
  /** Whole-file write (create or replace, write, close as one call). */
  writeFile(path: string, data: Uint8Array, options?: WriteFileOptions): Promise<void>;
  stat(path: string): Promise<FileStat>;
  /** Sets the times explicitly; an explicit change of the last write time wakes watchers. */
  setTimes(path: string, atimeMs: number, mtimeMs: number): Promise<void>;
  /** Renames a file; fails with EXISTS if `to` exists. */
  rename(from: string, to: string, options?: RenameOptions): Promise<void>;
  unlink(path: string, options?: UnlinkOptions): Promise<void>;
  /** Names in a directory, sorted. */
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<void>;

  /**
   * Starts watching a directory. Changes between two waits are queued; as on SMB, a watch is
   * armed by its first wait, so what changes before that is not reported.
   */
  watch(directory: string, filter: WatchFilter): Promise<WatchHandle>;
  unwatch(watch: WatchHandle): Promise<void>;
}

/** Time, seen from one client. */
export interface Clock {
  /** Milliseconds since the epoch on this client's clock (which may be skewed). Not a port call. */
  now(): number;
  /** Resolves when `now()` has reached `timeMs` (at once if it already has). */
  sleepUntil(timeMs: number): Promise<void>;
  /**
   * Waits until the watched directory reports a change, or until `now()` reaches `untilMs`.
   * A change that happened since the previous wait on the same watch returns at once.
   */
  waitForChange(watch: WatchHandle, untilMs: number): Promise<WaitResult>;
}

/** What a queue client is given to reach the world. */
export interface Ports {
  readonly fs: FileSystem;
  readonly clock: Clock;
}

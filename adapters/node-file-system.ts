/**
 * NodeFileSystem: the engine's FileSystem port over node:fs/promises, with real byte-range locks
 * through os-lock (fcntl F_SETLK on Linux and macOS).
 *
 * The port promises SMB semantics: the owner of a lock is the *open*, locks are mandatory, and
 * closing one open releases only that open's locks. POSIX fcntl locks give something else: the
 * owner is the *process*, two descriptors of one process never exclude each other, and closing
 * ANY descriptor of a file silently drops ALL the process's locks on that file. This module
 * bridges the two in three layers:
 *
 * 1. One descriptor per file per process. A process-wide table, keyed by device and inode (so two
 *    paths to one file, or an open racing a rename, still share), keeps one real descriptor per
 *    file, reference-counted by the opens that use it (FileHandles, and the brief opens of
 *    readFile/writeFile, which would otherwise close a descriptor under a lock). Descriptors are
 *    closed only when the last open of the file closes, when this process holds no lock on it.
 *    Every open opens a descriptor first (opening never drops locks) and then identifies the file
 *    by fstat; if the file is already in the table, the new descriptor is closed at once when the
 *    process holds no fcntl lock on the file, and otherwise kept, unused, until it holds none.
 * 2. An in-process lock table per file (`LockTable`, SMB rules): two opens of this process
 *    exclude each other, exact unlock, shared-on-exclusive stacking, and the mandatory checks of
 *    reads and writes (LOCK_CONFLICT) against the other opens of this process.
 * 3. fcntl locks on the shared descriptor, for other processes. After every change of the table,
 *    the process's fcntl state is brought to "exclusive where any open of this process holds an
 *    exclusive lock, shared where it holds only shared ones, unlocked elsewhere", changing only
 *    the bytes that differ (fcntl merges and splits ranges by byte, so releasing one open's range
 *    must not unlock bytes another open of this process still covers, and adding a shared lock
 *    on top of an exclusive one must not downgrade it). A request that would have to raise the
 *    fcntl state where another process holds a conflicting lock is refused and rolled back.
 *
 * Lock waits (`waitMs` > 0) poll with fail-immediately requests and exponential backoff, and are
 * woken early when an open of this process releases. The blocking F_SETLKW is never used: it
 * would park a libuv thread-pool thread (four by default, shared with every fs call) for as long
 * as the wait lasts, and it cannot be cancelled when the bound passes. Waiters inside the
 * process are served first in, first out; across processes there is no order.
 *
 * What fcntl cannot give (see the report in docs and the tests):
 * - Across processes, locks are advisory: another process's reads and writes are not refused.
 *   Mandatory LOCK_CONFLICT holds between opens of this process only.
 * - No FIFO across processes, and a waiter learns of a release only at its next poll.
 * - A process that dies loses its locks at once (the kernel releases them); there are no durable
 *   handles, so `OpenOptions.durable` is ignored.
 * - Windows (LockFileEx) is not supported by this bridge yet: LockFileEx cannot split, merge or
 *   convert ranges, which layer 3 relies on. There, one real handle per open would give SMB
 *   semantics directly.
 */

import { constants as fsConstants, type BigIntStats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { performance } from 'node:perf_hooks';
import { lock as osLock, unlock as osUnlock } from 'os-lock';
import { assert, NasqError, isNasqError } from '../engine/errors.js';
import type {
  ByteRange,
  FileHandle,
  FileStat,
  FileSystem,
  LockMode,
  LockOptions,
  OpenOptions,
  WatchFilter,
  WatchHandle,
  WriteFileOptions,
  UnlinkOptions,
  RenameOptions,
} from '../engine/ports.js';
import { isReadBuffer } from '../engine/ports.js';
import { isValidRange, LockTable, type HeldLock } from './lock-table.js';
import { NodeDirectoryWatch } from './node-directory-watch.js';
import { errnoOf, isLockBusyError, nasqErrorFromNode } from './node-errors.js';

export { errnoToErrorCode, nasqErrorFromNode } from './node-errors.js';
export { NodeDirectoryWatch } from './node-directory-watch.js';

export interface NodeFileSystemOptions {
  /** First pause between two attempts of a lock held by another process, in ms. Default 1. */
  readonly lockPollIntervalMsMin?: number;
  /** Longest pause between two attempts (the backoff doubles up to it), in ms. Default 50. */
  readonly lockPollIntervalMsMax?: number;
  /** Most locks this process may hold on one file, over all its opens. Default 1024. */
  readonly locksPerFileMax?: number;
  /** Pause between two polls of a watched directory, in ms. Default 250. */
  readonly watchPollIntervalMs?: number;
  /** Most entries of a watched directory a poll stats (the first in sorted order). Default 1024. */
  readonly watchPollEntriesMax?: number;
  /** Most changes a watch queues between two waits before it reports 'overflow'. Default 1024. */
  readonly watchQueueEventsMax?: number;
  /** Use fs.watch (inotify, FSEvents) besides polling. Default true. */
  readonly watchNative?: boolean;
}

const defaultOptions: Required<NodeFileSystemOptions> = {
  lockPollIntervalMsMin: 1,
  lockPollIntervalMsMax: 50,
  locksPerFileMax: 1024,
  watchPollIntervalMs: 250,
  watchPollEntriesMax: 1024,
  watchQueueEventsMax: 1024,
  watchNative: true,
};

/** Upper bound on a single wait for a lock, in ms (a day); longer bounds are rejected. */
const lockWaitMsMax = 24 * 60 * 60 * 1000;

/** How often an open retries when it finds its file's descriptors being closed. */
const openAttemptsMax = 16;

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null) {
    return String(value);
  }
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

function invalidArgument(operation: string, name: string, expected: string, given: unknown): NasqError {
  return new NasqError('INVALID_ARGUMENT', `${operation}: ${name}: expected ${expected}, given ${describeValue(given)}`, {
    details: { operation, name, expected, given },
  });
}

function validateOptions(options: NodeFileSystemOptions): Required<NodeFileSystemOptions> {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('NodeFileSystem', 'options', 'an object', options);
  }
  for (const name of Object.keys(options)) {
    if (!(name in defaultOptions)) {
      throw invalidArgument('NodeFileSystem', `option ${name}`, `one of ${Object.keys(defaultOptions).join(', ')}`, name);
    }
  }
  const merged = { ...defaultOptions, ...options };
  const positiveNumber = (name: keyof NodeFileSystemOptions): void => {
    const value = merged[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw invalidArgument('NodeFileSystem', `option ${name}`, 'a positive finite number', value);
    }
  };
  const positiveInteger = (name: keyof NodeFileSystemOptions): void => {
    const value = merged[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw invalidArgument('NodeFileSystem', `option ${name}`, 'a positive integer', value);
    }
  };
  positiveNumber('lockPollIntervalMsMin');
  positiveNumber('lockPollIntervalMsMax');
  positiveInteger('locksPerFileMax');
  positiveNumber('watchPollIntervalMs');
  positiveInteger('watchPollEntriesMax');
  positiveInteger('watchQueueEventsMax');
  if (typeof merged.watchNative !== 'boolean') {
    throw invalidArgument('NodeFileSystem', 'option watchNative', 'a boolean', merged.watchNative);
  }
  if (merged.lockPollIntervalMsMax < merged.lockPollIntervalMsMin) {
    throw invalidArgument(
      'NodeFileSystem',
      'option lockPollIntervalMsMax',
      `at least lockPollIntervalMsMin (${merged.lockPollIntervalMsMin})`,
      merged.lockPollIntervalMsMax,
    );
  }
  return merged;
}

/** Runs asynchronous tasks one after another, in the order they were submitted. */
class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// Layer 3: the process's fcntl state, as sorted disjoint segments.

/** The fcntl lock this process holds on the bytes [start, end). */
interface OsLockSegment {
  readonly start: number;
  readonly end: number;
  readonly mode: LockMode;
}

type OsLockState = LockMode | 'none';

const osLockRank: Readonly<Record<OsLockState, number>> = { none: 0, shared: 1, exclusive: 2 };

function mergeSegments(segments: OsLockSegment[]): OsLockSegment[] {
  const merged: OsLockSegment[] = [];
  for (const segment of segments) {
    if (segment.end <= segment.start) continue;
    const last = merged[merged.length - 1];
    if (last !== undefined && last.end === segment.start && last.mode === segment.mode) {
      merged[merged.length - 1] = { start: last.start, end: segment.end, mode: last.mode };
    } else {
      assert(last === undefined || last.end <= segment.start, 'fcntl segments must be sorted and disjoint');
      merged.push(segment);
    }
  }
  return merged;
}

/** The fcntl state the in-process locks call for: each byte at the strongest mode covering it. */
function desiredOsSegments(locks: readonly HeldLock[]): OsLockSegment[] {
  const edges: { at: number; shared: number; exclusive: number }[] = [];
  for (const lock of locks) {
    // A zero-length lock is not asked of fcntl (length 0 means "to the end of the file" there):
    // across processes it conflicts with nothing (in-process the LockTable's MS-FSA rule holds).
    if (lock.length === 0) continue;
    const end = lock.offset + lock.length;
    assert(Number.isSafeInteger(end), 'lock ranges end at a safe integer (validateRange)');
    const shared = lock.mode === 'shared' ? 1 : 0;
    const exclusive = lock.mode === 'exclusive' ? 1 : 0;
    edges.push({ at: lock.offset, shared, exclusive }, { at: end, shared: -shared, exclusive: -exclusive });
  }
  edges.sort((left, right) => left.at - right.at);
  const segments: OsLockSegment[] = [];
  let shared = 0;
  let exclusive = 0;
  for (let index = 0; index < edges.length; index += 1) {
    const edge = edges[index]!;
    shared += edge.shared;
    exclusive += edge.exclusive;
    const next = edges[index + 1];
    if (next === undefined || next.at === edge.at) continue;
    if (exclusive > 0) segments.push({ start: edge.at, end: next.at, mode: 'exclusive' });
    else if (shared > 0) segments.push({ start: edge.at, end: next.at, mode: 'shared' });
  }
  assert(shared === 0 && exclusive === 0, 'lock edges must balance');
  return mergeSegments(segments);
}

/** The state of one byte in sorted disjoint segments. */
function stateAt(segments: readonly OsLockSegment[], at: number): OsLockState {
  for (const segment of segments) {
    if (segment.start > at) break;
    if (at < segment.end) return segment.mode;
  }
  return 'none';
}

interface OsLockChange {
  readonly start: number;
  readonly end: number;
  readonly from: OsLockState;
  readonly to: OsLockState;
}

/** The ranges whose fcntl state must change to go from `current` to `desired`. */
function osLockChanges(current: readonly OsLockSegment[], desired: readonly OsLockSegment[]): OsLockChange[] {
  const points = [...new Set([...current, ...desired].flatMap((segment) => [segment.start, segment.end]))].sort(
    (left, right) => left - right,
  );
  const changes: OsLockChange[] = [];
  for (let index = 0; index + 1 < points.length; index += 1) {
    const start = points[index]!;
    const end = points[index + 1]!;
    const from = stateAt(current, start);
    const to = stateAt(desired, start);
    if (from === to) continue;
    const last = changes[changes.length - 1];
    if (last !== undefined && last.end === start && last.from === from && last.to === to) {
      changes[changes.length - 1] = { ...last, end };
    } else {
      changes.push({ start, end, from, to });
    }
  }
  return changes;
}

/** `segments` with [start, end) set to `state`. */
function withState(segments: readonly OsLockSegment[], start: number, end: number, state: OsLockState): OsLockSegment[] {
  const result: OsLockSegment[] = [];
  for (const segment of segments) {
    if (segment.end <= start || segment.start >= end) {
      result.push(segment);
      continue;
    }
    if (segment.start < start) result.push({ start: segment.start, end: start, mode: segment.mode });
    if (segment.end > end) result.push({ start: end, end: segment.end, mode: segment.mode });
  }
  if (state !== 'none') result.push({ start, end, mode: state });
  result.sort((left, right) => left.start - right.start);
  return mergeSegments(result);
}

async function applyOsLockChange(descriptor: number, change: OsLockChange): Promise<void> {
  const length = change.end - change.start;
  assert(length > 0, 'an fcntl change covers at least one byte (length 0 would mean "to the end")');
  if (change.to === 'none') {
    await osUnlock(descriptor, change.start, length);
  } else {
    // Raising shared to exclusive, or lowering exclusive to shared, is one atomic F_SETLK: the
    // bytes never pass through "unlocked" on the way.
    await osLock(descriptor, change.start, length, { exclusive: change.to === 'exclusive', immediate: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Layer 1: one descriptor per file per process.

/** A request waiting for a lock (the in-process FIFO). */
interface LockWaitRecord {
  readonly owner: number;
  readonly offset: number;
  readonly length: number;
  readonly mode: LockMode;
  /** Ends the waiter's current pause early; replaced at every pause. */
  wake: () => void;
}

/** One file (device + inode) open in this process. */
class OpenFile {
  readonly key: string;
  /** The descriptor every open of the file reads, writes and locks through. */
  readonly primary: fs.FileHandle;
  /**
   * Descriptors opened while the file was already open here and this process held fcntl locks
   * on it. Never used for I/O; closed as soon as the process holds no fcntl lock on the file.
   */
  extraDescriptors: fs.FileHandle[] = [];
  /** Opens using this file: FileHandles plus readFile/writeFile calls in progress. */
  references = 1;
  state: 'open' | 'closing' = 'open';
  readonly closed: Promise<void>;
  resolveClosed: () => void = () => undefined;
  /** The locks of this process's opens, with SMB rules. */
  readonly locks = new LockTable<never>();
  /** What this process holds through fcntl right now. */
  osLocks: OsLockSegment[] = [];
  /** Lock, unlock and close of locks run one at a time, so the fcntl state follows the table. */
  readonly serial = new SerialQueue();
  /** Waiting lock requests, first in first. */
  readonly waiters: LockWaitRecord[] = [];

  constructor(key: string, primary: fs.FileHandle) {
    this.key = key;
    this.primary = primary;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /** Brings the fcntl state to what the table calls for. Throws the os-lock error of the first
   * change that fails; `osLocks` then still describes exactly what is held. */
  async synchronizeOsLocks(): Promise<void> {
    const changes = osLockChanges(this.osLocks, desiredOsSegments(this.locks.held()));
    // Lowerings first: they cannot fail and may be what a raising elsewhere needs.
    changes.sort((left, right) => {
      const leftRaises = osLockRank[left.to] > osLockRank[left.from] ? 1 : 0;
      const rightRaises = osLockRank[right.to] > osLockRank[right.from] ? 1 : 0;
      return leftRaises - rightRaises || left.start - right.start;
    });
    for (const change of changes) {
      await applyOsLockChange(this.primary.fd, change);
      this.osLocks = withState(this.osLocks, change.start, change.end, change.to);
    }
    if (this.osLocks.length === 0 && this.extraDescriptors.length > 0) {
      const extras = this.extraDescriptors;
      this.extraDescriptors = [];
      await closeQuietly(extras);
    }
  }

  /**
   * Takes a descriptor of this file opened by a later open. Runs on the serial queue, so no
   * fcntl lock can be taken meanwhile: with none held, closing it drops nothing.
   */
  async adoptDescriptor(descriptor: fs.FileHandle): Promise<void> {
    if (this.osLocks.length === 0) await closeQuietly([descriptor]);
    else this.extraDescriptors.push(descriptor);
  }

  wakeWaiters(): void {
    for (const waiter of [...this.waiters]) waiter.wake();
  }
}

/**
 * Closes descriptors that were never used for I/O, ignoring failures: nothing was written
 * through them, so a failing close loses nothing.
 */
async function closeQuietly(descriptors: readonly fs.FileHandle[]): Promise<void> {
  await Promise.allSettled(descriptors.map((descriptor) => descriptor.close()));
}

/** Every file open in this process through any NodeFileSystem, by device and inode. */
const openFiles = new Map<string, OpenFile>();

/**
 * Descriptors that could not be identified (fstat failed right after open). Closing them could
 * drop this process's locks on whatever file they are, so they are kept open; the list is only a
 * reference keeping them from the garbage collector (which would close them).
 */
const unidentifiedDescriptors: fs.FileHandle[] = [];

function fileKey(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}`;
}

/** A file joined, and its size when opened (saves an fstat). */
interface AcquiredFile {
  readonly file: OpenFile;
  readonly size: number;
}

interface OpenFileRequest {
  readonly absolutePath: string;
  readonly path: string;
  readonly operation: string;
  readonly create: boolean;
  readonly exclusive: boolean;
}

/**
 * Opens the file and joins its entry in the process table (by device and inode), or makes one.
 *
 * Opening a second descriptor of a file this process has locked is harmless; closing it is what
 * would drop the locks. So a descriptor that finds its file already in the table is handed to
 * the entry, which closes it at once if the process holds no fcntl lock on the file, and
 * otherwise keeps it until it holds none (`adoptDescriptor`, `synchronizeOsLocks`).
 */
async function acquireOpenFile(request: OpenFileRequest): Promise<AcquiredFile> {
  const { absolutePath, path, operation } = request;
  const context = { operation, path };
  const flags =
    fsConstants.O_RDWR | (request.create ? fsConstants.O_CREAT : 0) | (request.exclusive ? fsConstants.O_EXCL : 0);
  let descriptor: fs.FileHandle;
  try {
    descriptor = await fs.open(absolutePath, flags, 0o666);
  } catch (error) {
    throw nasqErrorFromNode(error, context);
  }
  let stats: BigIntStats;
  try {
    stats = await descriptor.stat({ bigint: true });
  } catch (error) {
    unidentifiedDescriptors.push(descriptor);
    throw nasqErrorFromNode(error, context);
  }
  const key = fileKey(stats);
  const size = Number(stats.size);
  for (let attempt = 0; attempt < openAttemptsMax; attempt += 1) {
    const existing = openFiles.get(key);
    if (existing === undefined) {
      const file = new OpenFile(key, descriptor);
      openFiles.set(key, file);
      return { file, size };
    }
    if (existing.state === 'open') {
      // Counted first, so the entry cannot start closing while the descriptor is handed over.
      existing.references += 1;
      await existing.serial.run(() => existing.adoptDescriptor(descriptor));
      return { file: existing, size };
    }
    // The file's old descriptors are being closed. Locks taken through this new descriptor
    // before that finishes would be dropped by it, so wait, then register.
    await existing.closed;
  }
  unidentifiedDescriptors.push(descriptor);
  throw new NasqError('IO_ERROR', `${operation} '${path}': the file kept being closed while opening it`, {
    details: { path, attempts: openAttemptsMax },
  });
}

/** Leaves the file's entry; the last one out closes the descriptors. */
async function releaseOpenFile(file: OpenFile): Promise<void> {
  assert(file.references > 0 && file.state === 'open', 'releaseOpenFile: the file is not open');
  file.references -= 1;
  if (file.references > 0) return;
  assert(file.locks.isEmpty(), 'the last open of a file left locks in the table');
  assert(file.waiters.length === 0, 'the last open of a file left lock waiters');
  file.state = 'closing';
  try {
    const results = await Promise.allSettled([file.primary, ...file.extraDescriptors].map((descriptor) => descriptor.close()));
    const failure = results.find((result) => result.status === 'rejected');
    if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
  } finally {
    assert(openFiles.get(file.key) === file, 'the table lost a closing file');
    openFiles.delete(file.key);
    file.resolveClosed();
  }
}

/** Flushes a directory's entries (a new name) to stable storage, where the platform allows it. */
async function syncDirectory(absolutePath: string): Promise<void> {
  let directory: fs.FileHandle;
  try {
    directory = await fs.open(absolutePath, fsConstants.O_RDONLY);
  } catch (error) {
    // Windows cannot open a directory this way; there is nothing more to do there.
    if (['EISDIR', 'EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP'].includes(errnoOf(error) ?? '')) return;
    throw error;
  }
  try {
    await directory.sync();
  } catch (error) {
    // Some file systems (and network mounts) refuse fsync on a directory.
    if (!['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EBADF', 'EPERM', 'EACCES'].includes(errnoOf(error) ?? '')) throw error;
  } finally {
    await directory.close();
  }
}

/**
 * Makes a change to directory entries (`change`, which throws NasqErrors) and, with `sync`,
 * flushes the directories of `paths` (each once) so that the change is on stable storage when
 * this returns. A change that fails as a repeat of one already made would (`alreadyMade`: the
 * name already gone, already moved) still gets the flush: an earlier call may have made it and
 * died before its own flush. The change's error, if any, is thrown after.
 */
async function changeNames(
  paths: readonly string[],
  sync: boolean,
  change: () => Promise<void>,
  alreadyMade: (error: unknown) => boolean,
  context: { readonly operation: string; readonly path: string },
): Promise<void> {
  let failure: unknown;
  try {
    await change();
  } catch (error) {
    failure = error;
  }
  if (sync && (failure === undefined || alreadyMade(failure))) {
    try {
      for (const directory of new Set(paths.map((path) => nodePath.dirname(path)))) await syncDirectory(directory);
    } catch (error) {
      if (failure === undefined) throw nasqErrorFromNode(error, context);
    }
  }
  if (failure !== undefined) throw failure;
}

// ---------------------------------------------------------------------------------------------
// Opens (FileHandles) and the FileSystem.

/** Owners in the lock tables: one per open, unique in the process. */
let nextOwner = 1;

interface HandleState {
  readonly owner: number;
  readonly file: OpenFile;
  closed: boolean;
  /** This open's waiting lock requests (at most one under the port's rules). */
  readonly waits: Set<LockWaitRecord>;
}

class NodeFileHandle implements FileHandle {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }
}

const handleStates = new WeakMap<FileHandle, HandleState>();

/** What the process table holds, for tests and diagnostics. */
export interface OpenFileDescription {
  /** `device:inode`. */
  readonly key: string;
  readonly references: number;
  /** Real descriptors (primary plus extras). */
  readonly descriptors: number;
  readonly locks: readonly HeldLock[];
  readonly osLocks: readonly OsLockSegment[];
}

/** Describes every file currently open in this process through a NodeFileSystem. */
export function describeOpenFiles(): OpenFileDescription[] {
  return [...openFiles.values()].map((file) => ({
    key: file.key,
    references: file.references,
    descriptors: 1 + file.extraDescriptors.length,
    locks: [...file.locks.held()],
    osLocks: [...file.osLocks],
  }));
}

export class NodeFileSystem implements FileSystem {
  /** The absolute directory relative paths resolve against. */
  readonly root: string;
  readonly options: Readonly<Required<NodeFileSystemOptions>>;
  readonly #watches = new Set<NodeDirectoryWatch>();

  /**
   * @param root Directory relative paths resolve against (absolute paths are used as given). It
   *   need not exist yet.
   */
  constructor(root: string, options: NodeFileSystemOptions = {}) {
    if (typeof root !== 'string' || root.length === 0 || root.includes('\0')) {
      throw invalidArgument('NodeFileSystem', 'root', 'a non-empty path', root);
    }
    this.root = nodePath.resolve(root);
    this.options = validateOptions(options);
  }

  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    const absolutePath = this.#resolve(path, 'open');
    const create = options.create ?? false;
    const exclusive = options.exclusive ?? false;
    if (typeof create !== 'boolean') throw invalidArgument('open', 'create', 'a boolean', create);
    if (typeof exclusive !== 'boolean') throw invalidArgument('open', 'exclusive', 'a boolean', exclusive);
    if (exclusive && !create) throw invalidArgument('open', 'exclusive', 'only together with create', exclusive);
    const { file } = await acquireOpenFile({ absolutePath, path, operation: 'open', create, exclusive });
    const handle = new NodeFileHandle(path);
    handleStates.set(handle, { owner: nextOwner++, file, closed: false, waits: new Set() });
    return handle;
  }

  async close(handle: FileHandle): Promise<void> {
    const state = this.#openState(handle, 'close');
    state.closed = true;
    // A waiting lock request of this open ends with CANCELLED.
    for (const waiter of state.waits) waiter.wake();
    const file = state.file;
    let failure: unknown;
    await file.serial.run(async () => {
      file.locks.releaseOwner(state.owner);
      try {
        await file.synchronizeOsLocks();
      } catch (error) {
        failure = error;
      } finally {
        file.wakeWaiters();
      }
    });
    try {
      await releaseOpenFile(file);
    } catch (error) {
      failure ??= error;
    }
    if (failure !== undefined) throw nasqErrorFromNode(failure, { operation: 'close', path: handle.path });
  }

  async read(handle: FileHandle, position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const state = this.#openState(handle, 'read');
    requireByteCount('read', 'position', position);
    requireByteCount('read', 'length', length);
    if (!isReadBuffer(into, length)) {
      throw invalidArgument('read', 'into', `a Uint8Array of at least ${length} bytes`, into);
    }
    if (length === 0) return new Uint8Array(0);
    if (!state.file.locks.canRead(state.owner, position, length)) {
      throw lockConflict('read', handle.path, position, length);
    }
    try {
      return await readAt(state.file.primary, position, length, into);
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'read', path: handle.path, io: true });
    }
  }

  async write(handle: FileHandle, position: number, data: Uint8Array): Promise<void> {
    const state = this.#openState(handle, 'write');
    requireByteCount('write', 'position', position);
    if (!(data instanceof Uint8Array)) throw invalidArgument('write', 'data', 'a Uint8Array', typeof data);
    if (data.length === 0) return;
    if (!state.file.locks.canWrite(state.owner, position, data.length)) {
      throw lockConflict('write', handle.path, position, data.length);
    }
    try {
      await writeAt(state.file.primary, position, data);
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'write', path: handle.path, io: true });
    }
  }

  async sync(handle: FileHandle): Promise<void> {
    const state = this.#openState(handle, 'sync');
    try {
      await state.file.primary.datasync();
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'sync', path: handle.path });
    }
  }

  /** Byte-range locks do not restrict truncation (neither NTFS nor Samba check them there). */
  async truncate(handle: FileHandle, length: number): Promise<void> {
    const state = this.#openState(handle, 'truncate');
    requireByteCount('truncate', 'length', length);
    try {
      await state.file.primary.truncate(length);
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'truncate', path: handle.path });
    }
  }

  async lock(handle: FileHandle, range: ByteRange, options: LockOptions = {}): Promise<void> {
    const state = this.#openState(handle, 'lock');
    const { offset, length } = validateRange('lock', range);
    const mode = options.mode ?? 'exclusive';
    if (mode !== 'exclusive' && mode !== 'shared') throw invalidArgument('lock', 'mode', "'exclusive' or 'shared'", mode);
    const waitMs = options.waitMs ?? 0;
    if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0 || waitMs > lockWaitMsMax) {
      throw invalidArgument('lock', 'waitMs', `a number from 0 to ${lockWaitMsMax}`, waitMs);
    }
    if (process.platform === 'win32') {
      // See the module comment: layer 3 needs fcntl's byte-wise split, merge and conversion.
      throw new NasqError('IO_ERROR', 'lock: NodeFileSystem does not support byte-range locks on Windows yet', {
        details: { platform: process.platform },
      });
    }
    const file = state.file;
    const notGranted = (holder: 'this process' | 'another process'): NasqError =>
      new NasqError('LOCK_NOT_GRANTED', `lock '${handle.path}' [${offset}, +${length}) ${mode}: held by ${holder}`, {
        details: { path: handle.path, offset, length, mode, holder, waitMs },
      });

    if (waitMs === 0) {
      const outcome = await file.serial.run(() => this.#tryLock(state, handle.path, offset, length, mode, undefined));
      if (outcome === 'granted') return;
      if (outcome === 'cancelled') throw closedHandle('lock', handle.path);
      throw notGranted(outcome === 'busy here' ? 'this process' : 'another process');
    }

    const waiter: LockWaitRecord = { owner: state.owner, offset, length, mode, wake: () => undefined };
    file.waiters.push(waiter);
    state.waits.add(waiter);
    const deadline = performance.now() + waitMs;
    let pauseMs = this.options.lockPollIntervalMsMin;
    try {
      // Bounded by the deadline: every round either returns, throws, or pauses until it nears.
      for (;;) {
        const outcome = await file.serial.run(() => this.#tryLock(state, handle.path, offset, length, mode, waiter));
        if (outcome === 'granted') return;
        if (outcome === 'cancelled') {
          throw new NasqError('CANCELLED', `lock '${handle.path}': the handle closed while the request waited`, {
            details: { path: handle.path, offset, length, mode },
          });
        }
        const remainingMs = deadline - performance.now();
        if (remainingMs <= 0) throw notGranted(outcome === 'busy here' ? 'this process' : 'another process');
        // Held here: a release in this process wakes us; the poll is only a safety net. Held by
        // another process: nobody tells us, so poll with backoff.
        await pause(waiter, Math.min(pauseMs, remainingMs));
        pauseMs = Math.min(pauseMs * 2, this.options.lockPollIntervalMsMax);
      }
    } finally {
      file.waiters.splice(file.waiters.indexOf(waiter), 1);
      state.waits.delete(waiter);
      // Later waiters may have queued behind this one.
      file.wakeWaiters();
    }
  }

  async unlock(handle: FileHandle, range: ByteRange): Promise<void> {
    const state = this.#openState(handle, 'unlock');
    const { offset, length } = validateRange('unlock', range);
    const file = state.file;
    await file.serial.run(async () => {
      if (state.closed) throw closedHandle('unlock', handle.path);
      if (file.locks.unlock(state.owner, offset, length) === undefined) {
        throw new NasqError('RANGE_NOT_LOCKED', `unlock '${handle.path}' [${offset}, +${length}): not locked by this open`, {
          details: { path: handle.path, offset, length },
        });
      }
      try {
        await file.synchronizeOsLocks();
      } catch (error) {
        // The table no longer has the lock; the fcntl state still does, and the next change of
        // this file (or its last close) retries the release.
        throw nasqErrorFromNode(error, { operation: 'unlock', path: handle.path });
      } finally {
        file.wakeWaiters();
      }
    });
  }

  async readFile(path: string): Promise<Uint8Array> {
    const absolutePath = this.#resolve(path, 'readFile');
    const { file, size } = await acquireOpenFile({ absolutePath, path, operation: 'readFile', create: false, exclusive: false });
    let result: Uint8Array | undefined;
    let failure: unknown;
    try {
      // A transient open of its own: it owns no lock, so any exclusive lock of an open of this
      // process on the file's bytes refuses it.
      const owner = nextOwner++;
      if (size > 0 && !file.locks.canRead(owner, 0, size)) throw lockConflict('readFile', path, 0, size);
      result = await readAt(file.primary, 0, size, undefined);
    } catch (error) {
      failure = error;
    }
    try {
      await releaseOpenFile(file);
    } catch (error) {
      failure ??= error;
    }
    if (failure !== undefined) throw nasqErrorFromNode(failure, { operation: 'readFile', path, io: true });
    assert(result !== undefined, 'readFile: no result and no failure');
    return result;
  }

  /**
   * Writes in place (write, then cut the file to the new length) through the shared descriptor;
   * a reader may see a mix of old and new bytes meanwhile. With `sync` the file is fsync'ed, and
   * its directory too, so the name survives a power loss.
   */
  async writeFile(path: string, data: Uint8Array, options: WriteFileOptions = {}): Promise<void> {
    const absolutePath = this.#resolve(path, 'writeFile');
    if (!(data instanceof Uint8Array)) throw invalidArgument('writeFile', 'data', 'a Uint8Array', typeof data);
    const exclusive = options.exclusive ?? false;
    const sync = options.sync ?? false;
    if (typeof exclusive !== 'boolean') throw invalidArgument('writeFile', 'exclusive', 'a boolean', exclusive);
    if (typeof sync !== 'boolean') throw invalidArgument('writeFile', 'sync', 'a boolean', sync);
    const { file, size } = await acquireOpenFile({
      absolutePath,
      path,
      operation: 'writeFile',
      create: true,
      exclusive,
    });
    let failure: unknown;
    try {
      const owner = nextOwner++;
      const span = Math.max(size, data.length);
      if (span > 0 && !file.locks.canWrite(owner, 0, span)) throw lockConflict('writeFile', path, 0, span);
      await writeAt(file.primary, 0, data);
      if (size > data.length) await file.primary.truncate(data.length);
      if (sync) {
        // fsync, not fdatasync: the size and, for a new file, the inode must be durable too.
        await file.primary.sync();
        // The name too, in case this call created the file (whether it did is not known
        // without exclusive; an fsync of the directory is cheap next to losing the file).
        await syncDirectory(nodePath.dirname(absolutePath));
      }
    } catch (error) {
      failure = error;
    }
    try {
      await releaseOpenFile(file);
    } catch (error) {
      failure ??= error;
    }
    if (failure !== undefined) throw nasqErrorFromNode(failure, { operation: 'writeFile', path, io: true });
  }

  async stat(path: string): Promise<FileStat> {
    const absolutePath = this.#resolve(path, 'stat');
    try {
      const stats = await fs.stat(absolutePath);
      return { size: stats.size, mtimeMs: stats.mtimeMs, isDirectory: stats.isDirectory() };
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'stat', path });
    }
  }

  async setTimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    const absolutePath = this.#resolve(path, 'setTimes');
    if (typeof atimeMs !== 'number' || !Number.isFinite(atimeMs)) {
      throw invalidArgument('setTimes', 'atimeMs', 'a finite number', atimeMs);
    }
    if (typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs)) {
      throw invalidArgument('setTimes', 'mtimeMs', 'a finite number', mtimeMs);
    }
    try {
      await fs.utimes(absolutePath, secondsForUtimes(atimeMs), secondsForUtimes(mtimeMs));
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'setTimes', path });
    }
  }

  /**
   * Renames without replacing: `link(from, to)` then `unlink(from)`. link fails with EEXIST
   * atomically when `to` exists, where a check-then-rename would race. For a moment both names
   * exist (a crash there leaves both; the file is the same, so unlinking either repairs it).
   * Where hard links are not available (directories, some file systems: EPERM, ENOTSUP, EXDEV,
   * EMLINK), it falls back to check-then-rename, which can replace a `to` created in between.
   */
  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    const absoluteFrom = this.#resolve(from, 'rename');
    const absoluteTo = this.#resolve(to, 'rename');
    await changeNames(
      [absoluteTo, absoluteFrom],
      options.sync === true,
      () => this.#renameOnce(absoluteFrom, absoluteTo, from, to),
      (error) => isNasqError(error, 'NOT_FOUND', 'EXISTS'),
      { operation: 'rename', path: to },
    );
  }

  async #renameOnce(absoluteFrom: string, absoluteTo: string, from: string, to: string): Promise<void> {
    const context = { operation: 'rename', path: from };
    try {
      await fs.link(absoluteFrom, absoluteTo);
    } catch (error) {
      const errno = errnoOf(error);
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK', 'EACCES'].includes(errno ?? '')) {
        throw nasqErrorFromNode(error, context);
      }
      await this.#renameByCheck(absoluteFrom, absoluteTo, from, to);
      return;
    }
    try {
      await fs.unlink(absoluteFrom);
    } catch (error) {
      // Someone else renamed or removed `from` meanwhile: they won; take our link back.
      await fs.unlink(absoluteTo).catch(() => undefined);
      throw nasqErrorFromNode(error, context);
    }
  }

  async #renameByCheck(absoluteFrom: string, absoluteTo: string, from: string, to: string): Promise<void> {
    try {
      await fs.lstat(absoluteTo);
      throw new NasqError('EXISTS', `rename '${from}' to '${to}': the target exists`, { details: { from, to } });
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw nasqErrorFromNode(error, { operation: 'rename', path: to });
    }
    try {
      await fs.rename(absoluteFrom, absoluteTo);
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'rename', path: from });
    }
  }

  async unlink(path: string, options: UnlinkOptions = {}): Promise<void> {
    const absolutePath = this.#resolve(path, 'unlink');
    const context = { operation: 'unlink', path };
    await changeNames(
      [absolutePath],
      options.sync === true,
      async () => {
        try {
          await fs.unlink(absolutePath);
        } catch (error) {
          throw nasqErrorFromNode(error, context);
        }
      },
      (error) => isNasqError(error, 'NOT_FOUND'),
      context,
    );
  }

  /** Names in the directory, sorted by UTF-16 code units (JavaScript's default order). */
  async readdir(path: string): Promise<string[]> {
    const absolutePath = this.#resolve(path, 'readdir');
    try {
      return (await fs.readdir(absolutePath)).sort();
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'readdir', path });
    }
  }

  async mkdir(path: string, options: { readonly recursive?: boolean } = {}): Promise<void> {
    const absolutePath = this.#resolve(path, 'mkdir');
    const recursive = options.recursive ?? false;
    if (typeof recursive !== 'boolean') throw invalidArgument('mkdir', 'recursive', 'a boolean', recursive);
    try {
      await fs.mkdir(absolutePath, { recursive });
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'mkdir', path });
    }
  }

  /** See NodeDirectoryWatch: fs.watch plus polling of the entries' size, mtime and mode. */
  async watch(directory: string, filter: WatchFilter): Promise<WatchHandle> {
    const absolutePath = this.#resolve(directory, 'watch');
    if (typeof filter !== 'object' || filter === null) throw invalidArgument('watch', 'filter', 'an object', filter);
    const bits = [filter.fileName, filter.attributes, filter.size, filter.lastWrite];
    if (!bits.some((bit) => bit === true)) {
      throw invalidArgument('watch', 'filter', 'at least one of fileName, attributes, size, lastWrite set', filter);
    }
    const watch = await NodeDirectoryWatch.start(directory, absolutePath, filter, {
      pollIntervalMs: this.options.watchPollIntervalMs,
      pollEntriesMax: this.options.watchPollEntriesMax,
      queueEventsMax: this.options.watchQueueEventsMax,
      native: this.options.watchNative,
    });
    this.#watches.add(watch);
    return watch;
  }

  async unwatch(watch: WatchHandle): Promise<void> {
    assert(watch instanceof NodeDirectoryWatch, 'unwatch: the watch was not made by a NodeFileSystem');
    if (watch.closed) throw closedHandle('unwatch', watch.path);
    assert(this.#watches.delete(watch), 'unwatch: the watch belongs to another NodeFileSystem');
    watch.close();
  }

  /**
   * One attempt at a lock, run on the file's serial queue. Takes it in the table, then raises
   * the fcntl state; if another process refuses that, the table entry is taken back.
   */
  async #tryLock(
    state: HandleState,
    path: string,
    offset: number,
    length: number,
    mode: LockMode,
    waiter: LockWaitRecord | undefined,
  ): Promise<'granted' | 'busy here' | 'busy elsewhere' | 'cancelled'> {
    if (state.closed) return 'cancelled';
    const file = state.file;
    if (waiter !== undefined && waitsBehindEarlier(file.waiters, waiter)) return 'busy here';
    if (file.locks.held().length >= this.options.locksPerFileMax) {
      throw new NasqError('LOCK_NOT_GRANTED', `lock '${path}': this process holds ${this.options.locksPerFileMax} locks on the file already`, {
        details: { path, locksPerFileMax: this.options.locksPerFileMax },
      });
    }
    const attempt = file.locks.tryLock(state.owner, offset, length, mode);
    assert(attempt !== 'invalid', 'lock: the range was validated');
    if (attempt === 'conflict') return 'busy here';
    // From here until the fcntl answer, the other opens of this process already see the lock
    // (a read of theirs may get LOCK_CONFLICT): indistinguishable from a lock held briefly.
    try {
      await file.synchronizeOsLocks();
      return 'granted';
    } catch (error) {
      // Take the request back. When an identical lock of this open exists, whichever of the two
      // goes is the same: an identical exclusive one would have needed no fcntl change at all.
      const removed = file.locks.unlock(state.owner, offset, length);
      assert(removed !== undefined, 'lock: the request vanished from the table');
      try {
        await file.synchronizeOsLocks();
      } catch (rollbackError) {
        throw nasqErrorFromNode(rollbackError, { operation: 'lock', path });
      }
      if (isLockBusyError(error)) return 'busy elsewhere';
      throw nasqErrorFromNode(error, { operation: 'lock', path, lock: true });
    }
  }

  #resolve(path: string, operation: string): string {
    if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
      throw invalidArgument(operation, 'path', 'a non-empty path', path);
    }
    return nodePath.resolve(this.root, path);
  }

  /** The state of an open that must not be closed yet. */
  #openState(handle: FileHandle, operation: string): HandleState {
    const state = handleStates.get(handle);
    assert(state !== undefined, `${operation}: the handle was not opened by a NodeFileSystem`);
    if (state.closed) throw closedHandle(operation, handle.path);
    return state;
  }
}

/** FIFO among this process's waiters: an earlier waiter for an overlapping, conflicting range goes first. */
function waitsBehindEarlier(waiters: readonly LockWaitRecord[], waiter: LockWaitRecord): boolean {
  for (const earlier of waiters) {
    if (earlier === waiter) return false;
    if (earlier.length === 0 || waiter.length === 0) continue;
    const overlap = earlier.offset < waiter.offset + waiter.length && waiter.offset < earlier.offset + earlier.length;
    if (overlap && (earlier.mode === 'exclusive' || waiter.mode === 'exclusive')) return true;
  }
  assert(false, 'waitsBehindEarlier: the waiter is not queued');
}

/** Pauses a waiter for `delayMs`, or until woken. */
function pause(waiter: LockWaitRecord, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      waiter.wake = () => undefined;
      resolve();
    };
    const timer = setTimeout(done, delayMs);
    waiter.wake = done;
  });
}

/**
 * Seconds for fs.utimes that land on exactly the microsecond of `timeMs`. libuv truncates the
 * double to whole microseconds, and a double near 1.7e9 s is only good to about 0.24 us, so
 * `timeMs / 1000` often lands one microsecond early (1700000000.123 s becomes ...122.999 ms).
 * Aiming at the middle of the microsecond makes the truncation exact.
 */
function secondsForUtimes(timeMs: number): number {
  return (Math.floor(timeMs * 1000) + 0.5) / 1_000_000;
}

function requireByteCount(operation: string, name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(operation, name, 'a non-negative safe integer', value);
  }
}

function validateRange(operation: string, range: ByteRange): { offset: number; length: number } {
  if (typeof range !== 'object' || range === null) throw invalidArgument(operation, 'range', 'an object', range);
  const { offset, length } = range;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) {
    throw invalidArgument(operation, 'range.offset', 'a non-negative integer', offset);
  }
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
    throw invalidArgument(operation, 'range.length', 'a non-negative integer', length);
  }
  if (!isValidRange(offset, length)) {
    throw new NasqError('INVALID_LOCK_RANGE', `${operation}: offset ${offset} + length ${length} passes 2^64`, {
      details: { offset, length },
    });
  }
  // Past 2^53 JavaScript numbers are no longer exact integers (2^60 + 1 === 2^60), so overlap
  // tests would be wrong; SMB's 64-bit ranges beyond that are refused as invalid here.
  if (offset + length > Number.MAX_SAFE_INTEGER) {
    throw new NasqError('INVALID_LOCK_RANGE', `${operation}: offset ${offset} + length ${length} passes 2^53 - 1, where offsets stop being exact`, {
      details: { offset, length },
    });
  }
  return { offset, length };
}

function lockConflict(operation: string, path: string, position: number, length: number): NasqError {
  return new NasqError('LOCK_CONFLICT', `${operation} '${path}' [${position}, +${length}): locked by another open`, {
    details: { path, position, length },
  });
}

function closedHandle(operation: string, path: string): NasqError {
  return new NasqError('CLOSED_HANDLE', `${operation} '${path}': the handle is closed`, { details: { path } });
}

/** Reads up to `length` bytes at `position`; fewer at end of file. */
async function readAt(descriptor: fs.FileHandle, position: number, length: number, into: Uint8Array | undefined): Promise<Uint8Array> {
  const buffer = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
  let filled = 0;
  // Bounded: every round reads at least one byte or stops.
  while (filled < length) {
    const { bytesRead } = await descriptor.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

async function writeAt(descriptor: fs.FileHandle, position: number, data: Uint8Array): Promise<void> {
  let written = 0;
  // Bounded: every round writes at least one byte or throws.
  while (written < data.length) {
    const { bytesWritten } = await descriptor.write(data, written, data.length - written, position + written);
    if (bytesWritten === 0) {
      throw new NasqError('IO_ERROR', 'write: the storage accepted no bytes', { details: { position: position + written } });
    }
    written += bytesWritten;
  }
}

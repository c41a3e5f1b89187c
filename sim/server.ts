/**
 * The simulated CIFS/SMB server (docs: ../../shared/docs/cifs-nas-model.md sections 1 to 3).
 *
 * State: a namespace of directories and files (contents in growable byte arrays, timestamps at a
 * configurable granularity), sessions, opens (the owners of byte-range locks), durable handles,
 * directory watches (CHANGE_NOTIFY) and a lock table per file (adapters/lock-table.ts, shared with
 * the in-memory adapter so both enforce the same rules).
 *
 * Requests are applied by `execute` at the instant they arrive; the client layer adds the
 * latencies around it. A request that must wait (a blocking lock, a notify with nothing queued)
 * returns `Status.pending`; the server later completes it through the call's owner.
 *
 * Choices where the protocol leaves room (all deterministic):
 * - Lock waiters are served first in, first out (the lock table's rule); there is no server-side
 *   timeout: the client cancels when its bound passes.
 * - `writeFile` replaces the contents in place (the node keeps its opens and locks, as an
 *   overwrite-open does); it is refused with LOCK_CONFLICT if the new bytes overlap another open's
 *   lock. `readFile` is refused if the file overlaps another open's exclusive lock.
 * - `truncate` that shrinks a file is refused if the cut range is write-locked against the open.
 * - `unlink` removes the name at once; opens keep working on the orphaned file (POSIX-like; SMB
 *   would defer the delete to the last close, which nasq never relies on).
 * - A change notification carries no names: a watch counts matching changes up to
 *   `notifyQueueLimit`, then overflows; a wait returns 'changed' or 'overflow' and clears it.
 * - A disconnected durable handle keeps its locks until `durableTimeoutMs` passes, it is
 *   reclaimed by a reconnecting session of the same client, or (with `purgeDisconnectedOnOpen`)
 *   another session opens its file, which models a batch-oplock break that a disconnected handle
 *   cannot acknowledge. With `durableLocksNeedSoleOpen` (Samba's rule) a durable open that holds
 *   byte-range locks is kept at a disconnect only if it has been its file's only open since it
 *   was opened; otherwise it closes like any other open and its locks go.
 */

import { AssertionError, assert } from '../engine/errors.js';
import type { WaitResult } from '../engine/ports.js';
import { LockTable, isValidRange } from '../adapters/lock-table.js';
import { bytesToOverwrite } from '../engine/byte-slab.js';
import { type EventHandler, SimEvent } from './event-queue.js';
import { NasState, touchesStorage } from './nas.js';
import { builtinProfile } from './profiles.js';
import { type Call, CallFlag, Operation, Status } from './protocol.js';
import { type RandomStream, describeValue } from './random.js';
import type { Scheduler } from './scheduler.js';
import { TraceKind, type Trace } from './trace.js';

export interface ServerOptions {
  /**
   * Resolution of file timestamps, in milliseconds. Default 0.0001 (100 ns, NTFS); 2000 models
   * FAT. Times are floored to a multiple of it (within float precision for sub-millisecond steps).
   */
  readonly timestampGranularityMs?: number;
  /**
   * When a write moves the last-write time: 'write' (default; Samba) or 'close' (Windows may
   * update it lazily, only guaranteed when the writing handle closes). An explicit `setTimes` is
   * always seen at once.
   */
  readonly mtimeUpdate?: 'write' | 'close';
  /** Whether a plain in-place write (same size) wakes last-write watchers. Default false (Samba). */
  readonly notifyOnPlainWrite?: boolean;
  /**
   * Whether a watch reports changes made between its open and its first wait. SMB arms a
   * directory's CHANGE_NOTIFY with the first request; Samba reports nothing from before it
   * (conformance case notify). Default false.
   */
  readonly notifyBeforeFirstWait?: boolean;
  /** Changes a watch queues between two waits before it overflows. Default 256. */
  readonly notifyQueueLimit?: number;
  /** Whether the server grants durable handles when asked. Default true. */
  readonly durableHandles?: boolean;
  /** How long a disconnected durable handle survives with its locks, in ms. Default 60000 (Samba). */
  readonly durableTimeoutMs?: number;
  /** Whether another session's open of a file purges disconnected durable handles on it. Default false. */
  readonly purgeDisconnectedOnOpen?: boolean;
  /**
   * Samba's rule for durable handles that hold byte-range locks: such a handle survives a
   * disconnect only with a write lease or a batch oplock (source3/smbd/durable.c), which a server
   * grants only to the sole opener of a file and breaks when another client opens it. Modelled
   * as: kept only if it has been its file's only open since it was opened. Default false (kept
   * regardless: a server that keeps handle-cached durable opens with their locks).
   * docs/conformance.md, case durable-among-opens.
   */
  readonly durableLocksNeedSoleOpen?: boolean;
  /**
   * Grant blocking lock requests in a random order (drawn from the run's seed) instead of first
   * in, first out. SMB leaves the order open; Samba's waiters race for a freed lock (of four
   * waiters, the first asker got it in 32 of 120 rounds: `nasq conformance --samba --waiter-race`,
   * docs/conformance.md), so an engine must not need fairness from the share. Each new waiter
   * takes a uniformly random place in the queue, which makes the queue a uniformly random order of
   * the waiters. Default false (FIFO, as cifs-nas-model.md chooses).
   */
  readonly randomLockWaiterOrder?: boolean;
  /** Milliseconds since the epoch at virtual time 0 (the server's clock). Default 2026-01-01T00:00:00Z. */
  readonly epochMs?: number;
}

/** 2026-01-01T00:00:00Z. */
export const defaultEpochMs = 1_767_225_600_000;

interface ResolvedServerOptions {
  readonly timestampGranularityMs: number;
  readonly mtimeUpdate: 'write' | 'close';
  readonly notifyOnPlainWrite: boolean;
  readonly notifyBeforeFirstWait: boolean;
  readonly notifyQueueLimit: number;
  readonly durableHandles: boolean;
  readonly durableTimeoutMs: number;
  readonly purgeDisconnectedOnOpen: boolean;
  readonly durableLocksNeedSoleOpen: boolean;
  readonly randomLockWaiterOrder: boolean;
  readonly epochMs: number;
}

function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const known = new Set([
    'timestampGranularityMs',
    'mtimeUpdate',
    'notifyOnPlainWrite',
    'notifyBeforeFirstWait',
    'notifyQueueLimit',
    'durableHandles',
    'durableTimeoutMs',
    'purgeDisconnectedOnOpen',
    'durableLocksNeedSoleOpen',
    'randomLockWaiterOrder',
    'epochMs',
  ]);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`server options: unknown option ${JSON.stringify(key)}; expected one of ${[...known].join(', ')}`);
  }
  const granularity = options.timestampGranularityMs ?? 0.0001;
  if (typeof granularity !== 'number' || !(granularity > 0) || !Number.isFinite(granularity)) {
    throw new TypeError(`server.timestampGranularityMs: expected a positive number of ms, got ${describeValue(granularity)}`);
  }
  const mtimeUpdate = options.mtimeUpdate ?? 'write';
  if (mtimeUpdate !== 'write' && mtimeUpdate !== 'close') {
    throw new TypeError(`server.mtimeUpdate: expected 'write' or 'close', got ${describeValue(mtimeUpdate)}`);
  }
  const notifyQueueLimit = options.notifyQueueLimit ?? 256;
  if (!Number.isSafeInteger(notifyQueueLimit) || notifyQueueLimit < 1) {
    throw new TypeError(`server.notifyQueueLimit: expected a positive integer, got ${describeValue(notifyQueueLimit)}`);
  }
  const durableTimeoutMs = options.durableTimeoutMs ?? 60_000;
  if (typeof durableTimeoutMs !== 'number' || !(durableTimeoutMs >= 0) || durableTimeoutMs > 300_000) {
    throw new TypeError(`server.durableTimeoutMs: expected ms in [0, 300000] (SMB's maximum), got ${describeValue(durableTimeoutMs)}`);
  }
  const epochMs = options.epochMs ?? defaultEpochMs;
  if (!Number.isSafeInteger(epochMs) || epochMs < 0) {
    throw new TypeError(`server.epochMs: expected a non-negative integer, got ${describeValue(epochMs)}`);
  }
  for (const flag of ['notifyOnPlainWrite', 'notifyBeforeFirstWait', 'durableHandles', 'purgeDisconnectedOnOpen', 'durableLocksNeedSoleOpen', 'randomLockWaiterOrder'] as const) {
    const value = options[flag];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new TypeError(`server.${flag}: expected a boolean, got ${describeValue(value)}`);
    }
  }
  return {
    timestampGranularityMs: granularity,
    mtimeUpdate,
    notifyOnPlainWrite: options.notifyOnPlainWrite ?? false,
    notifyBeforeFirstWait: options.notifyBeforeFirstWait ?? false,
    notifyQueueLimit,
    durableHandles: options.durableHandles ?? true,
    durableTimeoutMs,
    purgeDisconnectedOnOpen: options.purgeDisconnectedOnOpen ?? false,
    durableLocksNeedSoleOpen: options.durableLocksNeedSoleOpen ?? false,
    randomLockWaiterOrder: options.randomLockWaiterOrder ?? false,
    epochMs,
  };
}

/** Watch filter bits (SMB2 CHANGE_NOTIFY completion filter). */
export const NotifyFilter = {
  fileName: 1,
  attributes: 2,
  size: 4,
  lastWrite: 8,
} as const;

const NodeKind = { file: 1, directory: 2 } as const;

/** A file or directory. */
export class ServerNode {
  kind: number;
  path: string;
  parent: ServerNode | null;
  /** File bytes; `size` of them are valid, the rest is spare capacity (always zero). */
  data: Uint8Array;
  size = 0;
  mtimeMs: number;
  atimeMs: number;
  changeTimeMs: number;
  locks: LockTable<Call> | null = null;
  children: Map<string, ServerNode> | null;
  watches: ServerWatch[] | null;
  openCount = 0;
  unlinked = false;
  // Power-loss tracking (only while the server tracks durability):
  /** The bytes on stable storage when they differ from `data`; null: the contents are durable. */
  durableData: Uint8Array | null = null;
  /** A flush in flight: the image it writes, when it completes, and the change count it covers. */
  flushData: Uint8Array | null = null;
  flushEndMs = 0;
  flushChanges = 0;
  /** Changes of the contents so far (tells whether a completed flush covered the latest). */
  changes = 0;

  constructor(kind: number, path: string, parent: ServerNode | null, timeMs: number) {
    this.kind = kind;
    this.path = path;
    this.parent = parent;
    this.data = kind === NodeKind.file ? new Uint8Array(0) : emptyBytes;
    this.mtimeMs = timeMs;
    this.atimeMs = timeMs;
    this.changeTimeMs = timeMs;
    this.children = kind === NodeKind.directory ? new Map() : null;
    this.watches = kind === NodeKind.directory ? [] : null;
  }

  get isDirectory(): boolean {
    return this.kind === NodeKind.directory;
  }
}

const emptyBytes = new Uint8Array(0);

export const OpenState = { open: 0, disconnected: 1, closed: 2 } as const;
export type OpenState = (typeof OpenState)[keyof typeof OpenState];

/** An open: a file handle at the server, the owner of byte-range locks. */
export class ServerOpen {
  readonly id: number;
  session: ServerSession;
  readonly node: ServerNode;
  readonly durable: boolean;
  state: OpenState = OpenState.open;
  /** Written since opened (for `mtimeUpdate: 'close'`). */
  wrote = false;
  /** Expiry of a disconnected durable handle. */
  expiry: SimEvent | null = null;
  /**
   * The last lock sequence number applied on this open and its answer. One entry suffices: a
   * client has at most one lock request outstanding (MS-SMB2 keeps 64 buckets for many).
   */
  lastLockSequence = 0;
  lastLockStatus: Status = Status.success;
  /** No other open of its file since it was opened (durableLocksNeedSoleOpen only). */
  soleOpen = false;

  constructor(id: number, session: ServerSession, node: ServerNode, durable: boolean) {
    this.id = id;
    this.session = session;
    this.node = node;
    this.durable = durable;
  }
}

/** Does the open hold a byte-range lock? */
function holdsLocks(open: ServerOpen): boolean {
  const table = open.node.locks;
  return table !== null && table.held().some((lock) => lock.owner === open.id);
}

/** A directory watch (a directory handle with CHANGE_NOTIFY requests). */
export class ServerWatch {
  readonly id: number;
  readonly session: ServerSession;
  readonly node: ServerNode;
  readonly filter: number;
  queued = 0;
  overflow = false;
  pending: Call | null = null;
  closed = false;
  /** Reports changes (SMB: once a first CHANGE_NOTIFY request came; see notifyBeforeFirstWait). */
  armed: boolean;
  /** With delayed notifications: when the queued changes may be reported, ms. */
  visibleAtMs = 0;
  /** The server event that reports delayed changes to a waiting request. */
  deliveryEvent: SimEvent | null = null;

  constructor(id: number, session: ServerSession, node: ServerNode, filter: number, armed: boolean) {
    this.id = id;
    this.session = session;
    this.node = node;
    this.filter = filter;
    this.armed = armed;
  }
}

/** Told when the server drops a session (the client side fails its call in flight). */
export interface SessionListener {
  sessionDropped(session: ServerSession): void;
}

export class ServerSession {
  readonly id: number;
  readonly clientName: string;
  /** The client's index in the trace. */
  readonly clientIndex: number;
  active = true;
  readonly opens = new Set<ServerOpen>();
  readonly watches = new Set<ServerWatch>();
  /** Calls waiting at the server (lock waiters, notifies). */
  readonly pending = new Set<Call>();
  listener: SessionListener | null = null;
  /** The session was dropped by an injected fault (errors it causes are marked injected). */
  droppedByFault = false;

  constructor(id: number, clientName: string, clientIndex: number) {
    this.id = id;
    this.clientName = clientName;
    this.clientIndex = clientIndex;
  }
}

/** Who holds a lock, for inspection. */
export interface LockInfo {
  readonly path: string;
  readonly openId: number;
  readonly sessionId: number;
  readonly client: string;
  readonly offset: number;
  readonly length: number;
  readonly mode: 'exclusive' | 'shared';
  /** 'open', or 'disconnected' for a durable handle whose client is gone. */
  readonly handleState: 'open' | 'disconnected';
}

export interface FileInfo {
  readonly path: string;
  readonly isDirectory: boolean;
  readonly size: number;
  readonly mtimeMs: number;
  readonly openCount: number;
}

/** Passed to write hooks after every change of a file's bytes. */
export interface WriteEvent {
  readonly path: string;
  /** 'power-loss': the server lost its write cache and the file went back to its durable image. */
  readonly operation: 'write' | 'truncate' | 'writeFile' | 'power-loss';
  readonly position: number;
  readonly length: number;
  /** The whole file after the change: a view, valid only during the hook call. Copy to keep. */
  readonly contents: Uint8Array;
  readonly client: string;
  readonly openId: number;
  /** Virtual time of the change. */
  readonly timeMs: number;
}

export type WriteHook = (event: WriteEvent) => void;

/** A lock granted at the server. */
export interface LockGrant {
  readonly path: string;
  readonly client: string;
  readonly openId: number;
  readonly offset: number;
  readonly length: number;
  readonly mode: LockMode;
  readonly timeMs: number;
}

export type LockGrantHook = (grant: LockGrant) => void;

/** Adds `hook` to the hooks of `path` (normalized); returns a function that removes it. */
function addHook<Hook>(hooks: Map<string, Hook[]>, path: string, hook: Hook, what: string): () => void {
  const normalized = normalizePath(path);
  if (normalized === null) throw new TypeError(`${what}: invalid path ${JSON.stringify(path)}`);
  const list = hooks.get(normalized) ?? [];
  list.push(hook);
  hooks.set(normalized, list);
  return () => {
    const current = hooks.get(normalized);
    if (current === undefined) return;
    const index = current.indexOf(hook);
    if (index >= 0) current.splice(index, 1);
    if (current.length === 0) hooks.delete(normalized);
  };
}

/** Adds one to `counts[key]`. */
function countUp(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Server timer kinds. */
const ServerEventKind = { durableExpiry: 1, notifyDelivery: 2 } as const;

/** Sector size of the simulated disks: the unit in which a write in flight is torn. */
export const sectorBytes = 512;

/** Longest wait for an oplock break acknowledgement before the server gives up (model section 3). */
export const oplockBreakTimeoutMs = 35_000;

/** A notification fault of one client: its changes are dropped, or reported late. */
interface NotifyFault {
  lose: boolean;
  delayMs: number;
}

/**
 * Normalizes a port path to the server's form: '/'-separated, no leading or trailing slash, no
 * empty or '.' segments; '' is the root. Returns null for '..' segments, NUL or backslash.
 */
export function normalizePath(path: string): string | null {
  if (typeof path !== 'string') return null;
  const length = path.length;
  let segmentStart = 0;
  let canonical = length > 0;
  for (let index = 0; index <= length; index += 1) {
    const code = index === length ? 47 : path.charCodeAt(index);
    if (code === 47) {
      const segmentLength = index - segmentStart;
      if (segmentLength === 0) canonical = false;
      else if (path.charCodeAt(segmentStart) === 46) {
        if (segmentLength === 1) canonical = false;
        else if (segmentLength === 2 && path.charCodeAt(segmentStart + 1) === 46) return null;
      }
      segmentStart = index + 1;
    } else if (code === 0 || code === 92) {
      return null;
    }
  }
  if (canonical) return path;
  const parts: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    parts.push(segment);
  }
  return parts.join('/');
}

function parentPathOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

function baseNameOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? path : path.slice(slash + 1);
}

/** A copy of bytes[start, end) that the reader owns (carved from a slab: a read is one memcpy). */
function copyOut(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const copy = bytesToOverwrite(end - start);
  copy.set(bytes.subarray(start, end));
  return copy;
}

export class SimServer implements EventHandler {
  readonly options: ResolvedServerOptions;
  private readonly scheduler: Scheduler;
  private readonly trace: Trace;
  private readonly nodes = new Map<string, ServerNode>();
  private readonly root: ServerNode;
  private readonly sessions = new Map<number, ServerSession>();
  private readonly opens = new Map<number, ServerOpen>();
  private readonly disconnected = new Set<ServerOpen>();
  /** Files whose lock table is not empty (for inspection without scanning every file). */
  private readonly lockedNodes = new Set<ServerNode>();
  private readonly writeHooks = new Map<string, WriteHook[]>();
  /** The NAS around the server: workers, disk array, holds of the network and faults. */
  readonly nas: NasState;
  /** The stream that places lock waiters (randomLockWaiterOrder only; the Simulation sets it). */
  lockWaiterRandom: RandomStream | null = null;
  private trackingDurability = false;
  /** Files whose contents differ from their durable image, or with a flush in flight. */
  private readonly unflushed = new Set<ServerNode>();
  private readonly notifyFaults = new Map<string, NotifyFault>();
  private nextSessionId = 1;
  private nextOpenId = 1;
  private nextWatchId = 1;
  /** Requests applied (each arrival once). */
  requestsApplied = 0;
  /** Lock requests that found their range taken (then waited, or were refused), by path. */
  private readonly lockConflictsByPath = new Map<string, number>();
  /**
   * Opens that held a lock when the server closed them for a lost session (a drop, a crashed
   * client, a durable handle that expired or was purged): locks their holder may still believe
   * it holds, by path.
   */
  private readonly locksLostByPath = new Map<string, number>();
  /** Lock waiters queued ahead of earlier ones (randomLockWaiterOrder), by path. */
  private readonly waitersQueuedAheadByPath = new Map<string, number>();
  /** Told of every lock granted on a path (at once, or to a waiter), by path. */
  private readonly lockGrantHooks = new Map<string, LockGrantHook[]>();

  constructor(scheduler: Scheduler, trace: Trace, options: ServerOptions = {}) {
    this.options = resolveServerOptions(options);
    this.scheduler = scheduler;
    this.trace = trace;
    this.root = new ServerNode(NodeKind.directory, '', null, this.timestamp());
    this.nodes.set('', this.root);
    this.nas = new NasState(builtinProfile('lan-nvram').raid);
  }

  /** The server's wall clock now, at its timestamp granularity. */
  timestamp(): number {
    return this.roundTime(this.options.epochMs + this.scheduler.nowMs);
  }

  roundTime(timeMs: number): number {
    const granularity = this.options.timestampGranularityMs;
    return Math.floor(timeMs / granularity) * granularity;
  }

  // ---------------------------------------------------------------------------------------------
  // Sessions.

  /** Opens a session for a client (the SMB negotiate / session setup / tree connect). */
  connect(clientName: string, clientIndex: number): ServerSession {
    const session = new ServerSession(this.nextSessionId, clientName, clientIndex);
    this.nextSessionId += 1;
    this.sessions.set(session.id, session);
    return session;
  }

  /**
   * Drops a session, as when its connection dies: non-durable opens are closed at once and their
   * locks released (another client may take them while the old one still believes it holds
   * them); durable opens are disconnected and keep their locks for `durableTimeoutMs`; watches
   * and waiting requests vanish. The session's listener is told.
   */
  dropSession(session: ServerSession, options: { readonly injected?: boolean; readonly keepDurable?: boolean } = {}): void {
    if (options.injected === true && session.active) session.droppedByFault = true;
    this.dropSessionKeeping(session, options.keepDurable ?? true);
  }

  /** Lock requests on `path` that found their range taken so far (they waited, or were refused). */
  lockConflicts(path: string): number {
    return this.lockConflictsByPath.get(normalizePath(path) ?? path) ?? 0;
  }

  /** Opens of `path` closed with locks held because their session was lost (see locksLostByPath). */
  locksLost(path: string): number {
    return this.locksLostByPath.get(normalizePath(path) ?? path) ?? 0;
  }

  /** Lock waiters on `path` queued ahead of earlier waiters so far (randomLockWaiterOrder only). */
  lockWaitersQueuedAhead(path: string): number {
    return this.waitersQueuedAheadByPath.get(normalizePath(path) ?? path) ?? 0;
  }

  /** Sessions that are active now, in the order they connected (the nemesis drops them on failover). */
  activeSessions(): ServerSession[] {
    return [...this.sessions.values()];
  }

  private dropSessionKeeping(session: ServerSession, keepDurable: boolean): void {
    if (!session.active) return;
    session.active = false;
    this.sessions.delete(session.id);
    this.trace.record(this.scheduler.nowMs, TraceKind.control, session.clientIndex, Operation.sessionDrop, 0, session.id, 0, 0, '');
    for (const call of [...session.pending]) {
      session.pending.delete(call);
      this.abandonPending(call);
    }
    for (const watch of session.watches) {
      this.removeWatch(watch);
    }
    session.watches.clear();
    for (const open of [...session.opens]) {
      if (open.durable && keepDurable && this.keepsLocksDurably(open)) {
        this.disconnectOpen(open);
      } else {
        this.closeOpen(open, Status.userSessionDeleted);
      }
    }
    session.listener?.sessionDropped(session);
  }

  /** May a durable open survive a disconnect (durableLocksNeedSoleOpen: not with locks and other opens)? */
  private keepsLocksDurably(open: ServerOpen): boolean {
    return !this.options.durableLocksNeedSoleOpen || open.soleOpen || !holdsLocks(open);
  }

  /**
   * Ends a session as a client process that exits does: every open closes, durable or not, also
   * the durable opens left disconnected by an earlier drop of this session.
   */
  endSession(session: ServerSession): void {
    this.dropSessionKeeping(session, false);
    for (const open of [...session.opens]) this.closeOpen(open, Status.userSessionDeleted);
  }

  /**
   * A client reconnects after its session dropped: its disconnected durable opens move to the new
   * session with their locks. Returns the opens reclaimed.
   */
  reclaimDurable(previous: ServerSession, next: ServerSession): ServerOpen[] {
    assert(!previous.active, 'reclaimDurable: the previous session is still active');
    assert(next.active, 'reclaimDurable: the new session is not active');
    const reclaimed: ServerOpen[] = [];
    for (const open of [...previous.opens]) {
      assert(open.state === OpenState.disconnected, 'reclaimDurable: a live open in a dropped session');
      previous.opens.delete(open);
      this.disconnected.delete(open);
      if (open.expiry !== null) {
        this.scheduler.cancel(open.expiry);
        open.expiry = null;
      }
      open.state = OpenState.open;
      open.session = next;
      next.opens.add(open);
      reclaimed.push(open);
      this.trace.record(this.scheduler.nowMs, TraceKind.control, next.clientIndex, Operation.durableReclaim, 0, open.id, 0, 0, open.node.path);
    }
    return reclaimed;
  }

  // ---------------------------------------------------------------------------------------------
  // Requests.

  /**
   * Applies a request that just arrived. Returns its status (also stored in `call.status`);
   * `Status.pending` means the server will complete it later through `call.owner`.
   */
  execute(call: Call): Status {
    this.requestsApplied += 1;
    const session = call.session as ServerSession;
    let status: Status;
    if (!session.active) {
      status = Status.userSessionDeleted;
    } else if (this.nas.raid.lost && touchesStorage(call.operation)) {
      // The array failed beyond its redundancy: nothing on it can be read or written.
      status = Status.ioDeviceError;
      call.injected = true;
    } else {
      status = this.dispatch(call, session);
    }
    call.status = status;
    if (status === Status.pending) session.pending.add(call);
    return status;
  }

  private dispatch(call: Call, session: ServerSession): Status {
    switch (call.operation) {
      case Operation.read:
        return this.read(call, session);
      case Operation.write:
        return this.write(call, session);
      case Operation.lock:
        return this.lock(call, session);
      case Operation.unlock:
        return this.unlock(call, session);
      case Operation.open:
        return this.open(call, session);
      case Operation.close:
        return this.close(call, session);
      case Operation.sync: {
        const open = this.liveOpen(call, session);
        if (open === null) return Status.fileClosed;
        if (this.trackingDurability) this.flush(open.node, call.serviceEndMs);
        return Status.success;
      }
      case Operation.truncate:
        return this.truncate(call, session);
      case Operation.readFile:
        return this.readFile(call);
      case Operation.writeFile:
        return this.writeFile(call, session);
      case Operation.stat:
        return this.stat(call);
      case Operation.setTimes:
        return this.setTimes(call);
      case Operation.rename:
        return this.rename(call);
      case Operation.unlink:
        return this.unlink(call);
      case Operation.readdir:
        return this.readdir(call);
      case Operation.mkdir:
        return this.mkdir(call);
      case Operation.watch:
        return this.watch(call, session);
      case Operation.unwatch:
        return this.unwatch(call, session);
      case Operation.waitForChange:
        return this.waitForChange(call, session);
      case Operation.lockCancel:
        throw new AssertionError('execute: a lock cancel goes through cancelLock');
      default:
        throw new AssertionError(`execute: operation ${call.operation} is not a server request`);
    }
  }

  /** The open a handle call names, if it is live and belongs to the calling session. */
  private liveOpen(call: Call, session: ServerSession): ServerOpen | null {
    const open = call.target as ServerOpen | null;
    if (open === null || open.state !== OpenState.open || open.session !== session) return null;
    return open;
  }

  private open(call: Call, session: ServerSession): Status {
    const path = call.path;
    let node = this.nodes.get(path);
    if (node === undefined) {
      if ((call.flags & CallFlag.create) === 0) return Status.objectNameNotFound;
      const parent = this.nodes.get(parentPathOf(path));
      if (parent === undefined) return Status.objectPathNotFound;
      if (!parent.isDirectory) return Status.notADirectory;
      node = this.createNode(NodeKind.file, path, parent);
    } else {
      if ((call.flags & CallFlag.create) !== 0 && (call.flags & CallFlag.exclusive) !== 0) return Status.objectNameCollision;
      if (node.isDirectory) return Status.fileIsADirectory;
      if (this.options.purgeDisconnectedOnOpen && this.disconnected.size > 0) this.purgeDisconnected(node, session);
    }
    const durable = (call.flags & CallFlag.durable) !== 0 && this.options.durableHandles;
    const open = new ServerOpen(this.nextOpenId, session, node, durable);
    this.nextOpenId += 1;
    if (this.options.durableLocksNeedSoleOpen) {
      // Another open breaks the write caching (lease or batch oplock) of every open already there.
      open.soleOpen = node.openCount === 0;
      if (!open.soleOpen) for (const other of this.opens.values()) if (other.node === node) other.soleOpen = false;
    }
    this.opens.set(open.id, open);
    session.opens.add(open);
    node.openCount += 1;
    call.value = open;
    return Status.success;
  }

  private close(call: Call, session: ServerSession): Status {
    const open = this.liveOpen(call, session);
    if (open === null) return Status.fileClosed;
    this.closeOpen(open, Status.rangeNotLocked);
    return Status.success;
  }

  private read(call: Call, session: ServerSession): Status {
    const open = this.liveOpen(call, session);
    if (open === null) return Status.fileClosed;
    const node = open.node;
    const position = call.position;
    const length = call.length;
    if (node.locks !== null && !node.locks.canRead(open.id, position, length)) return Status.fileLockConflict;
    const end = Math.min(node.size, position + length);
    if (position >= end) {
      call.value = new Uint8Array(0);
    } else if (call.into !== null) {
      const into = call.into;
      into.set(node.data.subarray(position, end));
      call.value = end - position === into.length ? into : into.subarray(0, end - position);
    } else {
      call.value = copyOut(node.data, position, end);
    }
    return Status.success;
  }

  private write(call: Call, session: ServerSession): Status {
    const open = this.liveOpen(call, session);
    if (open === null) return Status.fileClosed;
    const node = open.node;
    const data = call.data!;
    const position = call.position;
    if (node.locks !== null && !node.locks.canWrite(open.id, position, data.length)) return Status.fileLockConflict;
    if (this.trackingDurability) this.beforeContentChange(node);
    const end = position + data.length;
    const previousSize = node.size;
    if (end > node.data.length) this.growFile(node, end);
    node.data.set(data, position);
    if (end > previousSize) node.size = end;
    open.wrote = true;
    this.contentChanged(node, previousSize, true);
    if (this.writeHooks.size > 0) this.runWriteHooks(node, 'write', position, data.length, session, open.id);
    return Status.success;
  }

  private truncate(call: Call, session: ServerSession): Status {
    const open = this.liveOpen(call, session);
    if (open === null) return Status.fileClosed;
    const node = open.node;
    const length = call.length;
    const previousSize = node.size;
    if (length < previousSize && node.locks !== null && !node.locks.canWrite(open.id, length, previousSize - length)) {
      return Status.fileLockConflict;
    }
    if (this.trackingDurability) this.beforeContentChange(node);
    this.resize(node, length);
    open.wrote = true;
    this.contentChanged(node, previousSize, true);
    if (this.writeHooks.size > 0) this.runWriteHooks(node, 'truncate', length, 0, session, open.id);
    return Status.success;
  }

  private lock(call: Call, session: ServerSession): Status {
    const open = this.liveOpen(call, session);
    if (open === null) return Status.fileClosed;
    if (call.lockSequence !== 0 && call.lockSequence === open.lastLockSequence) return open.lastLockStatus;
    const status = this.lockRange(call, open);
    if (status !== Status.pending) this.rememberLockSequence(call, open, status);
    return status;
  }

  private rememberLockSequence(call: Call, open: ServerOpen, status: Status): void {
    if (call.lockSequence === 0) return;
    open.lastLockSequence = call.lockSequence;
    open.lastLockStatus = status;
  }

  private lockRange(call: Call, open: ServerOpen): Status {
    const node = open.node;
    const offset = call.position;
    const length = call.length;
    if (!isValidRange(offset, length)) return Status.invalidLockRange;
    const mode = (call.flags & CallFlag.shared) !== 0 ? 'shared' : 'exclusive';
    const table = node.locks ?? this.createLockTable(node);
    const attempt = table.tryLock(open.id, offset, length, mode);
    if (attempt === 'granted') {
      this.lockedNodes.add(node);
      if (this.lockGrantHooks.size > 0) this.runLockGrantHooks(open, offset, length, mode);
      return Status.success;
    }
    assert(attempt === 'conflict', () => `lock: unexpected attempt result ${attempt}`);
    countUp(this.lockConflictsByPath, node.path);
    if ((call.flags & CallFlag.blocking) === 0 || call.deadlinePassed) return Status.lockNotGranted;
    const ahead = this.waiterPlacesAhead(table);
    if (ahead > 0) countUp(this.waitersQueuedAheadByPath, node.path);
    table.enqueue(open.id, offset, length, mode, call, ahead);
    this.lockedNodes.add(node);
    return Status.pending;
  }

  /** Where a new waiter goes: last (FIFO), or with randomLockWaiterOrder a random place (0: last). */
  private waiterPlacesAhead(table: LockTable<Call>): number {
    if (!this.options.randomLockWaiterOrder) return 0;
    const random = this.lockWaiterRandom;
    assert(random !== null, 'randomLockWaiterOrder: the server has no lockWaiterRandom stream (the Simulation gives it one)');
    return random.integer(table.waiterCount + 1);
  }

  private unlock(call: Call, session: ServerSession): Status {
    const open = this.liveOpen(call, session);
    if (open === null) return Status.fileClosed;
    if (call.lockSequence !== 0 && call.lockSequence === open.lastLockSequence) return open.lastLockStatus;
    const node = open.node;
    const table = node.locks;
    const granted = table === null ? undefined : table.unlock(open.id, call.position, call.length);
    if (granted === undefined) {
      this.rememberLockSequence(call, open, Status.rangeNotLocked);
      return Status.rangeNotLocked;
    }
    this.rememberLockSequence(call, open, Status.success);
    for (const waiter of granted) this.completePending(waiter.token, Status.success, undefined);
    if (table!.isEmpty()) this.lockedNodes.delete(node);
    return Status.success;
  }

  /**
   * A client's cancel of its waiting lock request arrived (its bound passed). If the request
   * still waits it ends with STATUS_CANCELLED; if it was granted meanwhile, nothing happens.
   */
  cancelLock(call: Call): void {
    const session = call.session as ServerSession;
    if (!session.pending.has(call)) return;
    const open = call.target as ServerOpen;
    const table = open.node.locks;
    assert(table !== null, 'cancelLock: a waiting lock without a lock table');
    const result = table.cancel(call);
    assert(result.cancelled, 'cancelLock: a pending lock call that the table does not know');
    this.completePending(call, Status.cancelled, undefined);
    for (const waiter of result.granted) this.completePending(waiter.token, Status.success, undefined);
    if (table.isEmpty()) this.lockedNodes.delete(open.node);
  }

  private readFile(call: Call): Status {
    const node = this.nodes.get(call.path);
    if (node === undefined) return this.missing(call.path);
    if (node.isDirectory) return Status.fileIsADirectory;
    if (node.locks !== null && !node.locks.canRead(-1, 0, node.size)) return Status.fileLockConflict;
    call.value = copyOut(node.data, 0, node.size);
    return Status.success;
  }

  private writeFile(call: Call, session: ServerSession): Status {
    const path = call.path;
    const data = call.data!;
    let node = this.nodes.get(path);
    let created = false;
    if (node === undefined) {
      const parent = this.nodes.get(parentPathOf(path));
      if (parent === undefined) return Status.objectPathNotFound;
      if (!parent.isDirectory) return Status.notADirectory;
      node = this.createNode(NodeKind.file, path, parent);
      created = true;
    } else {
      if ((call.flags & CallFlag.exclusive) !== 0) return Status.objectNameCollision;
      if (node.isDirectory) return Status.fileIsADirectory;
      if (node.locks !== null && !node.locks.canWrite(-1, 0, data.length)) return Status.fileLockConflict;
    }
    if (this.trackingDurability) this.beforeContentChange(node);
    const previousSize = node.size;
    if (data.length > node.data.length) this.growFile(node, data.length);
    node.data.set(data, 0);
    if (previousSize > data.length) node.data.fill(0, data.length, previousSize);
    node.size = data.length;
    if (this.trackingDurability && (call.flags & CallFlag.sync) !== 0) this.flush(node, call.serviceEndMs);
    if (!created) {
      // An overwrite: the size change (if any) notifies; the write itself is a plain write.
      this.contentChanged(node, previousSize, this.options.mtimeUpdate === 'write');
    }
    if (this.writeHooks.size > 0) this.runWriteHooks(node, 'writeFile', 0, data.length, session, -1);
    return Status.success;
  }

  private stat(call: Call): Status {
    const node = this.nodes.get(call.path);
    if (node === undefined) return this.missing(call.path);
    call.value = { size: node.size, mtimeMs: node.mtimeMs, isDirectory: node.isDirectory };
    return Status.success;
  }

  private setTimes(call: Call): Status {
    const node = this.nodes.get(call.path);
    if (node === undefined) return this.missing(call.path);
    node.atimeMs = this.roundTime(call.atimeMs);
    const mtimeMs = this.roundTime(call.mtimeMs);
    node.mtimeMs = mtimeMs;
    node.changeTimeMs = this.timestamp();
    // An explicit change of the last write time is seen by watchers at once (Samba).
    if (node.parent !== null) this.notify(node.parent, NotifyFilter.lastWrite);
    return Status.success;
  }

  private rename(call: Call): Status {
    const from = call.path;
    const to = call.targetPath;
    const node = this.nodes.get(from);
    if (node === undefined) return this.missing(from);
    if (node === this.root) return Status.invalidParameter;
    if (this.nodes.has(to)) return Status.objectNameCollision;
    const newParent = this.nodes.get(parentPathOf(to));
    if (newParent === undefined) return Status.objectPathNotFound;
    if (!newParent.isDirectory) return Status.notADirectory;
    if (node.isDirectory && (to === from || to.startsWith(`${from}/`))) return Status.invalidParameter;
    const oldParent = node.parent!;
    oldParent.children!.delete(baseNameOf(from));
    newParent.children!.set(baseNameOf(to), node);
    node.parent = newParent;
    this.nodes.delete(from);
    this.nodes.set(to, node);
    node.path = to;
    if (node.isDirectory) {
      const prefix = `${from}/`;
      const moved: ServerNode[] = [];
      for (const [path, descendant] of this.nodes) {
        if (path.startsWith(prefix)) moved.push(descendant);
      }
      for (const descendant of moved) {
        this.nodes.delete(descendant.path);
        descendant.path = to + descendant.path.slice(from.length);
        this.nodes.set(descendant.path, descendant);
      }
    }
    node.changeTimeMs = this.timestamp();
    this.touchDirectory(oldParent);
    this.notify(oldParent, NotifyFilter.fileName);
    if (newParent !== oldParent) {
      this.touchDirectory(newParent);
      this.notify(newParent, NotifyFilter.fileName);
    }
    return Status.success;
  }

  private unlink(call: Call): Status {
    const node = this.nodes.get(call.path);
    if (node === undefined) return this.missing(call.path);
    if (node.isDirectory) return Status.fileIsADirectory;
    const parent = node.parent!;
    parent.children!.delete(baseNameOf(node.path));
    this.nodes.delete(node.path);
    node.unlinked = true;
    this.unflushed.delete(node);
    this.touchDirectory(parent);
    this.notify(parent, NotifyFilter.fileName);
    return Status.success;
  }

  private readdir(call: Call): Status {
    const node = this.nodes.get(call.path);
    if (node === undefined) return this.missing(call.path);
    if (!node.isDirectory) return Status.notADirectory;
    call.value = [...node.children!.keys()].sort();
    return Status.success;
  }

  private mkdir(call: Call): Status {
    const path = call.path;
    const recursive = (call.flags & CallFlag.recursive) !== 0;
    const existing = this.nodes.get(path);
    if (existing !== undefined) {
      if (recursive && existing.isDirectory) return Status.success;
      return Status.objectNameCollision;
    }
    const parentPath = parentPathOf(path);
    let parent = this.nodes.get(parentPath);
    if (parent === undefined) {
      if (!recursive) return Status.objectPathNotFound;
      // Create the missing ancestors, outermost first.
      const missing: string[] = [];
      let cursor = parentPath;
      while (!this.nodes.has(cursor)) {
        missing.push(cursor);
        cursor = parentPathOf(cursor);
      }
      const ancestor = this.nodes.get(cursor)!;
      if (!ancestor.isDirectory) return Status.notADirectory;
      parent = ancestor;
      for (let index = missing.length - 1; index >= 0; index -= 1) {
        parent = this.createNode(NodeKind.directory, missing[index]!, parent);
      }
    }
    if (!parent.isDirectory) return Status.notADirectory;
    this.createNode(NodeKind.directory, path, parent);
    return Status.success;
  }

  private watch(call: Call, session: ServerSession): Status {
    const node = this.nodes.get(call.path);
    if (node === undefined) return this.missing(call.path);
    // CHANGE_NOTIFY on a file handle: STATUS_INVALID_PARAMETER.
    if (!node.isDirectory) return Status.invalidParameter;
    const watch = new ServerWatch(this.nextWatchId, session, node, call.flags, this.options.notifyBeforeFirstWait);
    this.nextWatchId += 1;
    node.watches!.push(watch);
    session.watches.add(watch);
    call.value = watch;
    return Status.success;
  }

  private unwatch(call: Call, session: ServerSession): Status {
    const watch = call.target as ServerWatch;
    if (watch.closed || watch.session !== session) return Status.fileClosed;
    session.watches.delete(watch);
    this.removeWatch(watch);
    return Status.success;
  }

  private waitForChange(call: Call, session: ServerSession): Status {
    const watch = call.target as ServerWatch;
    if (watch.closed || watch.session !== session) return Status.fileClosed;
    assert(watch.pending === null, 'waitForChange: a second notify request on one watch');
    watch.armed = true;
    if (watch.overflow) {
      watch.overflow = false;
      watch.queued = 0;
      call.value = 'overflow' satisfies WaitResult;
      return Status.success;
    }
    if (watch.queued > 0) {
      if (watch.visibleAtMs > this.scheduler.nowMs && !call.deadlinePassed) {
        // Delayed notifications: the change is queued but not reported before its time.
        watch.pending = call;
        this.scheduleNotifyDelivery(watch);
        return Status.pending;
      }
      watch.queued = 0;
      call.value = 'changed' satisfies WaitResult;
      return Status.success;
    }
    if (call.deadlinePassed) {
      call.value = 'timeout' satisfies WaitResult;
      return Status.success;
    }
    watch.pending = call;
    return Status.pending;
  }

  /** The client stopped waiting on a notify (its deadline passed). */
  cancelNotify(call: Call): boolean {
    const watch = call.target as ServerWatch;
    const session = call.session as ServerSession;
    if (watch.pending !== call) return false;
    watch.pending = null;
    session.pending.delete(call);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals.

  private missing(path: string): Status {
    return this.nodes.has(parentPathOf(path)) ? Status.objectNameNotFound : Status.objectPathNotFound;
  }

  private createNode(kind: number, path: string, parent: ServerNode): ServerNode {
    assert(parent.isDirectory, 'createNode: parent is not a directory');
    assert(!this.nodes.has(path), () => `createNode: ${path} exists`);
    const node = new ServerNode(kind, path, parent, this.timestamp());
    this.nodes.set(path, node);
    parent.children!.set(baseNameOf(path), node);
    this.touchDirectory(parent);
    this.notify(parent, NotifyFilter.fileName);
    return node;
  }

  private touchDirectory(directory: ServerNode): void {
    const now = this.timestamp();
    directory.mtimeMs = now;
    directory.changeTimeMs = now;
  }

  private createLockTable(node: ServerNode): LockTable<Call> {
    const table = new LockTable<Call>();
    node.locks = table;
    return table;
  }

  private growFile(node: ServerNode, needed: number): void {
    let capacity = Math.max(64, node.data.length);
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    if (node.size > 0) grown.set(node.data.subarray(0, node.size));
    node.data = grown;
  }

  private resize(node: ServerNode, length: number): void {
    if (length > node.data.length) this.growFile(node, length);
    if (length < node.size) node.data.fill(0, length, node.size);
    node.size = length;
  }

  /** After bytes or size changed: timestamps and notifications. */
  private contentChanged(node: ServerNode, previousSize: number, updateMtime: boolean): void {
    if (updateMtime && this.options.mtimeUpdate === 'write') {
      const now = this.timestamp();
      node.mtimeMs = now;
      node.changeTimeMs = now;
    }
    const parent = node.parent;
    if (parent === null || node.unlinked || parent.watches!.length === 0) return;
    if (node.size !== previousSize) {
      this.notify(parent, NotifyFilter.size | (this.options.notifyOnPlainWrite ? NotifyFilter.lastWrite : 0));
    } else if (this.options.notifyOnPlainWrite) {
      this.notify(parent, NotifyFilter.lastWrite);
    }
  }

  private notify(directory: ServerNode, change: number): void {
    const watches = directory.watches!;
    for (let index = 0; index < watches.length; index += 1) {
      const watch = watches[index]!;
      if ((watch.filter & change) === 0 || !watch.armed) continue;
      if (this.notifyFaults.size > 0) {
        const fault = this.notifyFaults.get(watch.session.clientName);
        if (fault !== undefined) {
          if (fault.lose) continue; // dropped: the client hears nothing of this change
          if (fault.delayMs > 0) {
            this.queueDelayedChange(watch, fault.delayMs);
            continue;
          }
        }
      }
      const pending = watch.pending;
      if (pending !== null) {
        watch.pending = null;
        this.completePending(pending, Status.success, 'changed' satisfies WaitResult);
      } else if (!watch.overflow) {
        watch.queued += 1;
        if (watch.queued > this.options.notifyQueueLimit) {
          watch.overflow = true;
          watch.queued = 0;
        }
      }
    }
  }

  /** A change for a watch whose notifications are late: queued now, reported `delayMs` later. */
  private queueDelayedChange(watch: ServerWatch, delayMs: number): void {
    if (watch.overflow) return;
    if (watch.queued === 0) watch.visibleAtMs = this.scheduler.nowMs + delayMs;
    watch.queued += 1;
    if (watch.queued > this.options.notifyQueueLimit) {
      watch.overflow = true;
      watch.queued = 0;
    }
    if (watch.pending !== null) this.scheduleNotifyDelivery(watch);
  }

  private scheduleNotifyDelivery(watch: ServerWatch): void {
    let event = watch.deliveryEvent;
    if (event === null) {
      event = new SimEvent(this, ServerEventKind.notifyDelivery, watch);
      watch.deliveryEvent = event;
    } else if (event.scheduled) {
      this.scheduler.cancel(event);
    }
    this.scheduler.schedule(event, Math.max(this.scheduler.nowMs, watch.visibleAtMs));
  }

  /** The time of delayed changes came: report them to the waiting request, if one still waits. */
  private deliverDelayedNotify(watch: ServerWatch): void {
    const pending = watch.pending;
    if (watch.closed || pending === null) return;
    if (watch.overflow) {
      watch.pending = null;
      watch.overflow = false;
      watch.queued = 0;
      this.completePending(pending, Status.success, 'overflow' satisfies WaitResult);
    } else if (watch.queued > 0 && watch.visibleAtMs <= this.scheduler.nowMs) {
      watch.pending = null;
      watch.queued = 0;
      this.completePending(pending, Status.success, 'changed' satisfies WaitResult);
    }
  }

  private removeWatch(watch: ServerWatch): void {
    watch.closed = true;
    watch.pending = null;
    if (watch.deliveryEvent !== null && watch.deliveryEvent.scheduled) this.scheduler.cancel(watch.deliveryEvent);
    const watches = watch.node.watches!;
    const index = watches.indexOf(watch);
    if (index >= 0) watches.splice(index, 1);
  }

  private completePending(call: Call, status: Status, value: unknown): void {
    const session = call.session as ServerSession;
    assert(session.pending.delete(call), 'completePending: the call was not pending');
    call.status = status;
    call.value = value;
    if (call.operation === Operation.lock) {
      const open = call.target as ServerOpen;
      this.rememberLockSequence(call, open, status);
      if (status === Status.success && this.lockGrantHooks.size > 0) {
        this.runLockGrantHooks(open, call.position, call.length, (call.flags & CallFlag.shared) !== 0 ? 'shared' : 'exclusive');
      }
    }
    call.owner.serverCompleted(call);
  }

  private runLockGrantHooks(open: ServerOpen, offset: number, length: number, mode: LockMode): void {
    const hooks = this.lockGrantHooks.get(open.node.path);
    if (hooks === undefined) return;
    const grant: LockGrant = { path: open.node.path, client: open.session.clientName, openId: open.id, offset, length, mode, timeMs: this.scheduler.nowMs };
    for (const hook of [...hooks]) hook(grant);
  }

  /**
   * Calls `hook` on every lock granted on `path` from now on, at the instant of the grant (before
   * the reply leaves). Returns a function that removes the hook.
   */
  onLockGranted(path: string, hook: LockGrantHook): () => void {
    return addHook(this.lockGrantHooks, path, hook, 'onLockGranted');
  }

  /** A waiting request whose session died: it vanishes without a reply. */
  private abandonPending(call: Call): void {
    if (call.operation === Operation.lock) {
      const open = call.target as ServerOpen;
      const table = open.node.locks;
      if (table === null) return;
      const result = table.cancel(call);
      for (const waiter of result.granted) this.completePending(waiter.token, Status.success, undefined);
      if (table.isEmpty()) this.lockedNodes.delete(open.node);
    } else if (call.operation === Operation.waitForChange) {
      const watch = call.target as ServerWatch;
      if (watch.pending === call) watch.pending = null;
    }
  }

  /**
   * Closes an open: every lock released (waiters that now fit are granted), its own waiting
   * requests end with `waiterStatus` (STATUS_RANGE_NOT_LOCKED on a close).
   */
  private closeOpen(open: ServerOpen, waiterStatus: Status): void {
    assert(open.state !== OpenState.closed, 'closeOpen: already closed');
    const node = open.node;
    open.state = OpenState.closed;
    open.session.opens.delete(open);
    this.opens.delete(open.id);
    this.disconnected.delete(open);
    if (open.expiry !== null) {
      this.scheduler.cancel(open.expiry);
      open.expiry = null;
    }
    node.openCount -= 1;
    assert(node.openCount >= 0, 'closeOpen: open count below zero');
    if (open.wrote && this.options.mtimeUpdate === 'close') {
      const now = this.timestamp();
      node.mtimeMs = now;
      node.changeTimeMs = now;
    }
    const table = node.locks;
    if (table !== null) {
      if (waiterStatus === Status.userSessionDeleted && holdsLocks(open)) {
        countUp(this.locksLostByPath, node.path);
      }
      const { granted, dropped } = table.releaseOwner(open.id);
      for (const waiter of dropped) {
        const session = waiter.token.session as ServerSession;
        if (session.pending.has(waiter.token)) {
          if (session.active && waiterStatus === Status.rangeNotLocked) {
            this.completePending(waiter.token, Status.rangeNotLocked, undefined);
          } else {
            session.pending.delete(waiter.token);
          }
        }
      }
      for (const waiter of granted) this.completePending(waiter.token, Status.success, undefined);
      if (table.isEmpty()) this.lockedNodes.delete(node);
    }
  }

  private disconnectOpen(open: ServerOpen): void {
    assert(open.state === OpenState.open, 'disconnectOpen: not open');
    open.state = OpenState.disconnected;
    this.disconnected.add(open);
    const expiry = new SimEvent(this, ServerEventKind.durableExpiry, open);
    open.expiry = expiry;
    this.scheduler.schedule(expiry, this.scheduler.nowMs + this.options.durableTimeoutMs);
  }

  private purgeDisconnected(node: ServerNode, opener: ServerSession): void {
    for (const open of [...this.disconnected]) {
      if (open.node !== node || open.session === opener) continue;
      this.trace.record(this.scheduler.nowMs, TraceKind.control, open.session.clientIndex, Operation.durablePurge, 0, open.id, 0, 0, node.path);
      this.closeOpen(open, Status.userSessionDeleted);
    }
  }

  handleEvent(event: SimEvent): void {
    if (event.kind === ServerEventKind.notifyDelivery) {
      this.deliverDelayedNotify(event.subject as ServerWatch);
      return;
    }
    assert(event.kind === ServerEventKind.durableExpiry, () => `server: unknown event kind ${event.kind}`);
    const open = event.subject as ServerOpen;
    open.expiry = null;
    if (open.state !== OpenState.disconnected) return;
    this.trace.record(this.scheduler.nowMs, TraceKind.control, open.session.clientIndex, Operation.durableExpire, 0, open.id, 0, 0, open.node.path);
    this.closeOpen(open, Status.userSessionDeleted);
  }

  private runWriteHooks(
    node: ServerNode,
    operation: WriteEvent['operation'],
    position: number,
    length: number,
    session: ServerSession,
    openId: number,
  ): void {
    const hooks = this.writeHooks.get(node.path);
    if (hooks === undefined || node.unlinked) return;
    const event: WriteEvent = {
      path: node.path,
      operation,
      position,
      length,
      contents: node.data.subarray(0, node.size),
      client: session.clientName,
      openId,
      timeMs: this.scheduler.nowMs,
    };
    for (const hook of hooks.slice()) hook(event);
  }

  // ---------------------------------------------------------------------------------------------
  // Faults of the NAS (driven by the nemesis).

  /**
   * From now on, remember what is on stable storage (a write cache without battery can lose the
   * rest). Costs a copy of a file's bytes at its first change after each flush.
   */
  trackDurability(): void {
    if (this.trackingDurability) return;
    this.trackingDurability = true;
  }

  get tracksDurability(): boolean {
    return this.trackingDurability;
  }

  /** Before the bytes or size of `node` change: keep its durable image if it was clean. */
  private beforeContentChange(node: ServerNode): void {
    node.changes += 1;
    if (node.durableData === null) {
      node.durableData = node.data.slice(0, node.size);
      this.unflushed.add(node);
    }
  }

  /**
   * A flush of `node` (sync, or a write-through) whose service ends at `endMs`: what the file holds
   * now reaches stable storage then; until then the flush is in flight and a power loss tears it.
   */
  private flush(node: ServerNode, endMs: number): void {
    const now = this.scheduler.nowMs;
    this.settleFlush(node, now);
    if (node.durableData === null) return; // nothing unflushed
    if (node.flushData !== null) {
      // An earlier flush of the file is still in flight: count it as done (the disk orders them).
      node.durableData = node.flushData;
      node.flushData = null;
    }
    node.flushData = node.data.slice(0, node.size);
    node.flushEndMs = endMs;
    node.flushChanges = node.changes;
    this.settleFlush(node, now);
  }

  /** A flush whose service has ended is on stable storage. */
  private settleFlush(node: ServerNode, nowMs: number): void {
    if (node.flushData === null || node.flushEndMs > nowMs) return;
    if (node.changes === node.flushChanges) {
      node.durableData = null;
      this.unflushed.delete(node);
    } else {
      node.durableData = node.flushData;
    }
    node.flushData = null;
  }

  /**
   * The write cache loses power: every file goes back to its durable image; a flush in flight is
   * torn: each sector it changes lands or not (a coin of `random` each), and a size change lands
   * or not. Namespace changes (creates, renames, deletes) are kept: the file system journals its
   * metadata synchronously. Write hooks see each reverted file ('power-loss'). Returns the paths
   * reverted, sorted.
   */
  powerLoss(random: RandomStream): string[] {
    assert(this.trackingDurability, 'powerLoss: the server does not track durability (call trackDurability first)');
    const now = this.scheduler.nowMs;
    const reverted: string[] = [];
    const nodes = [...this.unflushed].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    this.unflushed.clear();
    for (const node of nodes) {
      this.settleFlush(node, now);
      const durable = node.durableData;
      const inFlight = node.flushData;
      node.durableData = null;
      node.flushData = null;
      if (node.unlinked || durable === null) continue;
      const image = inFlight === null ? durable : tornImage(durable, inFlight, random);
      const previousSize = node.size;
      if (image.length > node.data.length) this.growFile(node, image.length);
      node.data.set(image, 0);
      if (previousSize > image.length) node.data.fill(0, image.length, previousSize);
      node.size = image.length;
      node.changes += 1;
      reverted.push(node.path);
      this.trace.record(now, TraceKind.control, -1, Operation.powerLoss, 0, image.length, 0, image.length, node.path);
      if (this.writeHooks.size > 0) {
        const hooks = this.writeHooks.get(node.path);
        if (hooks !== undefined) {
          const event: WriteEvent = {
            path: node.path,
            operation: 'power-loss',
            position: 0,
            length: node.size,
            contents: node.data.subarray(0, node.size),
            client: 'server',
            openId: -1,
            timeMs: now,
          };
          for (const hook of hooks.slice()) hook(event);
        }
      }
    }
    return reverted;
  }

  /** Notifications of `clientName`'s watches are dropped ('lose'), reported `delayMs` late ('delay'), or normal again (null). */
  setNotifyFault(clientName: string, fault: { readonly kind: 'lose' | 'delay'; readonly delayMs?: number } | null): void {
    if (fault === null) {
      this.notifyFaults.delete(clientName);
      return;
    }
    const delayMs = fault.delayMs ?? 0;
    if (fault.kind === 'delay' && !(delayMs > 0 && Number.isFinite(delayMs))) {
      throw new TypeError(`setNotifyFault: a delay needs a positive finite delayMs, got ${describeValue(delayMs)}`);
    }
    this.notifyFaults.set(clientName, { lose: fault.kind === 'lose', delayMs: fault.kind === 'delay' ? delayMs : 0 });
  }

  /**
   * How long an opening request (`opensFile`) must wait for the oplock break of another client
   * that holds the file open and acknowledges breaks late (an oplock-delay fault); 0 if none.
   * The server gives up waiting after `oplockBreakTimeoutMs`.
   */
  oplockBreakDelayMs(call: Call): number {
    const slow = this.nas.slowOplockClients;
    if (slow.size === 0) return 0;
    const node = this.nodes.get(call.path);
    if (node === undefined || node.openCount === 0) return 0;
    const caller = (call.session as ServerSession).clientName;
    let delayMs = 0;
    for (const session of this.sessions.values()) {
      if (session.clientName === caller) continue;
      const sessionDelayMs = slow.get(session.clientName);
      if (sessionDelayMs === undefined || sessionDelayMs <= delayMs) continue;
      for (const open of session.opens) {
        if (open.node === node && open.state === OpenState.open) {
          delayMs = sessionDelayMs;
          break;
        }
      }
    }
    return Math.min(delayMs, oplockBreakTimeoutMs);
  }

  // ---------------------------------------------------------------------------------------------
  // Inspection (no virtual time passes; nothing is traced).

  /**
   * Calls `hook` after every change of the bytes of the file at `path` (writes, truncates,
   * whole-file writes), whoever makes it. Returns a function that removes the hook.
   */
  onWrite(path: string, hook: WriteHook): () => void {
    return addHook(this.writeHooks, path, hook, 'onWrite');
  }

  /** Every granted lock, by path then age; optionally of one file. */
  locks(path?: string): LockInfo[] {
    const result: LockInfo[] = [];
    const nodes = path === undefined ? this.sortedLockedNodes() : this.nodeList(path);
    for (const node of nodes) {
      if (node.locks === null) continue;
      for (const lock of node.locks.held()) {
        const open = this.opens.get(lock.owner);
        assert(open !== undefined, () => `locks: lock owner ${lock.owner} is not an open`);
        result.push({
          path: node.path,
          openId: open.id,
          sessionId: open.session.id,
          client: open.session.clientName,
          offset: lock.offset,
          length: lock.length,
          mode: lock.mode,
          handleState: open.state === OpenState.disconnected ? 'disconnected' : 'open',
        });
      }
    }
    return result;
  }

  /** Every waiting lock request, by path then arrival. */
  lockWaiters(path?: string): LockInfo[] {
    const result: LockInfo[] = [];
    const nodes = path === undefined ? this.sortedLockedNodes() : this.nodeList(path);
    for (const node of nodes) {
      if (node.locks === null) continue;
      for (const waiter of node.locks.queued()) {
        const open = this.opens.get(waiter.owner)!;
        result.push({
          path: node.path,
          openId: open.id,
          sessionId: open.session.id,
          client: open.session.clientName,
          offset: waiter.offset,
          length: waiter.length,
          mode: waiter.mode,
          handleState: open.state === OpenState.disconnected ? 'disconnected' : 'open',
        });
      }
    }
    return result;
  }

  /** Every file and directory (not the root), sorted by path. */
  files(): FileInfo[] {
    const result: FileInfo[] = [];
    for (const [path, node] of this.nodes) {
      if (node === this.root) continue;
      result.push({ path, isDirectory: node.isDirectory, size: node.size, mtimeMs: node.mtimeMs, openCount: node.openCount });
    }
    result.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return result;
  }

  /** A copy of a file's bytes now, or undefined if there is no such file. */
  contents(path: string): Uint8Array | undefined {
    const normalized = normalizePath(path);
    if (normalized === null) return undefined;
    const node = this.nodes.get(normalized);
    if (node === undefined || node.isDirectory) return undefined;
    return node.data.slice(0, node.size);
  }

  /** A file's attributes now, as the server knows them (no attribute cache). */
  attributes(path: string): FileInfo | undefined {
    const normalized = normalizePath(path);
    if (normalized === null) return undefined;
    const node = this.nodes.get(normalized);
    if (node === undefined) return undefined;
    return { path: node.path, isDirectory: node.isDirectory, size: node.size, mtimeMs: node.mtimeMs, openCount: node.openCount };
  }

  /** Live sessions with their opens (inspection). */
  sessionList(): { id: number; client: string; opens: number[]; watches: number }[] {
    return [...this.sessions.values()].map((session) => ({
      id: session.id,
      client: session.clientName,
      opens: [...session.opens].map((open) => open.id),
      watches: session.watches.size,
    }));
  }

  /** Disconnected durable handles that still hold their place (inspection). */
  disconnectedHandles(): { openId: number; path: string; client: string; locks: number }[] {
    return [...this.disconnected].map((open) => ({
      openId: open.id,
      path: open.node.path,
      client: open.session.clientName,
      locks: open.node.locks?.held().filter((lock) => lock.owner === open.id).length ?? 0,
    }));
  }

  /** Checks cross-structure invariants (tests call it; cheap enough for debug runs). */
  checkInvariants(): void {
    for (const [id, open] of this.opens) {
      assert(open.id === id, 'server: open id mismatch');
      assert(open.state !== OpenState.closed, () => `server: closed open ${id} still listed`);
      assert(open.session.opens.has(open), () => `server: open ${id} missing from its session`);
      assert((open.state === OpenState.disconnected) === this.disconnected.has(open), () => `server: open ${id} disconnected bookkeeping`);
    }
    for (const node of this.lockedNodes) {
      for (const lock of node.locks?.held() ?? []) {
        assert(this.opens.has(lock.owner), () => `server: lock on ${node.path} owned by closed open ${lock.owner}`);
      }
    }
    for (const [path, node] of this.nodes) {
      assert(node.path === path, () => `server: node path ${node.path} listed as ${path}`);
      assert(node.size <= node.data.length, () => `server: ${path} size beyond its buffer`);
      if (node.parent !== null) {
        assert(node.parent.children!.get(baseNameOf(path)) === node, () => `server: ${path} missing from its parent`);
      }
    }
  }

  private sortedLockedNodes(): ServerNode[] {
    return [...this.lockedNodes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  private nodeList(path: string): ServerNode[] {
    const normalized = normalizePath(path);
    const node = normalized === null ? undefined : this.nodes.get(normalized);
    return node === undefined ? [] : [node];
  }
}


/**
 * The image a torn flush leaves: the durable bytes with each differing sector of the flush taken
 * or not (a coin each), and the old or the new size.
 */
function tornImage(durable: Uint8Array, flushing: Uint8Array, random: RandomStream): Uint8Array {
  const length = Math.max(durable.length, flushing.length);
  const merged = new Uint8Array(length);
  merged.set(durable, 0);
  for (let start = 0; start < length; start += sectorBytes) {
    const end = Math.min(start + sectorBytes, length);
    let differs = false;
    for (let index = start; index < end; index += 1) {
      if ((durable[index] ?? 0) !== (flushing[index] ?? 0)) {
        differs = true;
        break;
      }
    }
    if (!differs || !random.chance(0.5)) continue;
    for (let index = start; index < end; index += 1) merged[index] = flushing[index] ?? 0;
  }
  const size = durable.length === flushing.length || random.chance(0.5) ? flushing.length : durable.length;
  return merged.subarray(0, size);
}

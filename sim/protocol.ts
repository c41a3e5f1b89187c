/**
 * The wire between a simulated client and the simulated CIFS server: operation codes, SMB-like
 * status codes, and the request record (`Call`) that travels to the server and back.
 *
 * A `Call` is allocated once per port call. The client fills in the arguments, the server writes
 * `status` and `value` when it applies the request (at request-arrival time), and the client
 * delivers the reply later (after the reply latency) unless the reply is lost.
 */

import type { ErrorCode } from '../engine/errors.js';
import type { SimEvent } from './event-queue.js';

/** Operation codes (also the trace's operation column). */
export const Operation = {
  open: 1,
  close: 2,
  read: 3,
  write: 4,
  sync: 5,
  truncate: 6,
  lock: 7,
  unlock: 8,
  readFile: 9,
  writeFile: 10,
  stat: 11,
  setTimes: 12,
  rename: 13,
  unlink: 14,
  readdir: 15,
  mkdir: 16,
  watch: 17,
  unwatch: 18,
  waitForChange: 19,
  sleepUntil: 20,
  /** The cancel a client sends when the bound of a blocking lock passes. */
  lockCancel: 21,
  /** Run controls, in the trace only. */
  clientStart: 30,
  clientFinish: 31,
  clientFail: 32,
  clientCrash: 33,
  clientRestart: 34,
  sessionDrop: 35,
  durableExpire: 36,
  durablePurge: 37,
  durableReclaim: 38,
  control: 39,
  clockSet: 40,
  /** A nemesis fault begins (the record's path names the kind). Marked injected. */
  faultStart: 41,
  /** A nemesis fault heals. */
  faultHeal: 42,
  /** The server lost its write cache: files reverted to their durable images. */
  powerLoss: 43,
} as const;
export type Operation = (typeof Operation)[keyof typeof Operation];

export const operationNames: Record<number, string> = Object.fromEntries(
  Object.entries(Operation).map(([name, code]) => [code, name]),
);

/** Server statuses (NTSTATUS-like), plus the client-side outcomes the ports need. */
export const Status = {
  success: 0,
  /** STATUS_PENDING: the request waits at the server (blocking lock, change notify). */
  pending: 1,
  lockNotGranted: 2,
  fileLockConflict: 3,
  rangeNotLocked: 4,
  invalidLockRange: 5,
  cancelled: 6,
  objectNameNotFound: 7,
  objectPathNotFound: 8,
  objectNameCollision: 9,
  fileClosed: 10,
  userSessionDeleted: 11,
  networkNameDeleted: 12,
  invalidParameter: 13,
  /** STATUS_NOTIFY_ENUM_DIR: the notify queue overflowed; the client must rescan. */
  notifyEnumDir: 14,
  fileIsADirectory: 15,
  notADirectory: 16,
  ioDeviceError: 17,
  /** Client side: a bounded wait ran out. */
  timeout: 18,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

export const statusNames: Record<number, string> = Object.fromEntries(
  Object.entries(Status).map(([name, code]) => [code, name]),
);

/**
 * The NT status each status stands for (MS-ERREF 2.3), as a real server answers it: what the
 * conformance cases compare (conformance/). `timeout` is the client's own (a bounded wait ran out).
 */
export const ntStatusNames: Record<Status, string> = {
  [Status.success]: 'STATUS_SUCCESS',
  [Status.pending]: 'STATUS_PENDING',
  [Status.lockNotGranted]: 'STATUS_LOCK_NOT_GRANTED',
  [Status.fileLockConflict]: 'STATUS_FILE_LOCK_CONFLICT',
  [Status.rangeNotLocked]: 'STATUS_RANGE_NOT_LOCKED',
  [Status.invalidLockRange]: 'STATUS_INVALID_LOCK_RANGE',
  [Status.cancelled]: 'STATUS_CANCELLED',
  [Status.objectNameNotFound]: 'STATUS_OBJECT_NAME_NOT_FOUND',
  [Status.objectPathNotFound]: 'STATUS_OBJECT_PATH_NOT_FOUND',
  [Status.objectNameCollision]: 'STATUS_OBJECT_NAME_COLLISION',
  [Status.fileClosed]: 'STATUS_FILE_CLOSED',
  [Status.userSessionDeleted]: 'STATUS_USER_SESSION_DELETED',
  [Status.networkNameDeleted]: 'STATUS_NETWORK_NAME_DELETED',
  [Status.invalidParameter]: 'STATUS_INVALID_PARAMETER',
  [Status.notifyEnumDir]: 'STATUS_NOTIFY_ENUM_DIR',
  [Status.fileIsADirectory]: 'STATUS_FILE_IS_A_DIRECTORY',
  [Status.notADirectory]: 'STATUS_NOT_A_DIRECTORY',
  [Status.ioDeviceError]: 'STATUS_IO_DEVICE_ERROR',
  [Status.timeout]: 'STATUS_IO_TIMEOUT',
};

/** How each status reaches the engine (STATUS_SUCCESS, PENDING and NOTIFY_ENUM_DIR are not errors). */
export const statusErrorCodes: Record<number, ErrorCode> = {
  [Status.lockNotGranted]: 'LOCK_NOT_GRANTED',
  [Status.fileLockConflict]: 'LOCK_CONFLICT',
  [Status.rangeNotLocked]: 'RANGE_NOT_LOCKED',
  [Status.invalidLockRange]: 'INVALID_LOCK_RANGE',
  [Status.cancelled]: 'CANCELLED',
  [Status.objectNameNotFound]: 'NOT_FOUND',
  [Status.objectPathNotFound]: 'NOT_FOUND',
  [Status.objectNameCollision]: 'EXISTS',
  [Status.fileClosed]: 'CLOSED_HANDLE',
  [Status.userSessionDeleted]: 'SHARE_UNAVAILABLE',
  [Status.networkNameDeleted]: 'SHARE_UNAVAILABLE',
  [Status.invalidParameter]: 'INVALID_ARGUMENT',
  [Status.fileIsADirectory]: 'INVALID_ARGUMENT',
  [Status.notADirectory]: 'INVALID_ARGUMENT',
  [Status.ioDeviceError]: 'IO_ERROR',
  [Status.timeout]: 'TIMEOUT',
};

/** Flags of a call. */
export const CallFlag = {
  create: 1,
  exclusive: 2,
  durable: 4,
  recursive: 8,
  sync: 16,
  /** Lock: shared mode (else exclusive). */
  shared: 32,
  /** Lock: wait for the range (else fail immediately). */
  blocking: 64,
} as const;

/** Where a call is on its way. */
export const CallPhase = {
  /** Travelling to the server. */
  request: 1,
  /** Waiting at the server (blocking lock, change notify). */
  atServer: 2,
  /** Reply travelling back. */
  reply: 3,
  /** Waiting on the client alone (a sleep, a cached attribute). */
  local: 4,
  /** Delivered, lost or abandoned. */
  done: 5,
} as const;
export type CallPhase = (typeof CallPhase)[keyof typeof CallPhase];

/** Completes the calls the server left pending. Implemented by the client side. */
export interface CallOwner {
  /** The server finished a call it had left pending (a lock granted or cancelled, a notify). */
  serverCompleted(call: Call): void;
}

/** Everything the server reads of a session. */
export interface SessionRef {
  readonly id: number;
}

/**
 * One request of one port call. A client reuses the record of its last delivered call for its
 * next one (`reuse`): one call at a time, and nothing keeps a delivered call.
 */
export class Call {
  /** Set by the constructor and by `reuse` only. */
  operation: Operation;
  readonly owner: CallOwner;
  /** The client-side session the call travels on (the server's ServerSession). */
  session: unknown;
  // Arguments.
  path = '';
  targetPath = '';
  /** The server open a handle call names (ServerOpen), or the watch (ServerWatch). */
  target: unknown = null;
  position = 0;
  length = 0;
  data: Uint8Array | null = null;
  /** A read's buffer to read into (FileSystem.read's `into`), or null. */
  into: Uint8Array | null = null;
  flags = 0;
  atimeMs = 0;
  mtimeMs = 0;
  /** Set on the first call after a dropped session (the old session): reclaim durable opens at arrival. */
  reconnectFrom: unknown = null;
  /**
   * Lock sequence number of a lock or unlock on a durable handle (MS-SMB2 3.3.5.14), 0 for none:
   * a replay of the same request after a reconnect returns the first answer without applying twice.
   */
  lockSequence = 0;
  /** The client's bound passed before the server saw the request (lock / notify). */
  deadlinePassed = false;
  // Results.
  status: Status = Status.pending;
  value: unknown = undefined;
  // Client bookkeeping.
  phase: CallPhase = CallPhase.request;
  digest = 0;
  /** The digest of the operation, path and target when known beforehand (a handle's cache), else -1. */
  identityDigest = -1;
  /** Client-clock time at which the client gives up (lock bound, wait deadline, sleep target). */
  deadlineClientMs = Number.POSITIVE_INFINITY;
  /** The latency model's jitter factor for this call (1 = none); drawn when the request leaves. */
  jitter = 1;
  /** Virtual time at which the server finishes working on the request (its reply leaves then); 0 until admitted. */
  serviceEndMs = 0;
  /** Admission steps the request has passed at the server (`AdmissionStep` bits of nas.ts). */
  admission = 0;
  /** The status was caused by an injected fault (the error says so). */
  injected = false;
  event: SimEvent | null = null;
  resolve: ((value: unknown) => void) | null = null;
  reject: ((error: unknown) => void) | null = null;

  constructor(operation: Operation, owner: CallOwner, session: unknown) {
    this.operation = operation;
    this.owner = owner;
    this.session = session;
  }

  /**
   * Makes this record a fresh call of the same owner: every field as the constructor leaves it.
   * Only for a call that is done (delivered), which nothing refers to any more.
   */
  reuse(operation: Operation, session: unknown): void {
    this.operation = operation;
    this.session = session;
    this.path = '';
    this.targetPath = '';
    this.target = null;
    this.position = 0;
    this.length = 0;
    this.data = null;
    this.into = null;
    this.flags = 0;
    this.atimeMs = 0;
    this.mtimeMs = 0;
    this.reconnectFrom = null;
    this.lockSequence = 0;
    this.deadlinePassed = false;
    this.status = Status.pending;
    this.value = undefined;
    this.phase = CallPhase.request;
    this.digest = 0;
    this.identityDigest = -1;
    this.deadlineClientMs = Number.POSITIVE_INFINITY;
    this.jitter = 1;
    this.serviceEndMs = 0;
    this.admission = 0;
    this.injected = false;
    this.event = null;
    this.resolve = null;
    this.reject = null;
  }
}

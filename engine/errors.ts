/**
 * Errors of nasq.
 *
 * Two kinds, told apart on purpose:
 * - Operating errors: the world said no (a lock was not granted, the share went away, a file is
 *   corrupt). They are `NasqError` values with a `code`; callers handle them by code.
 * - Programmer errors: an invariant of our own code broke. They are `AssertionError`s thrown by
 *   `assert` and are never caught inside nasq.
 */

/** Every operating error code, with the situation it stands for. */
export const errorCodes = {
  /** A byte-range lock request conflicts with a lock held by another open (SMB STATUS_LOCK_NOT_GRANTED). */
  LOCK_NOT_GRANTED: 'a lock request conflicts with a lock held by another open',
  /** A read or write overlaps a range locked by another open (SMB STATUS_FILE_LOCK_CONFLICT). */
  LOCK_CONFLICT: 'a read or write overlaps a range locked by another open',
  /** An unlock named a range this open does not hold (SMB STATUS_RANGE_NOT_LOCKED). */
  RANGE_NOT_LOCKED: 'the range is not locked by this open',
  /** Offset + length does not fit in 64 bits (SMB STATUS_INVALID_LOCK_RANGE). */
  INVALID_LOCK_RANGE: 'the lock range is invalid',
  /** A waiting lock request was cancelled, by the client's bound or its handle closing (STATUS_CANCELLED). */
  CANCELLED: 'the request was cancelled',
  /** The path does not exist. */
  NOT_FOUND: 'no such file or directory',
  /** The path exists and the call asked for a new one. */
  EXISTS: 'the file already exists',
  /** The handle was closed, by us or because the server dropped our session (STATUS_FILE_CLOSED). */
  CLOSED_HANDLE: 'the handle is closed',
  /** The share cannot be reached: the session or tree is gone, or the server is failing over. */
  SHARE_UNAVAILABLE: 'the share is unavailable',
  /** The storage failed the operation (a failed array, a media error). */
  IO_ERROR: 'the storage failed the operation',
  /** Bytes read back do not form a valid structure (bad checksum, bad magic, bad link). */
  CORRUPT: 'the data is corrupt',
  /** The queue has no empty slot for a new message. */
  QUEUE_FULL: 'the queue is full',
  /** The lease of a received message was taken over, or the message is no longer pending. */
  LEASE_LOST: 'the lease on this message is no longer held',
  /** A bounded wait ran out. */
  TIMEOUT: 'the wait ran out',
  /** An argument or option is out of range or malformed. */
  INVALID_ARGUMENT: 'an argument is invalid',
  /** The directory is not a nasq queue (no kernel file, or a foreign one). */
  NOT_A_QUEUE: 'the directory is not a nasq queue',
} as const;

export type ErrorCode = keyof typeof errorCodes;

export interface NasqErrorOptions {
  /** Set by fault injectors: the error was planted on purpose, not produced by the system. */
  readonly injected?: boolean;
  /** Structured facts about the failure (paths, offsets, expected and found values). */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

/** An operating error: the caller must handle it by its `code`. */
export class NasqError extends Error {
  readonly code: ErrorCode;
  readonly injected: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: NasqErrorOptions = {}) {
    super(`${code}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NasqError';
    this.code = code;
    this.injected = options.injected ?? false;
    this.details = options.details ?? {};
  }
}

export function isNasqError(error: unknown, ...codes: ErrorCode[]): error is NasqError {
  return error instanceof NasqError && (codes.length === 0 || codes.includes(error.code));
}

/** A broken invariant of nasq's own code. Never caught inside nasq. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new AssertionError(typeof message === 'string' ? message : message());
  }
}

/** Errors that mean "our session or handle is gone": the lock we held may be someone else's now. */
export const sessionLostCodes: readonly ErrorCode[] = ['CLOSED_HANDLE', 'SHARE_UNAVAILABLE'];

/**
 * Translation of Node's errno-style errors into nasq's operating errors.
 *
 * Node reports a failed system call as an Error with a string `code` such as 'ENOENT' (and usually
 * `errno` and `syscall`); os-lock reports its fcntl/LockFileEx failures the same way (code only).
 * The engine must only ever see `NasqError`s for conditions of the world, so every adapter call
 * funnels its failures through `nasqErrorFromNode`. Errors without an errno-style code (a
 * TypeError from a bad argument, an AssertionError) are programmer errors and pass through as they
 * are.
 */

import { NasqError, type ErrorCode } from '../engine/errors.js';

/** What the failing call was doing, for the message and for codes whose meaning depends on it. */
export interface NodeErrorContext {
  /** The port call or system call, e.g. 'open' or 'lock'. */
  readonly operation: string;
  /** The path as the caller gave it, when there is one. */
  readonly path?: string;
  /**
   * True for a byte-range lock request: then EAGAIN, EACCES, EWOULDBLOCK, EBUSY and EDEADLK mean
   * "another process holds a conflicting lock" (fcntl F_SETLK answers EAGAIN or EACCES, LockFileEx
   * ERROR_LOCK_VIOLATION, which libuv names EBUSY). Default false: EACCES is then "permission
   * denied" and EAGAIN a transient failure of the storage.
   */
  readonly lock?: boolean;
  /**
   * True for a read or write of file contents: then EACCES and EBUSY mean "the range is locked by
   * another open". A file opened for reading and writing is not refused for permissions later,
   * but a mandatory lock on a share is: the Linux cifs client reports STATUS_FILE_LOCK_CONFLICT
   * as EACCES, and Windows reports ERROR_LOCK_VIOLATION, which libuv names EBUSY. Default false.
   */
  readonly io?: boolean;
}

/**
 * Errno codes and the nasq codes they become, for any call. Anything else becomes IO_ERROR with
 * the errno in `details.errno`.
 *
 * Choices worth knowing:
 * - ENOTDIR (a path component is a file) is NOT_FOUND: the path does not name anything usable.
 * - ENOTEMPTY (renaming onto a non-empty directory) is EXISTS.
 * - ESTALE (NFS) and EBADF mean our handle is no longer valid: CLOSED_HANDLE, a session-lost code.
 * - Network failures of a mounted share (EHOSTDOWN is what Linux cifs answers while the server is
 *   unreachable) are SHARE_UNAVAILABLE.
 * - EACCES and EPERM outside lock requests (permission denied) are IO_ERROR: the engine has no
 *   separate code and cannot do anything about them but report.
 */
export const errnoToErrorCode: Readonly<Record<string, ErrorCode>> = {
  ENOENT: 'NOT_FOUND',
  ENOTDIR: 'NOT_FOUND',
  EEXIST: 'EXISTS',
  ENOTEMPTY: 'EXISTS',
  EBADF: 'CLOSED_HANDLE',
  ESTALE: 'CLOSED_HANDLE',
  EIO: 'IO_ERROR',
  ENOSPC: 'IO_ERROR',
  EDQUOT: 'IO_ERROR',
  EROFS: 'IO_ERROR',
  EFBIG: 'IO_ERROR',
  EHOSTDOWN: 'SHARE_UNAVAILABLE',
  EHOSTUNREACH: 'SHARE_UNAVAILABLE',
  ENETDOWN: 'SHARE_UNAVAILABLE',
  ENETUNREACH: 'SHARE_UNAVAILABLE',
  ENETRESET: 'SHARE_UNAVAILABLE',
  ENOTCONN: 'SHARE_UNAVAILABLE',
  ECONNRESET: 'SHARE_UNAVAILABLE',
  ECONNABORTED: 'SHARE_UNAVAILABLE',
  ECONNREFUSED: 'SHARE_UNAVAILABLE',
  ETIMEDOUT: 'SHARE_UNAVAILABLE',
  ENOMEDIUM: 'SHARE_UNAVAILABLE',
  EISDIR: 'INVALID_ARGUMENT',
  EINVAL: 'INVALID_ARGUMENT',
  ENAMETOOLONG: 'INVALID_ARGUMENT',
  ELOOP: 'INVALID_ARGUMENT',
};

/** Errno codes that, on a lock request, mean "another process holds a conflicting lock". */
export const lockBusyErrnos: ReadonlySet<string> = new Set(['EAGAIN', 'EACCES', 'EWOULDBLOCK', 'EBUSY', 'EDEADLK']);

/** Errno codes that, on a read or write, mean "another open holds a conflicting lock". */
export const ioConflictErrnos: ReadonlySet<string> = new Set(['EACCES', 'EBUSY']);

/** The errno-style code of a Node or os-lock error ('ENOENT', ...), or undefined if it has none. */
export function errnoOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Is this a lock request refused because another process holds a conflicting lock? */
export function isLockBusyError(error: unknown): boolean {
  const errno = errnoOf(error);
  return errno !== undefined && lockBusyErrnos.has(errno);
}

/**
 * Turns a Node/os-lock error into a NasqError. NasqErrors and errors without an errno-style code
 * are returned unchanged (the caller rethrows them).
 */
export function nasqErrorFromNode(error: unknown, context: NodeErrorContext): unknown {
  if (error instanceof NasqError) return error;
  const errno = errnoOf(error);
  if (errno === undefined) return error;
  const code: ErrorCode =
    context.lock === true && lockBusyErrnos.has(errno)
      ? 'LOCK_NOT_GRANTED'
      : context.io === true && ioConflictErrnos.has(errno)
        ? 'LOCK_CONFLICT'
        : (errnoToErrorCode[errno] ?? 'IO_ERROR');
  const where = context.path === undefined ? '' : ` '${context.path}'`;
  const reason = error instanceof Error ? error.message : String(error);
  return new NasqError(code, `${context.operation}${where}: ${reason}`, {
    cause: error,
    details: { errno, operation: context.operation, ...(context.path === undefined ? {} : { path: context.path }) },
  });
}

/**
 * nasq: a message queue in files on a shared (CIFS/SMB) file system.
 *
 * The engine (create, open, send, receive, ack, release, fsck), its ports and errors, and the real
 * and in-memory adapters. The simulator and the checks live under `nasq/sim` and `nasq/testing`.
 */

export { createQueue, QueueClient, formatReceipt, parseReceipt, queueLayout } from './engine/queue.js';
export type {
  AckOutcome,
  ClientCounters,
  CreateQueueOptions,
  Delivery,
  QueueOptions,
  QueueStat,
  Receipt,
  ReceiveOptions,
  ReleaseOptions,
  SendOptions,
} from './engine/queue.js';
export { fsck } from './engine/fsck.js';
export type { FsckOptions, FsckReport } from './engine/fsck.js';
export { NasqError, AssertionError, errorCodes, isNasqError } from './engine/errors.js';
export type { ErrorCode } from './engine/errors.js';
export type * from './engine/ports.js';
export { kernelViolations, readKernelImage } from './engine/kernel-image.js';
export { NodeFileSystem } from './adapters/node-file-system.js';
export { SystemClock } from './adapters/system-clock.js';
export { MemoryFileSystem } from './adapters/memory-file-system.js';
export { ManualClock } from './adapters/manual-clock.js';
export { detectLocks } from './adapters/detect-locks.js';

/**
 * Before a torture run starts anything: the directory must be a directory this user can write,
 * either empty (a queue is created in it) or an empty nasq queue (reused), on a file system whose
 * byte-range locks exclude across processes. Anything else is a `TortureSetupError` that says
 * what was expected and what was found (the CLI exits 2 with it).
 */

import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import { detectLocks, type LockDetection } from '../adapters/detect-locks.js';
import { isNasqError } from '../engine/errors.js';
import { fsck } from '../engine/fsck.js';
import type { Ports } from '../engine/ports.js';
import { QueueClient, createQueue, queueLayout } from '../engine/queue.js';

/** The directory cannot be tortured as it is: nothing was started. */
export class TortureSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TortureSetupError';
  }
}

export interface PrepareOptions {
  /** Slots of a queue created here. */
  readonly slots: number;
  /** Deliveries before a message is dead-lettered, for a queue created here. */
  readonly maximumDeliveries: number;
  /** The lock probe (a test passes a stand-in for a file system without working locks). Default detectLocks. */
  readonly detectLocks?: (directory: string) => Promise<LockDetection>;
}

export interface PreparedQueue {
  /** Absolute path of the queue directory. */
  readonly directory: string;
  /** A queue was created (false: an empty queue already there is reused). */
  readonly created: boolean;
  readonly totalSlots: number;
  /** What the lock probe found (the mount, when known). */
  readonly locks: LockDetection;
}

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Most directory entries an error message names. */
const entriesNamedMaximum = 5;

export function queuePorts(directory: string): Ports {
  return { fs: new NodeFileSystem(directory), clock: new SystemClock() };
}

/** Checks the directory and creates (or checks) the queue in it. */
export async function prepareQueue(path: string, options: PrepareOptions): Promise<PreparedQueue> {
  const directory = nodePath.resolve(path);
  let madeDirectory = false;
  try {
    const stat = await fs.stat(directory);
    if (!stat.isDirectory()) {
      throw new TortureSetupError(`${path} is not a directory: expected a directory (empty, or a nasq queue), found a ${stat.isFile() ? 'file' : 'special file'}`);
    }
  } catch (error) {
    if (error instanceof TortureSetupError) throw error;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TortureSetupError(`cannot look at ${path}: ${describeError(error)} (expected a directory this user can read and write)`);
    }
    try {
      await fs.mkdir(directory, { recursive: true });
      madeDirectory = true;
    } catch (mkdirError) {
      throw new TortureSetupError(`cannot create ${path}: ${describeError(mkdirError)} (expected a directory this user can create files in)`);
    }
  }
  try {
    return await prepareDirectory(path, directory, options);
  } catch (error) {
    // Leave nothing behind: a directory made here is removed again (only if still empty).
    if (madeDirectory) await fs.rmdir(directory).catch(() => undefined);
    throw error;
  }
}

async function prepareDirectory(path: string, directory: string, options: PrepareOptions): Promise<PreparedQueue> {
  const probe = nodePath.join(directory, `.nasq-torture-write-probe-${process.pid}-${randomUUID()}`);
  try {
    await fs.writeFile(probe, '', { flag: 'wx' });
  } catch (error) {
    throw new TortureSetupError(`${path} is not writable: expected a directory this user can create files in, got ${describeError(error)}`);
  }
  await fs.unlink(probe);

  const entries = (await fs.readdir(directory)).filter((name) => !name.startsWith('.nasq-lock-probe-')).sort();
  const isQueue = entries.includes(queueLayout.kernel);
  if (!isQueue && entries.length > 0) {
    const named = entries.slice(0, entriesNamedMaximum).join(', ');
    throw new TortureSetupError(
      `${path} is not a nasq queue: expected an empty directory (a queue is created in it) or a queue (a '${queueLayout.kernel}' file), ` +
        `found ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} and no '${queueLayout.kernel}' file (${named}${entries.length > entriesNamedMaximum ? ', ...' : ''})`,
    );
  }

  const locks = await (options.detectLocks ?? detectLocks)(directory);
  if (!locks.working) {
    const mount = locks.mount === undefined ? '' : ` (${locks.mount.fileSystemType} mounted at ${locks.mount.mountPoint})`;
    throw new TortureSetupError(
      `byte-range locks do not work on ${path}${mount}: expected a lock one process holds to refuse another process, found ${locks.reason}: ${locks.message}`,
    );
  }

  const ports = queuePorts(directory);
  if (!isQueue) {
    await createQueue(ports, '.', { slots: options.slots, maximumDeliveries: options.maximumDeliveries });
    return { directory, created: true, totalSlots: options.slots, locks };
  }
  return { directory, created: false, totalSlots: await checkExistingQueue(path, ports), locks };
}

/** An existing queue is reused when it is sound and holds no message (every message must be one of the run's). */
async function checkExistingQueue(path: string, ports: Ports): Promise<number> {
  let client: QueueClient;
  try {
    client = await QueueClient.open(ports, '.', {});
  } catch (error) {
    if (isNasqError(error)) throw new TortureSetupError(`${path} has a '${queueLayout.kernel}' file but is not a usable nasq queue: ${error.message}`);
    throw error;
  }
  try {
    const stat = await client.stat();
    const held = stat.unreadCount + stat.pendingCount;
    if (held > 0) {
      throw new TortureSetupError(
        `${path} is a queue holding ${held} message(s) (${stat.unreadCount} unread, ${stat.pendingCount} pending): expected an empty queue, ` +
          `because the checkers must know who sent every message (drain it, or use an empty directory)`,
      );
    }
    const check = await fsck(ports, '.', { lockWaitMs: 10_000 });
    if (check.violations.length > 0 || check.badBodies.length > 0) {
      throw new TortureSetupError(
        `${path} is a damaged queue: expected a sound one, fsck found ${[...check.violations, ...check.badBodies.map((bad) => `body of ${bad.id} ${bad.problem}`)].slice(0, 3).join('; ')} ` +
          `(repair it with "nasq queue fsck ${path} --repair")`,
      );
    }
    return stat.totalSlots;
  } finally {
    await client.close();
  }
}

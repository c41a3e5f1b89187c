/**
 * Checks that byte-range locks really work on the file system holding a directory.
 *
 * Some file systems accept lock calls and enforce nothing between processes (or machines): a
 * Linux cifs mount with `nobrl` keeps locks local to the client, NFS with `nolock` or
 * `local_lock=all|posix` likewise, and some FUSE file systems ignore them. A queue on such a
 * directory would hand the header lock to two clients at once, so `nasq torture` (and anything
 * else that needs real locks) asks first.
 *
 * The probe: a child node process opens a probe file and takes an exclusive lock on byte 0. Then,
 * through a descriptor of its own:
 * 1. the parent must be refused an exclusive lock on byte 0, and a shared one;
 * 2. the parent must be granted a lock on byte 1 (locks are ranges, not whole-file), and while it
 *    holds it, the child must be refused byte 1 (exclusion works both ways);
 * 3. after the child releases, the parent must be granted byte 0.
 * On Linux the mount's type and options are read from /proc/self/mountinfo as well, because a
 * client that keeps locks local passes the probe (both processes are on this machine) yet
 * excludes nobody on another machine.
 */

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as nodePath from 'node:path';
import { createInterface } from 'node:readline';
import { lock as osLock, unlock as osUnlock } from 'os-lock';
import { NasqError } from '../engine/errors.js';
import { errnoOf, isLockBusyError } from './node-errors.js';

export interface DetectLocksOptions {
  /** Bound on the whole probe, in ms; the child is killed when it passes. Default 10_000. */
  readonly timeoutMs?: number;
  /** The node executable for the child process. Default `process.execPath`. */
  readonly nodeExecutable?: string;
  /** Where the mount table is read (Linux). Default '/proc/self/mountinfo'; absent elsewhere. */
  readonly mountInfoPath?: string;
}

/** One expectation of the probe and what was seen. */
export interface LockCheck {
  readonly name: string;
  readonly expected: 'granted' | 'refused';
  readonly observed: 'granted' | 'refused' | 'error';
  /** The errno of a refusal or error ('EAGAIN', 'ENOLCK', ...). */
  readonly errno?: string;
  readonly passed: boolean;
}

/** The mount the directory lives on (Linux only). */
export interface MountDescription {
  readonly mountPoint: string;
  readonly fileSystemType: string;
  readonly source: string;
  /** Per-mount options followed by the file system's own ("super") options. */
  readonly options: readonly string[];
}

export type LockDetectionFailure =
  /** The probe file could not be created or opened in the directory. */
  | 'probe-file-failed'
  /** The child process could not start, or died or spoke nonsense. */
  | 'child-failed'
  /** A lock call failed outright (ENOLCK, ENOSYS, EOPNOTSUPP, ...): locks are not supported. */
  | 'locks-unsupported'
  /** A check did not see the expected answer: locks do not exclude as they must. */
  | 'locks-not-enforced'
  /** The locks work between processes of this machine, but the mount keeps them local. */
  | 'locks-local-only'
  /** The probe did not finish within `timeoutMs`. */
  | 'timeout';

export type LockDetection =
  | {
      readonly working: true;
      readonly directory: string;
      readonly checks: readonly LockCheck[];
      readonly mount: MountDescription | undefined;
    }
  | {
      readonly working: false;
      readonly directory: string;
      readonly reason: LockDetectionFailure;
      readonly message: string;
      readonly checks: readonly LockCheck[];
      readonly mount: MountDescription | undefined;
    };

const defaultTimeoutMs = 10_000;
/** How much of the child's stderr is kept for an error message. */
const childErrorsCharactersMax = 2_000;

/**
 * The child: takes an exclusive lock on byte 0 of the probe file, then answers commands on stdin
 * one line at a time. CommonJS, given to `node -e`; arguments: os-lock's path, the probe file.
 */
const childScript = `
'use strict';
const fs = require('node:fs');
const readline = require('node:readline');
const { lock, unlock } = require(process.argv[1]);
const say = (line) => process.stdout.write(line + '\\n');
let fd;
try { fd = fs.openSync(process.argv[2], 'r+'); } catch (error) { say('error ' + (error.code || 'EUNKNOWN')); process.exit(2); }
lock(fd, 0, 1, { exclusive: true, immediate: true }).then(
  () => say('locked'),
  (error) => { say('error ' + (error.code || 'EUNKNOWN')); process.exit(3); },
);
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [command, offset] = line.split(' ');
  if (command === 'try') {
    lock(fd, Number(offset), 1, { exclusive: true, immediate: true }).then(
      () => unlock(fd, Number(offset), 1).then(() => say('granted')),
      (error) => say('refused ' + (error.code || 'EUNKNOWN')),
    );
  } else if (command === 'release') {
    unlock(fd, 0, 1).then(() => { say('released'); fs.closeSync(fd); process.exit(0); });
  }
});
lines.on('close', () => process.exit(0));
`;

class ProbeFailure extends Error {
  constructor(
    readonly reason: LockDetectionFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Lines from the child, one awaited at a time, bounded by the probe's deadline. */
class ChildLines {
  readonly #queue: string[] = [];
  readonly #waiting: ((line: string | undefined) => void)[] = [];
  #ended = false;

  constructor(child: ChildProcessWithoutNullStreams) {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const waiter = this.#waiting.shift();
      if (waiter === undefined) this.#queue.push(line);
      else waiter(line);
    });
    lines.on('close', () => {
      this.#ended = true;
      for (const waiter of this.#waiting.splice(0)) waiter(undefined);
    });
  }

  next(deadline: number): Promise<string> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#ended) return Promise.reject(new ProbeFailure('child-failed', 'the child process ended early'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.#waiting.indexOf(waiter);
        if (index >= 0) this.#waiting.splice(index, 1);
        reject(new ProbeFailure('timeout', 'the child process did not answer in time'));
      }, Math.max(0, deadline - Date.now()));
      const waiter = (line: string | undefined): void => {
        clearTimeout(timer);
        if (line === undefined) reject(new ProbeFailure('child-failed', 'the child process ended early'));
        else resolve(line);
      };
      this.#waiting.push(waiter);
    });
  }
}

/** Errnos meaning "this file system does not do locks at all". */
const unsupportedErrnos = new Set(['ENOLCK', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL']);

async function tryParentLock(descriptor: number, offset: number, exclusive: boolean): Promise<{ granted: boolean; errno?: string }> {
  try {
    await osLock(descriptor, offset, 1, { exclusive, immediate: true });
    return { granted: true };
  } catch (error) {
    const errno = errnoOf(error) ?? 'EUNKNOWN';
    if (isLockBusyError(error)) return { granted: false, errno };
    throw new ProbeFailure(
      unsupportedErrnos.has(errno) ? 'locks-unsupported' : 'child-failed',
      `the parent's lock call failed with ${errno}`,
    );
  }
}

/** Reads the mount holding `directory` from a Linux mountinfo file, or undefined if unknown. */
export async function describeMount(directory: string, mountInfoPath = '/proc/self/mountinfo'): Promise<MountDescription | undefined> {
  let text: string;
  let realDirectory: string;
  try {
    text = await fs.readFile(mountInfoPath, 'utf8');
    realDirectory = await fs.realpath(directory);
  } catch {
    return undefined;
  }
  // Fields: id parent major:minor root mountPoint mountOptions [optional...] - type source superOptions
  const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  let best: MountDescription | undefined;
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 6 || fields.length < separator + 4) continue;
    const mountPoint = unescape(fields[4]!);
    const inside =
      realDirectory === mountPoint || realDirectory.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
    // The longest mount point containing the directory wins; a later line wins a tie (mounted over).
    if (!inside || (best !== undefined && mountPoint.length < best.mountPoint.length)) continue;
    best = {
      mountPoint,
      fileSystemType: fields[separator + 1]!,
      source: unescape(fields[separator + 2]!),
      options: [...fields[5]!.split(','), ...fields[separator + 3]!.split(',')],
    };
  }
  return best;
}

/** Why a mount keeps byte-range locks on this machine only, or undefined if it does not. */
export function localOnlyLockReason(mount: MountDescription): string | undefined {
  const type = mount.fileSystemType;
  if (type === 'cifs' || type === 'smb3') {
    if (mount.options.includes('nobrl')) return `${type} mount ${mount.mountPoint} has 'nobrl': byte-range locks are not sent to the server`;
  }
  if (type === 'nfs' || type === 'nfs4') {
    if (mount.options.includes('nolock')) return `${type} mount ${mount.mountPoint} has 'nolock': locks are local to this machine`;
    if (mount.options.includes('local_lock=all') || mount.options.includes('local_lock=posix')) {
      return `${type} mount ${mount.mountPoint} keeps POSIX locks local (local_lock)`;
    }
  }
  return undefined;
}

/**
 * Probes whether byte-range locks exclude across processes on the file system of `directory`.
 * Never throws for a condition of the world: every failure is a `working: false` result naming
 * why. Bad options throw INVALID_ARGUMENT.
 */
export async function detectLocks(directory: string, options: DetectLocksOptions = {}): Promise<LockDetection> {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new NasqError('INVALID_ARGUMENT', `detectLocks: timeoutMs: expected a positive finite number, given ${String(timeoutMs)}`, {
      details: { name: 'timeoutMs', given: timeoutMs },
    });
  }
  const nodeExecutable = options.nodeExecutable ?? process.execPath;
  if (typeof nodeExecutable !== 'string' || nodeExecutable.length === 0) {
    throw new NasqError('INVALID_ARGUMENT', `detectLocks: nodeExecutable: expected a path, given ${String(nodeExecutable)}`, {
      details: { name: 'nodeExecutable', given: nodeExecutable },
    });
  }
  const deadline = Date.now() + timeoutMs;
  const absoluteDirectory = nodePath.resolve(directory);
  const mount = await describeMount(absoluteDirectory, options.mountInfoPath);
  const checks: LockCheck[] = [];
  const result = (reason: LockDetectionFailure, message: string): LockDetection => ({
    working: false,
    directory: absoluteDirectory,
    reason,
    message,
    checks,
    mount,
  });

  const probePath = nodePath.join(absoluteDirectory, `.nasq-lock-probe-${process.pid}-${randomUUID()}`);
  let probe: fs.FileHandle;
  try {
    probe = await fs.open(probePath, 'wx+');
    await probe.write(new Uint8Array(2), 0, 2, 0);
  } catch (error) {
    return result('probe-file-failed', `cannot create ${probePath}: ${error instanceof Error ? error.message : String(error)}`);
  }

  let child: ChildProcessWithoutNullStreams | undefined;
  let overall: NodeJS.Timeout | undefined;
  // The child's stderr, kept for the message when it fails; bounded so a noisy child cannot grow it.
  let childErrors = '';
  const withChildErrors = (message: string): string => (childErrors === '' ? message : `${message}; its stderr: ${childErrors.trim()}`);
  try {
    const osLockPath = createRequire(import.meta.url).resolve('os-lock');
    const spawned = spawn(nodeExecutable, ['-e', childScript, osLockPath, probePath], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = spawned;
    spawned.stderr.on('data', (chunk: Buffer) => {
      if (childErrors.length < childErrorsCharactersMax) childErrors += chunk.toString('utf8').slice(0, childErrorsCharactersMax);
    });
    const spawnFailed = new Promise<never>((_, reject) => {
      spawned.once('error', (error) => reject(new ProbeFailure('child-failed', `cannot start the child: ${error.message}`)));
      overall = setTimeout(() => reject(new ProbeFailure('timeout', `the probe took longer than ${timeoutMs} ms`)), timeoutMs);
    });
    spawnFailed.catch(() => undefined);
    const lines = new ChildLines(spawned);
    const next = (): Promise<string> => Promise.race([lines.next(deadline), spawnFailed]);
    const check = (name: string, expected: 'granted' | 'refused', granted: boolean, errno?: string): boolean => {
      const observed = granted ? 'granted' : 'refused';
      const passed = observed === expected;
      checks.push({ name, expected, observed, ...(errno === undefined ? {} : { errno }), passed });
      return passed;
    };

    const first = await next();
    if (first !== 'locked') {
      const errno = first.startsWith('error ') ? first.slice('error '.length) : undefined;
      checks.push({ name: 'child takes an exclusive lock on byte 0', expected: 'granted', observed: 'error', ...(errno ? { errno } : {}), passed: false });
      if (errno !== undefined && unsupportedErrnos.has(errno)) return result('locks-unsupported', `the child's lock call failed with ${errno}`);
      return result('child-failed', withChildErrors(`the child answered '${first}'`));
    }
    checks.push({ name: 'child takes an exclusive lock on byte 0', expected: 'granted', observed: 'granted', passed: true });

    const exclusive = await tryParentLock(probe.fd, 0, true);
    const shared = await tryParentLock(probe.fd, 0, false);
    const rangeOk = check('parent is refused an exclusive lock on byte 0', 'refused', exclusive.granted, exclusive.errno);
    const sharedOk = check('parent is refused a shared lock on byte 0', 'refused', shared.granted, shared.errno);
    if (exclusive.granted || shared.granted) await osUnlock(probe.fd, 0, 1);

    const other = await tryParentLock(probe.fd, 1, true);
    const otherOk = check('parent is granted an exclusive lock on byte 1', 'granted', other.granted, other.errno);
    let reverseOk = true;
    if (other.granted) {
      spawned.stdin.write('try 1\n');
      const answer = await next();
      if (!answer.startsWith('granted') && !answer.startsWith('refused')) return result('child-failed', `the child answered '${answer}'`);
      const childErrno = answer.startsWith('refused ') ? answer.slice('refused '.length) : undefined;
      reverseOk = check('child is refused byte 1 while the parent holds it', 'refused', answer === 'granted', childErrno);
      await osUnlock(probe.fd, 1, 1);
    }

    spawned.stdin.write('release\n');
    const released = await next();
    if (released !== 'released') return result('child-failed', `the child answered '${released}' to release`);
    const after = await tryParentLock(probe.fd, 0, true);
    const afterOk = check('parent is granted byte 0 after the child released it', 'granted', after.granted, after.errno);
    if (after.granted) await osUnlock(probe.fd, 0, 1);

    if (!(rangeOk && sharedOk && otherOk && reverseOk && afterOk)) {
      const failed = checks.filter((entry) => !entry.passed).map((entry) => entry.name);
      return result('locks-not-enforced', `byte-range locks do not exclude across processes: ${failed.join('; ')}`);
    }
    const localOnly = mount === undefined ? undefined : localOnlyLockReason(mount);
    if (localOnly !== undefined) return result('locks-local-only', localOnly);
    return { working: true, directory: absoluteDirectory, checks, mount };
  } catch (error) {
    if (error instanceof ProbeFailure) {
      return result(error.reason, error.reason === 'child-failed' ? withChildErrors(error.message) : error.message);
    }
    return result('child-failed', error instanceof Error ? error.message : String(error));
  } finally {
    if (overall !== undefined) clearTimeout(overall);
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // The parent holds no other descriptor of the probe file, so closing this one drops nothing else.
    await probe.close().catch(() => undefined);
    await fs.unlink(probePath).catch(() => undefined);
  }
}

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isNasqError, NasqError, type ErrorCode } from '../engine/errors.js';
import type { FileHandle } from '../engine/ports.js';
import { describeOpenFiles, NodeFileSystem } from './node-file-system.js';
import { errnoToErrorCode, nasqErrorFromNode } from './node-errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<NasqError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isNasqError(error), `expected NasqError ${code}, got ${String(error)}`).toBe(true);
  expect((error as NasqError).code).toBe(code);
  return error as NasqError;
}

let root: string;
let fileSystem: NodeFileSystem;
const children: ChildProcessWithoutNullStreams[] = [];

/** Every handle a test opened through `fileSystem`, closed after it if the test did not. */
const opened: FileHandle[] = [];

beforeEach(async () => {
  root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-node-fs-'));
  fileSystem = new NodeFileSystem(root, { lockPollIntervalMsMax: 5, watchPollIntervalMs: 20 });
  const open = fileSystem.open.bind(fileSystem);
  fileSystem.open = async (...parameters) => {
    const handle = await open(...parameters);
    opened.push(handle);
    return handle;
  };
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const handle of opened.splice(0)) await fileSystem.close(handle).catch(() => undefined);
  // Every descriptor is closed once every open is.
  expect(describeOpenFiles()).toEqual([]);
  await fs.rm(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// A child process holding raw fcntl locks (no in-process layer): the "other process".

const osLockPath = createRequire(import.meta.url).resolve('os-lock');

/**
 * Arguments: os-lock's path, the file, then a command:
 * - hold OFFSET LENGTH MODE: take the lock at once, say 'locked' (or 'refused ERRNO'), then on a
 *   stdin line 'release' unlock and say 'released'. Exits when stdin closes.
 * - try OFFSET LENGTH MODE: say 'granted' or 'refused ERRNO' and exit.
 * - count ITERATIONS: that many times, wait for an exclusive lock on byte 0 (F_SETLKW, fine in a
 *   process that does nothing else), read the decimal counter at bytes 16..31, yield, write it
 *   back plus one, unlock. Then say 'done'.
 */
const childScript = `
'use strict';
const fs = require('node:fs');
const readline = require('node:readline');
const { lock, unlock } = require(process.argv[1]);
const [file, command, ...rest] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + '\\n');
const fd = fs.openSync(file, 'r+');
const pause = () => new Promise((resolve) => setImmediate(resolve));
async function main() {
  if (command === 'hold' || command === 'try') {
    const [offset, length, mode] = rest;
    try {
      await lock(fd, Number(offset), Number(length), { exclusive: mode === 'exclusive', immediate: true });
    } catch (error) {
      say('refused ' + error.code);
      if (command === 'try') process.exit(0);
      return;
    }
    if (command === 'try') { say('granted'); process.exit(0); }
    say('locked');
    readline.createInterface({ input: process.stdin }).on('line', async (line) => {
      if (line === 'release') { await unlock(fd, Number(offset), Number(length)); say('released'); }
    }).on('close', () => process.exit(0));
  } else if (command === 'count') {
    const buffer = Buffer.alloc(16);
    for (let iteration = 0; iteration < Number(rest[0]); iteration += 1) {
      await lock(fd, 0, 1, { exclusive: true });
      fs.readSync(fd, buffer, 0, 16, 16);
      const value = Number(buffer.toString('utf8').trim() || '0');
      await pause();
      fs.writeSync(fd, Buffer.from(String(value + 1).padEnd(16, ' ')), 0, 16, 16);
      await unlock(fd, 0, 1);
    }
    say('done');
    process.exit(0);
  }
}
main().catch((error) => { say('error ' + (error.code || error.message)); process.exit(1); });
`;

interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  /** The next line the child says. */
  line(): Promise<string>;
  send(line: string): void;
  exited: Promise<void>;
}

function startChild(file: string, ...command: string[]): Child {
  const child = spawn(process.execPath, ['-e', childScript, osLockPath, file, ...command], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  const queued: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter === undefined) queued.push(line);
    else waiter(line);
  });
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString('utf8');
  });
  return {
    process: child,
    line: () =>
      queued.length > 0
        ? Promise.resolve(queued.shift()!)
        : new Promise((resolve, reject) => {
            waiting.push(resolve);
            child.once('exit', (code) => reject(new Error(`child exited (${code}) before answering: ${errors}`)));
          }),
    send: (line) => child.stdin.write(`${line}\n`),
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
}

/** What another process is told when it asks for the range at once. */
async function otherProcessTries(path: string, offset: number, length: number, mode: 'exclusive' | 'shared'): Promise<string> {
  const child = startChild(nodePath.join(root, path), 'try', String(offset), String(length), mode);
  const answer = await child.line();
  await child.exited;
  return answer.split(' ')[0]!;
}

/** Opens `path`, creating it empty if missing. */
async function newFileOnce(path: string): Promise<FileHandle> {
  return fileSystem.open(path, { create: true });
}

async function newFile(path: string, content = ''): Promise<FileHandle> {
  await fileSystem.writeFile(path, bytes(content));
  return fileSystem.open(path);
}

// ---------------------------------------------------------------------------------------------

describe('NodeFileSystem: files', () => {
  it('opens, writes, reads (short at end of file), extends with zeros, truncates, syncs', async () => {
    const handle = await fileSystem.open('a', { create: true });
    expect(handle.path).toBe('a');
    await fileSystem.write(handle, 0, bytes('hello'));
    expect(decoder.decode(await fileSystem.read(handle, 1, 100))).toBe('ello');
    await fileSystem.write(handle, 8, bytes('!'));
    expect([...(await fileSystem.read(handle, 4, 10))]).toEqual([111, 0, 0, 0, 33]);
    await fileSystem.truncate(handle, 2);
    expect(await fileSystem.read(handle, 0, 10)).toEqual(bytes('he'));
    expect(await fileSystem.read(handle, 10, 0)).toEqual(new Uint8Array(0));
    await fileSystem.sync(handle);
    expect((await fileSystem.stat('a')).size).toBe(2);
    await fileSystem.close(handle);
    expect(describeOpenFiles()).toEqual([]);
  });

  it('honours create and exclusive on open', async () => {
    await expectCode(fileSystem.open('missing'), 'NOT_FOUND');
    const handle = await fileSystem.open('new', { create: true, exclusive: true });
    await expectCode(fileSystem.open('new', { create: true, exclusive: true }), 'EXISTS');
    await fileSystem.close(handle);
    await expectCode(fileSystem.open('new', { exclusive: true }), 'INVALID_ARGUMENT');
  });

  it('reads and writes whole files, replacing, exclusively, and durably', async () => {
    await fileSystem.writeFile('body', bytes('a long first version'));
    await fileSystem.writeFile('body', bytes('short'));
    expect(decoder.decode(await fileSystem.readFile('body'))).toBe('short');
    await expectCode(fileSystem.writeFile('body', bytes('x'), { exclusive: true }), 'EXISTS');
    await fileSystem.writeFile('durable', bytes('kept'), { exclusive: true, sync: true });
    expect(decoder.decode(await fileSystem.readFile('durable'))).toBe('kept');
    expect(await fileSystem.readFile('durable')).toBeInstanceOf(Uint8Array);
    await expectCode(fileSystem.readFile('nothing'), 'NOT_FOUND');
    expect(describeOpenFiles()).toEqual([]);
  });

  it('stats, sets times, lists sorted, makes directories, unlinks', async () => {
    await fileSystem.mkdir('dir');
    await expectCode(fileSystem.mkdir('dir'), 'EXISTS');
    await fileSystem.mkdir('dir/deep/er', { recursive: true });
    for (const name of ['b', 'C', 'a', 'a0']) await fileSystem.writeFile(`dir/${name}`, bytes(name));
    expect(await fileSystem.readdir('dir')).toEqual(['C', 'a', 'a0', 'b', 'deep']);
    expect((await fileSystem.stat('dir')).isDirectory).toBe(true);
    await fileSystem.setTimes('dir/a', 1_000_000, 1_700_000_000_123);
    const stat = await fileSystem.stat('dir/a');
    expect(stat).toEqual({ size: 1, mtimeMs: 1_700_000_000_123, isDirectory: false });
    await fileSystem.unlink('dir/a');
    await expectCode(fileSystem.unlink('dir/a'), 'NOT_FOUND');
    await expectCode(fileSystem.stat('dir/a'), 'NOT_FOUND');
    await expectCode(fileSystem.readdir('nowhere'), 'NOT_FOUND');
    // A durable delete (the directory is flushed too); a name already gone is still NOT_FOUND.
    await fileSystem.unlink('dir/b', { sync: true });
    expect(await fileSystem.readdir('dir')).toEqual(['C', 'a0', 'deep']);
    await expectCode(fileSystem.unlink('dir/b', { sync: true }), 'NOT_FOUND');
    await expectCode(fileSystem.unlink('nowhere/b', { sync: true }), 'NOT_FOUND');
  });

  it('renames without ever replacing the target', async () => {
    await fileSystem.writeFile('from', bytes('1'));
    await fileSystem.writeFile('taken', bytes('2'));
    await expectCode(fileSystem.rename('from', 'taken'), 'EXISTS');
    expect(decoder.decode(await fileSystem.readFile('taken'))).toBe('2');
    await fileSystem.rename('from', 'to');
    expect(await fileSystem.readdir('.')).toEqual(['taken', 'to']);
    await expectCode(fileSystem.rename('from', 'again'), 'NOT_FOUND');
    // Durable renames (both directories flushed), also across directories; errors as without.
    await fileSystem.mkdir('elsewhere');
    await fileSystem.rename('to', 'elsewhere/to', { sync: true });
    expect(await fileSystem.readdir('elsewhere')).toEqual(['to']);
    await expectCode(fileSystem.rename('to', 'elsewhere/again', { sync: true }), 'NOT_FOUND');
    await expectCode(fileSystem.rename('taken', 'elsewhere/to', { sync: true }), 'EXISTS');
    await fileSystem.rename('elsewhere/to', 'to', { sync: true });
    await fileSystem.rename('elsewhere', 'moved', { sync: true }); // a directory: the check-then-rename path
    // Directories cannot be hard-linked: the check-then-rename fallback.
    await fileSystem.mkdir('d1');
    await fileSystem.mkdir('d2');
    await expectCode(fileSystem.rename('d1', 'd2'), 'EXISTS');
    await fileSystem.rename('d1', 'd3');
    expect(await fileSystem.readdir('.')).toEqual(['d2', 'd3', 'moved', 'taken', 'to']);
  });

  it('refuses every call on a closed handle with CLOSED_HANDLE', async () => {
    const handle = await newFile('f', 'x');
    await fileSystem.close(handle);
    await expectCode(fileSystem.read(handle, 0, 1), 'CLOSED_HANDLE');
    await expectCode(fileSystem.write(handle, 0, bytes('y')), 'CLOSED_HANDLE');
    await expectCode(fileSystem.lock(handle, { offset: 0, length: 1 }), 'CLOSED_HANDLE');
    await expectCode(fileSystem.unlock(handle, { offset: 0, length: 1 }), 'CLOSED_HANDLE');
    await expectCode(fileSystem.sync(handle), 'CLOSED_HANDLE');
    await expectCode(fileSystem.truncate(handle, 0), 'CLOSED_HANDLE');
    await expectCode(fileSystem.close(handle), 'CLOSED_HANDLE');
  });

  it('rejects bad arguments and options naming what was expected and given', async () => {
    expect(() => new NodeFileSystem(root, { lockPollIntervalMsMin: -1 })).toThrow(
      /option lockPollIntervalMsMin: expected a positive finite number, given -1/,
    );
    expect(() => new NodeFileSystem(root, { lockPollIntervalMsMin: 10, lockPollIntervalMsMax: 5 })).toThrow(/given 5/);
    expect(() => new NodeFileSystem(root, { pollMs: 1 } as never)).toThrow(/option pollMs: expected one of/);
    expect(() => new NodeFileSystem('')).toThrow(/root: expected a non-empty path/);
    const handle = await newFile('f');
    await expectCode(fileSystem.read(handle, -1, 1), 'INVALID_ARGUMENT');
    await expectCode(fileSystem.read(handle, 0, 1.5), 'INVALID_ARGUMENT');
    await expectCode(fileSystem.lock(handle, { offset: -1, length: 1 }), 'INVALID_ARGUMENT');
    await expectCode(fileSystem.lock(handle, { offset: 2 ** 64 - 4096, length: 8192 }), 'INVALID_LOCK_RANGE');
    await expectCode(fileSystem.lock(handle, { offset: 0, length: 1 }, { waitMs: -5 }), 'INVALID_ARGUMENT');
    await expectCode(fileSystem.lock(handle, { offset: 0, length: 1 }, { mode: 'read' as never }), 'INVALID_ARGUMENT');
    await expectCode(fileSystem.open(''), 'INVALID_ARGUMENT');
    await fileSystem.close(handle);
  });
});

describe('NodeFileSystem: one descriptor per file per process', () => {
  it('shares one descriptor among all opens of a file, even through another name', async () => {
    const first = await newFile('f');
    const second = await fileSystem.open('f');
    await fs.link(nodePath.join(root, 'f'), nodePath.join(root, 'alias'));
    const third = await new NodeFileSystem(root).open('alias');
    expect(describeOpenFiles()).toEqual([expect.objectContaining({ references: 3, descriptors: 1 })]);
    await fileSystem.close(first);
    await fileSystem.close(second);
    expect(describeOpenFiles()).toEqual([expect.objectContaining({ references: 1 })]);
    await fileSystem.close(third);
    expect(describeOpenFiles()).toEqual([]);
  });

  it('keeps a second descriptor, unused, while the file is locked, and closes it once it is not', async () => {
    const holder = await newFile('held');
    await fileSystem.lock(holder, { offset: 0, length: 1 });
    const later = await fileSystem.open('held');
    await fileSystem.readFile('held').catch(() => undefined);
    expect(describeOpenFiles()).toEqual([expect.objectContaining({ references: 2, descriptors: 3 })]);
    expect(await otherProcessTries('held', 0, 1, 'exclusive')).toBe('refused');
    await fileSystem.unlock(holder, { offset: 0, length: 1 });
    expect(describeOpenFiles()).toEqual([expect.objectContaining({ references: 2, descriptors: 1 })]);
    await fileSystem.lock(later, { offset: 0, length: 1 });
    expect(await otherProcessTries('held', 0, 1, 'exclusive')).toBe('refused');
  });

  it('gives a new file at an old name its own entry, while the unlinked one stays locked', async () => {
    const old = await newFile('name', 'old');
    await fileSystem.lock(old, { offset: 0, length: 1 });
    await fileSystem.unlink('name');
    await fileSystem.writeFile('name', bytes('new'));
    const fresh = await fileSystem.open('name');
    await fileSystem.lock(fresh, { offset: 0, length: 1 });
    expect(describeOpenFiles()).toHaveLength(2);
    expect(decoder.decode(await fileSystem.read(old, 0, 3))).toBe('old');
    expect(decoder.decode(await fileSystem.read(fresh, 0, 3))).toBe('new');
  });

  it('keeps racing opens of one new file on one entry', async () => {
    const handles = await Promise.all(Array.from({ length: 8 }, () => fileSystem.open('race', { create: true })));
    const [entry] = describeOpenFiles();
    expect(describeOpenFiles()).toHaveLength(1);
    expect(entry!.references).toBe(8);
    for (const handle of handles) await fileSystem.close(handle);
    expect(describeOpenFiles()).toEqual([]);
  });
});

describe('NodeFileSystem: SMB lock semantics inside one process', () => {
  it('makes two handles of one process exclude each other', async () => {
    const first = await newFile('k');
    const second = await fileSystem.open('k');
    await fileSystem.lock(first, { offset: 0, length: 10 });
    const refused = await expectCode(fileSystem.lock(second, { offset: 9, length: 1 }), 'LOCK_NOT_GRANTED');
    expect(refused.details.holder).toBe('this process');
    await expectCode(fileSystem.lock(second, { offset: 0, length: 1 }, { mode: 'shared' }), 'LOCK_NOT_GRANTED');
    await fileSystem.lock(second, { offset: 10, length: 10 });
    // The same open cannot stack two exclusive locks either.
    await expectCode(fileSystem.lock(first, { offset: 0, length: 10 }), 'LOCK_NOT_GRANTED');
  });

  it('does not drop a lock of one handle when another handle of the file closes', async () => {
    const holder = await newFile('k', 'content');
    await fileSystem.lock(holder, { offset: 0, length: 4 });
    const other = await fileSystem.open('k');
    await fileSystem.close(other);
    // readFile and writeFile open the file too; they must not close the locked descriptor.
    await expectCode(fileSystem.readFile('k'), 'LOCK_CONFLICT');
    await fileSystem.writeFile('unrelated', bytes('x'));
    expect(await otherProcessTries('k', 0, 1, 'exclusive')).toBe('refused');
    const third = await fileSystem.open('k');
    await expectCode(fileSystem.lock(third, { offset: 0, length: 1 }), 'LOCK_NOT_GRANTED');
    await fileSystem.close(third);
    expect(await otherProcessTries('k', 3, 1, 'shared')).toBe('refused');
    await fileSystem.close(holder);
    expect(await otherProcessTries('k', 0, 1, 'exclusive')).toBe('granted');
  });

  it('lets shared locks share, refuses exclusive ones, and enforces reads and writes (mandatory, in process)', async () => {
    const first = await newFile('s', '0123456789');
    const second = await fileSystem.open('s');
    const third = await fileSystem.open('s');
    await fileSystem.lock(first, { offset: 0, length: 5 }, { mode: 'shared' });
    await fileSystem.lock(second, { offset: 0, length: 5 }, { mode: 'shared' });
    await expectCode(fileSystem.lock(third, { offset: 4, length: 1 }), 'LOCK_NOT_GRANTED');
    expect(decoder.decode(await fileSystem.read(third, 0, 5))).toBe('01234');
    // Nobody writes a shared range, the holder included.
    await expectCode(fileSystem.write(first, 0, bytes('x')), 'LOCK_CONFLICT');
    await expectCode(fileSystem.write(third, 4, bytes('x')), 'LOCK_CONFLICT');
    await fileSystem.write(third, 5, bytes('x'));
    // Exclusive: others may neither read nor write, the holder may.
    await fileSystem.lock(third, { offset: 6, length: 2 });
    await expectCode(fileSystem.read(first, 5, 2), 'LOCK_CONFLICT');
    await expectCode(fileSystem.write(second, 7, bytes('y')), 'LOCK_CONFLICT');
    await expectCode(fileSystem.writeFile('s', bytes('replaced')), 'LOCK_CONFLICT');
    await fileSystem.write(third, 6, bytes('zz'));
    expect(decoder.decode(await fileSystem.read(third, 5, 3))).toBe('xzz');
    // Other processes: the shared range is shared, the exclusive one exclusive.
    expect(await otherProcessTries('s', 0, 5, 'shared')).toBe('granted');
    expect(await otherProcessTries('s', 2, 1, 'exclusive')).toBe('refused');
    expect(await otherProcessTries('s', 7, 1, 'shared')).toBe('refused');
    expect(await otherProcessTries('s', 8, 100, 'exclusive')).toBe('granted');
  });

  it('unlocks exactly: same open, same offset and length; one open releasing leaves the other covered', async () => {
    const first = await newFile('u');
    const second = await fileSystem.open('u');
    await fileSystem.lock(first, { offset: 0, length: 10 }, { mode: 'shared' });
    await fileSystem.lock(second, { offset: 5, length: 10 }, { mode: 'shared' });
    await expectCode(fileSystem.unlock(first, { offset: 0, length: 5 }), 'RANGE_NOT_LOCKED');
    await expectCode(fileSystem.unlock(second, { offset: 0, length: 10 }), 'RANGE_NOT_LOCKED');
    await fileSystem.unlock(first, { offset: 0, length: 10 });
    await expectCode(fileSystem.unlock(first, { offset: 0, length: 10 }), 'RANGE_NOT_LOCKED');
    // The bytes 5..14 are still the second open's: another process may not write-lock them.
    expect(await otherProcessTries('u', 0, 5, 'exclusive')).toBe('granted');
    expect(await otherProcessTries('u', 5, 1, 'exclusive')).toBe('refused');
    expect(await otherProcessTries('u', 14, 1, 'exclusive')).toBe('refused');
    expect(describeOpenFiles()[0]!.osLocks).toEqual([{ start: 5, end: 15, mode: 'shared' }]);
  });

  it('stacks a shared lock on an own exclusive one without downgrading it, and needs two unlocks', async () => {
    const holder = await newFile('stack');
    const other = await fileSystem.open('stack');
    await fileSystem.lock(holder, { offset: 0, length: 4 });
    await fileSystem.lock(holder, { offset: 0, length: 4 }, { mode: 'shared' });
    expect(await otherProcessTries('stack', 0, 4, 'shared')).toBe('refused');
    await fileSystem.unlock(holder, { offset: 0, length: 4 });
    // The exclusive one went first: now shared, here and for other processes.
    await fileSystem.lock(other, { offset: 0, length: 4 }, { mode: 'shared' });
    await expectCode(fileSystem.lock(other, { offset: 0, length: 1 }), 'LOCK_NOT_GRANTED');
    expect(await otherProcessTries('stack', 0, 4, 'shared')).toBe('granted');
    expect(await otherProcessTries('stack', 0, 4, 'exclusive')).toBe('refused');
    await fileSystem.unlock(holder, { offset: 0, length: 4 });
    await fileSystem.unlock(other, { offset: 0, length: 4 });
    expect(await otherProcessTries('stack', 0, 4, 'exclusive')).toBe('granted');
  });

  it('lets zero-length locks never conflict, and locks past the end of file', async () => {
    const first = await newFile('z');
    const second = await fileSystem.open('z');
    await fileSystem.lock(first, { offset: 0, length: 0 });
    await fileSystem.lock(second, { offset: 0, length: 0 });
    await fileSystem.lock(first, { offset: 2 ** 40, length: 10 });
    await expectCode(fileSystem.lock(second, { offset: 2 ** 40 + 9, length: 1 }), 'LOCK_NOT_GRANTED');
    await fileSystem.unlock(first, { offset: 0, length: 0 });
    expect(await otherProcessTries('z', 0, 1, 'exclusive')).toBe('granted');
    expect(await otherProcessTries('z', 2 ** 40, 1, 'exclusive')).toBe('refused');
    // Up to 2^53 - 1, where numbers stop being exact integers (2^60 + 1 === 2^60).
    await expectCode(fileSystem.lock(first, { offset: 2 ** 60, length: 1 }), 'INVALID_LOCK_RANGE');
    await fileSystem.lock(second, { offset: 2 ** 53 - 10, length: 9 });
    expect(describeOpenFiles()[0]!.osLocks).toEqual([
      { start: 2 ** 40, end: 2 ** 40 + 10, mode: 'exclusive' },
      { start: 2 ** 53 - 10, end: 2 ** 53 - 1, mode: 'exclusive' },
    ]);
    expect(await otherProcessTries('z', 2 ** 53 - 2, 1, 'shared')).toBe('refused');
    await fileSystem.unlock(second, { offset: 2 ** 53 - 10, length: 9 });
    expect(await otherProcessTries('z', 2 ** 53 - 2, 1, 'shared')).toBe('granted');
  });

  it('waits within a bound: granted when released, LOCK_NOT_GRANTED when not, CANCELLED when closed', async () => {
    const first = await newFile('w');
    const second = await fileSystem.open('w');
    await fileSystem.lock(first, { offset: 0, length: 1 });
    const started = performance.now();
    await expectCode(fileSystem.lock(second, { offset: 0, length: 1 }, { waitMs: 100 }), 'LOCK_NOT_GRANTED');
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);

    const waiting = fileSystem.lock(second, { offset: 0, length: 1 }, { waitMs: 5_000 });
    setTimeout(() => void fileSystem.unlock(first, { offset: 0, length: 1 }), 50);
    await waiting;
    await expectCode(fileSystem.lock(first, { offset: 0, length: 1 }), 'LOCK_NOT_GRANTED');

    const cancelled = fileSystem.lock(first, { offset: 0, length: 1 }, { waitMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fileSystem.close(first);
    await expectCode(cancelled, 'CANCELLED');
    await fileSystem.close(second);
    expect(describeOpenFiles()).toEqual([]);
  });

  it('serves waiters of one process first in, first out', async () => {
    const holder = await newFile('fifo');
    const waiters = await Promise.all([1, 2, 3].map(() => fileSystem.open('fifo')));
    await fileSystem.lock(holder, { offset: 0, length: 1 });
    const order: number[] = [];
    const waits = waiters.map(async (handle, index) => {
      await new Promise((resolve) => setTimeout(resolve, index * 10));
      await fileSystem.lock(handle, { offset: 0, length: 1 }, { waitMs: 5_000 });
      order.push(index);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await fileSystem.unlock(handle, { offset: 0, length: 1 });
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await fileSystem.unlock(holder, { offset: 0, length: 1 });
    await Promise.all(waits);
    expect(order).toEqual([0, 1, 2]);
  });
});

describe('NodeFileSystem: exclusion across OS processes', () => {
  it('refuses another process while held, and is refused while another process holds', async () => {
    const handle = await newFile('x', 'data');
    await fileSystem.lock(handle, { offset: 0, length: 2 });
    expect(await otherProcessTries('x', 1, 1, 'shared')).toBe('refused');
    await fileSystem.unlock(handle, { offset: 0, length: 2 });
    expect(await otherProcessTries('x', 1, 1, 'exclusive')).toBe('granted');

    const holder = startChild(nodePath.join(root, 'x'), 'hold', '0', '2', 'exclusive');
    expect(await holder.line()).toBe('locked');
    const refused = await expectCode(fileSystem.lock(handle, { offset: 1, length: 1 }, { mode: 'shared' }), 'LOCK_NOT_GRANTED');
    expect(refused.details.holder).toBe('another process');
    await fileSystem.lock(handle, { offset: 2, length: 2 });
    // A refused request leaves nothing behind, in the table or in fcntl.
    expect(describeOpenFiles()[0]!.osLocks).toEqual([{ start: 2, end: 4, mode: 'exclusive' }]);
    holder.send('release');
    expect(await holder.line()).toBe('released');
    await fileSystem.lock(handle, { offset: 0, length: 2 }, { waitMs: 1_000 });
    await fileSystem.close(handle);
  });

  it('waits for another process without blocking the event loop or the fs thread pool', async () => {
    await fileSystem.writeFile('other', bytes('free'));
    const handles = await Promise.all(Array.from({ length: 8 }, () => newFileOnce('busy')));
    const holder = startChild(nodePath.join(root, 'busy'), 'hold', '0', '1', 'exclusive');
    expect(await holder.line()).toBe('locked');
    let ticks = 0;
    const ticker = setInterval(() => (ticks += 1), 10);
    // Eight waiters: more than the four threads of libuv's pool, which F_SETLKW would all park.
    const waits = handles.map((handle, index) =>
      expectCode(fileSystem.lock(handle, { offset: 0, length: 1 }, { waitMs: 400, mode: index % 2 === 0 ? 'exclusive' : 'shared' }), 'LOCK_NOT_GRANTED'),
    );
    const started = performance.now();
    expect(decoder.decode(await fileSystem.readFile('other'))).toBe('free');
    expect(performance.now() - started).toBeLessThan(350);
    await Promise.all(waits);
    clearInterval(ticker);
    expect(ticks).toBeGreaterThanOrEqual(5);
  });

  it('gets the lock once a SIGKILLed holder is gone', async () => {
    const handle = await newFile('killed');
    const holder = startChild(nodePath.join(root, 'killed'), 'hold', '0', '1', 'exclusive');
    expect(await holder.line()).toBe('locked');
    await expectCode(fileSystem.lock(handle, { offset: 0, length: 1 }, { waitMs: 50 }), 'LOCK_NOT_GRANTED');
    const waiting = fileSystem.lock(handle, { offset: 0, length: 1 }, { waitMs: 10_000 });
    setTimeout(() => holder.process.kill('SIGKILL'), 50);
    await waiting;
    await holder.exited;
    expect(holder.process.signalCode).toBe('SIGKILL');
    expect(await otherProcessTries('killed', 0, 1, 'exclusive')).toBe('refused');
    await fileSystem.close(handle);
  });

  it('counts exactly with 3 processes and 2 in-process handles incrementing under the lock', async () => {
    const iterations = 150;
    await fileSystem.writeFile('counter', bytes(' '.repeat(32)));
    const processes = [1, 2, 3].map(() => startChild(nodePath.join(root, 'counter'), 'count', String(iterations)));
    const handles = await Promise.all([1, 2].map(() => fileSystem.open('counter')));
    const inProcess = handles.map(async (handle) => {
      for (let iteration = 0; iteration < iterations; iteration += 1) {
        await fileSystem.lock(handle, { offset: 0, length: 1 }, { waitMs: 30_000 });
        const value = Number(decoder.decode(await fileSystem.read(handle, 16, 16)).trim() || '0');
        await new Promise((resolve) => setImmediate(resolve));
        await fileSystem.write(handle, 16, bytes(String(value + 1).padEnd(16, ' ')));
        await fileSystem.unlock(handle, { offset: 0, length: 1 });
      }
    });
    await Promise.all(inProcess);
    for (const child of processes) expect(await child.line()).toBe('done');
    const total = Number(decoder.decode(await fileSystem.read(handles[0]!, 16, 16)).trim());
    expect(total).toBe(5 * iterations);
    for (const handle of handles) await fileSystem.close(handle);
  });
});

describe('errno mapping', () => {
  it('maps Node errno codes to NasqError codes', () => {
    const cases: [string, ErrorCode][] = [
      ['ENOENT', 'NOT_FOUND'],
      ['ENOTDIR', 'NOT_FOUND'],
      ['EEXIST', 'EXISTS'],
      ['EBADF', 'CLOSED_HANDLE'],
      ['ESTALE', 'CLOSED_HANDLE'],
      ['EIO', 'IO_ERROR'],
      ['ENOSPC', 'IO_ERROR'],
      ['EHOSTDOWN', 'SHARE_UNAVAILABLE'],
      ['ETIMEDOUT', 'SHARE_UNAVAILABLE'],
      ['EINVAL', 'INVALID_ARGUMENT'],
      ['EACCES', 'IO_ERROR'],
      ['EWHATEVER', 'IO_ERROR'],
    ];
    for (const [errno, code] of cases) {
      const error = Object.assign(new Error(`${errno}: boom`), { code: errno });
      const mapped = nasqErrorFromNode(error, { operation: 'open', path: 'p' });
      expect(mapped, errno).toBeInstanceOf(NasqError);
      expect((mapped as NasqError).code, errno).toBe(code);
      expect((mapped as NasqError).details).toMatchObject({ errno, operation: 'open', path: 'p' });
      expect((mapped as NasqError).cause).toBe(error);
    }
    for (const errno of ['EAGAIN', 'EACCES', 'EWOULDBLOCK', 'EBUSY', 'EDEADLK']) {
      const mapped = nasqErrorFromNode(Object.assign(new Error(errno), { code: errno }), { operation: 'lock', lock: true });
      expect((mapped as NasqError).code, errno).toBe('LOCK_NOT_GRANTED');
    }
    for (const errno of ['EACCES', 'EBUSY']) {
      const mapped = nasqErrorFromNode(Object.assign(new Error(errno), { code: errno }), { operation: 'read', io: true });
      expect((mapped as NasqError).code, errno).toBe('LOCK_CONFLICT');
    }
    expect(errnoToErrorCode.ENOENT).toBe('NOT_FOUND');
  });

  it('passes programmer errors and NasqErrors through unchanged', () => {
    const typeError = Object.assign(new TypeError('bad'), { code: 'ERR_INVALID_ARG_TYPE' });
    expect(nasqErrorFromNode(typeError, { operation: 'read' })).toBe(typeError);
    const nasqError = new NasqError('CORRUPT', 'x');
    expect(nasqErrorFromNode(nasqError, { operation: 'read' })).toBe(nasqError);
  });

  it('maps what the real file system answers', async () => {
    await fileSystem.writeFile('file', bytes('x'));
    await expectCode(fileSystem.readFile('file/below'), 'NOT_FOUND');
    await expectCode(fileSystem.open('missing/deeper'), 'NOT_FOUND');
    await fileSystem.mkdir('dir');
    await expectCode(fileSystem.open('dir'), 'INVALID_ARGUMENT');
    await expectCode(fileSystem.readFile('dir'), 'INVALID_ARGUMENT');
    await expectCode(fileSystem.writeFile('dir', bytes('x'), { exclusive: true }), 'EXISTS');
    await expectCode(fileSystem.unlink('dir'), process.platform === 'linux' ? 'INVALID_ARGUMENT' : 'IO_ERROR');
  });
});

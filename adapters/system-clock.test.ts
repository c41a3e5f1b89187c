import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isNasqError, type NasqError } from '../engine/errors.js';
import type { WatchHandle } from '../engine/ports.js';
import { NodeDirectoryWatch } from './node-directory-watch.js';
import { NodeFileSystem, type NodeFileSystemOptions } from './node-file-system.js';
import { SystemClock } from './system-clock.js';

let root: string;
const clock = new SystemClock();
const watches: { fileSystem: NodeFileSystem; watch: WatchHandle }[] = [];

beforeEach(async () => {
  root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-clock-'));
});

afterEach(async () => {
  for (const { fileSystem, watch } of watches.splice(0)) await fileSystem.unwatch(watch).catch(() => undefined);
  await fs.rm(root, { recursive: true, force: true });
});

async function watching(options: NodeFileSystemOptions, directory = 'queue'): Promise<{ fileSystem: NodeFileSystem; watch: WatchHandle }> {
  const fileSystem = new NodeFileSystem(root, { watchPollIntervalMs: 20, ...options });
  await fileSystem.mkdir(directory, { recursive: true });
  await fileSystem.writeFile(`${directory}/notify`, new Uint8Array(0));
  const watch = await fileSystem.watch(directory, { lastWrite: true });
  watches.push({ fileSystem, watch });
  return { fileSystem, watch };
}

describe('SystemClock: time', () => {
  it('tells the wall clock', () => {
    const before = Date.now();
    const now = clock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('sleeps until the wall clock reaches the time, and not at all for the past', async () => {
    const target = Date.now() + 40;
    await clock.sleepUntil(target);
    expect(Date.now()).toBeGreaterThanOrEqual(target);
    const started = Date.now();
    await clock.sleepUntil(started - 1_000);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('rejects a time that is not a number', async () => {
    await expect(clock.sleepUntil(Number.NaN)).rejects.toThrow(/INVALID_ARGUMENT: sleepUntil: timeMs/);
  });
});

describe('SystemClock.waitForChange on a NodeFileSystem watch', () => {
  for (const native of [true, false]) {
    const source = native ? 'fs.watch and polling' : 'polling alone (as on a network mount)';

    it(`wakes on an explicit mtime change of the notification file (${source})`, async () => {
      const { fileSystem, watch } = await watching({ watchNative: native });
      const started = Date.now();
      setTimeout(() => void fileSystem.setTimes('queue/notify', Date.now(), Date.now() + 5_000), 30);
      expect(await clock.waitForChange(watch, Date.now() + 5_000)).toBe('changed');
      expect(Date.now() - started).toBeLessThan(2_000);
    });

    it(`times out at untilMs when nothing changes (${source})`, async () => {
      const { watch } = await watching({ watchNative: native });
      const until = Date.now() + 80;
      expect(await clock.waitForChange(watch, until)).toBe('timeout');
      expect(Date.now()).toBeGreaterThanOrEqual(until);
    });
  }

  it('returns at once for a change queued since the previous wait, then waits again', async () => {
    const { fileSystem, watch } = await watching({});
    await fileSystem.setTimes('queue/notify', Date.now(), Date.now() + 10_000);
    // Let a poll see it too.
    await new Promise((resolve) => setTimeout(resolve, 60));
    const started = Date.now();
    expect(await clock.waitForChange(watch, Date.now() + 5_000)).toBe('changed');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await clock.waitForChange(watch, Date.now() + 60)).toBe('timeout');
  });

  it('answers timeout at once for a deadline already past', async () => {
    const { watch } = await watching({});
    expect(await clock.waitForChange(watch, Date.now() - 1)).toBe('timeout');
  });

  it('reports creations, deletions and size changes to filters that ask for them, and nothing else', async () => {
    const fileSystem = new NodeFileSystem(root, { watchPollIntervalMs: 20, watchNative: false });
    await fileSystem.writeFile('f', new Uint8Array(1));
    const names = await fileSystem.watch('.', { fileName: true });
    const sizes = await fileSystem.watch('.', { size: true });
    watches.push({ fileSystem, watch: names }, { fileSystem, watch: sizes });
    await fileSystem.setTimes('f', Date.now(), Date.now() + 3_000);
    expect(await clock.waitForChange(names, Date.now() + 100)).toBe('timeout');
    expect(await clock.waitForChange(sizes, Date.now() + 10)).toBe('timeout');
    await fileSystem.writeFile('f', new Uint8Array(2));
    expect(await clock.waitForChange(sizes, Date.now() + 2_000)).toBe('changed');
    await fileSystem.writeFile('g', new Uint8Array(0));
    expect(await clock.waitForChange(names, Date.now() + 2_000)).toBe('changed');
    await fileSystem.unlink('g');
    expect(await clock.waitForChange(names, Date.now() + 2_000)).toBe('changed');
  });

  it('collapses too many queued changes into overflow', async () => {
    const { fileSystem, watch } = await watching({ watchQueueEventsMax: 3, watchNative: false });
    for (let index = 0; index < 5; index += 1) await fileSystem.writeFile(`queue/file-${index}`, new Uint8Array(1));
    await fileSystem.unwatch(watch);
    const names = await fileSystem.watch('queue', { fileName: true });
    watches.push({ fileSystem, watch: names });
    for (let index = 0; index < 5; index += 1) await fileSystem.unlink(`queue/file-${index}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await clock.waitForChange(names, Date.now() + 1_000)).toBe('overflow');
    expect(await clock.waitForChange(names, Date.now() + 50)).toBe('timeout');
  });

  it('rejects with CLOSED_HANDLE when the watch is closed, before or during the wait', async () => {
    const { fileSystem, watch } = await watching({});
    const waiting = clock.waitForChange(watch, Date.now() + 5_000);
    await fileSystem.unwatch(watch);
    const error = await waiting.catch((caught: unknown) => caught);
    expect(isNasqError(error, 'CLOSED_HANDLE')).toBe(true);
    const again = await clock.waitForChange(watch, Date.now() + 5_000).catch((caught: unknown) => caught);
    expect((again as NasqError).code).toBe('CLOSED_HANDLE');
    const unwatchAgain = await fileSystem.unwatch(watch).catch((caught: unknown) => caught);
    expect((unwatchAgain as NasqError).code).toBe('CLOSED_HANDLE');
  });

  it('refuses to watch a missing directory or a file, and a filter with nothing in it', async () => {
    const fileSystem = new NodeFileSystem(root);
    await fileSystem.writeFile('plain', new Uint8Array(0));
    await expect(fileSystem.watch('absent', { lastWrite: true })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(fileSystem.watch('plain', { lastWrite: true })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(fileSystem.watch('.', {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('keeps the changes it saw, with their source, until a wait takes them', async () => {
    const { fileSystem, watch } = await watching({ watchNative: false });
    await fileSystem.setTimes('queue/notify', Date.now(), Date.now() + 7_000);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(watch).toBeInstanceOf(NodeDirectoryWatch);
    expect((watch as NodeDirectoryWatch).pendingChanges()[0]).toEqual({ kind: 'lastWrite', name: 'notify', source: 'poll' });
    expect(await clock.waitForChange(watch, Date.now())).toBe('changed');
    expect((watch as NodeDirectoryWatch).pendingChanges()).toEqual([]);
  });
});

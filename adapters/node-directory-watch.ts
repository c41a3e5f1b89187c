/**
 * A directory watch on the real file system: the node:fs side of SMB2 CHANGE_NOTIFY.
 *
 * Two sources feed one queue of changes per watch:
 * - `fs.watch` (inotify, FSEvents, ReadDirectoryChangesW), fast but silent on network mounts: a
 *   Linux cifs or NFS client does not hear about changes made by other machines.
 * - Polling: every `pollIntervalMs` the directory is listed and its entries are stat'ed; a change
 *   of the names, or of an entry's size, last write time or mode, is a change. This is what works
 *   on a share, at the price of latency (the interval, plus the client's attribute cache: Linux
 *   cifs `actimeo` defaults to 1 s).
 *
 * Changes queue between waits (`takeChanges`), like SMB's per-handle queue; more than
 * `queueEventsMax` of them collapse into 'overflow' ("re-check everything"). A change may be
 * reported twice (once by each source, or by a poll after the wait that consumed the native
 * event): a notification is a hint, never a guarantee, and a spurious wake is harmless.
 */

import { watch as nodeWatch, type FSWatcher } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { assert, NasqError } from '../engine/errors.js';
import type { WaitResult, WatchFilter, WatchHandle } from '../engine/ports.js';
import { errnoOf, nasqErrorFromNode } from './node-errors.js';

export interface DirectoryWatchOptions {
  /** Pause between two polls of the directory, in milliseconds. */
  readonly pollIntervalMs: number;
  /** Most directory entries one poll stats (the first ones in sorted order); the rest are only counted by name. */
  readonly pollEntriesMax: number;
  /** Most changes queued between two waits; one more turns the next wait's answer into 'overflow'. */
  readonly queueEventsMax: number;
  /** Also use fs.watch. When false, polling alone. */
  readonly native: boolean;
}

/** Which property of an entry changed (the SMB completion-filter bits). */
export type DirectoryChangeKind = 'fileName' | 'size' | 'lastWrite' | 'attributes';

export interface DirectoryChange {
  readonly kind: DirectoryChangeKind;
  /** The entry's name, when the source knows it. */
  readonly name: string | undefined;
  readonly source: 'native' | 'poll';
}

interface EntrySnapshot {
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
}

/** How many stats one poll runs at a time. */
const pollStatConcurrency = 16;

export class NodeDirectoryWatch implements WatchHandle {
  readonly path: string;
  readonly absolutePath: string;
  readonly filter: Readonly<Required<WatchFilter>>;
  readonly #options: DirectoryWatchOptions;
  #changes: DirectoryChange[] = [];
  #overflowed = false;
  #closed = false;
  readonly #listeners = new Set<() => void>();
  #watcher: FSWatcher | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #snapshot: Map<string, EntrySnapshot | undefined> = new Map();
  /** Set when polling itself failed (directory gone, share down): reported once as 'overflow'. */
  #pollFailed = false;

  private constructor(path: string, absolutePath: string, filter: WatchFilter, options: DirectoryWatchOptions) {
    this.path = path;
    this.absolutePath = absolutePath;
    this.filter = {
      fileName: filter.fileName ?? false,
      attributes: filter.attributes ?? false,
      size: filter.size ?? false,
      lastWrite: filter.lastWrite ?? false,
    };
    this.#options = options;
  }

  /**
   * Starts watching: takes the first snapshot (so the directory must exist and be a directory,
   * else NOT_FOUND or INVALID_ARGUMENT, as SMB refuses CHANGE_NOTIFY on a file), then starts both
   * sources. Only changes after this call are reported.
   */
  static async start(
    path: string,
    absolutePath: string,
    filter: WatchFilter,
    options: DirectoryWatchOptions,
  ): Promise<NodeDirectoryWatch> {
    const watch = new NodeDirectoryWatch(path, absolutePath, filter, options);
    let stats;
    try {
      stats = await fs.stat(absolutePath);
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'watch', path });
    }
    if (!stats.isDirectory()) {
      throw new NasqError('INVALID_ARGUMENT', `watch '${path}': not a directory (CHANGE_NOTIFY works on directories only)`, {
        details: { path },
      });
    }
    try {
      watch.#snapshot = await watch.#takeSnapshot();
    } catch (error) {
      throw nasqErrorFromNode(error, { operation: 'watch', path });
    }
    if (options.native) watch.#startNative();
    watch.#schedulePoll();
    return watch;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Consumes what was queued since the previous call: 'overflow' if the queue overflowed (or a poll
   * failed), 'changed' if anything matching the filter changed, undefined if nothing did.
   */
  takeChanges(): Exclude<WaitResult, 'timeout'> | undefined {
    const overflowed = this.#overflowed;
    const changed = this.#changes.length > 0;
    this.#overflowed = false;
    this.#changes = [];
    if (overflowed) return 'overflow';
    return changed ? 'changed' : undefined;
  }

  /** The changes queued so far, without consuming them (for diagnostics and tests). */
  pendingChanges(): readonly DirectoryChange[] {
    return this.#changes;
  }

  /**
   * Calls `listener` whenever a change is queued and when the watch closes. Returns the function
   * that unsubscribes. Listeners run synchronously and must not throw.
   */
  onChange(listener: () => void): () => void {
    assert(!this.#closed, 'onChange on a closed watch');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Stops both sources; pending and future waits see the watch closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#pollTimer !== undefined) clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#notify();
    this.#listeners.clear();
  }

  #startNative(): void {
    try {
      const watcher = nodeWatch(this.absolutePath, { persistent: false }, (eventType, fileName) => {
        // inotify reports creation, deletion and renames as 'rename', and writes, truncation and
        // attribute changes (utimes, chmod) alike as 'change': it cannot tell size from mtime.
        const name = typeof fileName === 'string' ? fileName : undefined;
        if (eventType === 'rename') {
          if (this.filter.fileName) this.#record({ kind: 'fileName', name, source: 'native' });
        } else if (this.filter.lastWrite) {
          this.#record({ kind: 'lastWrite', name, source: 'native' });
        } else if (this.filter.size) {
          this.#record({ kind: 'size', name, source: 'native' });
        } else if (this.filter.attributes) {
          this.#record({ kind: 'attributes', name, source: 'native' });
        }
      });
      watcher.on('error', () => {
        // The native source died (directory removed, watch limit reached): polling carries on.
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined;
      });
      this.#watcher = watcher;
    } catch {
      // fs.watch is unsupported here (some network or FUSE file systems): polling alone.
      this.#watcher = undefined;
    }
  }

  #schedulePoll(): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      void this.#poll();
    }, this.#options.pollIntervalMs);
    // A forgotten watch must not keep the process alive; waits hold their own timers.
    timer.unref();
    this.#pollTimer = timer;
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    let next: Map<string, EntrySnapshot | undefined> | undefined;
    try {
      next = await this.#takeSnapshot();
    } catch {
      next = undefined;
    }
    if (this.#closed) return;
    if (next === undefined) {
      if (!this.#pollFailed) {
        this.#pollFailed = true;
        this.#overflow();
      }
    } else {
      if (this.#pollFailed) {
        // The directory came back: whatever happened meanwhile is unknown.
        this.#pollFailed = false;
        this.#overflow();
      } else {
        this.#compare(this.#snapshot, next);
      }
      this.#snapshot = next;
    }
    this.#schedulePoll();
  }

  /** Names in the directory, each with its stats if it is among the first `pollEntriesMax`. */
  async #takeSnapshot(): Promise<Map<string, EntrySnapshot | undefined>> {
    const names = (await fs.readdir(this.absolutePath)).sort();
    const snapshot = new Map<string, EntrySnapshot | undefined>();
    const statted = names.slice(0, this.#options.pollEntriesMax);
    for (let start = 0; start < statted.length; start += pollStatConcurrency) {
      const batch = statted.slice(start, start + pollStatConcurrency);
      const results = await Promise.all(
        batch.map(async (name) => {
          try {
            const stats = await fs.stat(nodePath.join(this.absolutePath, name));
            return { size: stats.size, mtimeMs: stats.mtimeMs, mode: stats.mode };
          } catch (error) {
            // Deleted between readdir and stat: the next poll sees the name gone.
            if (errnoOf(error) === 'ENOENT') return undefined;
            throw error;
          }
        }),
      );
      batch.forEach((name, index) => snapshot.set(name, results[index]));
    }
    for (const name of names.slice(this.#options.pollEntriesMax)) snapshot.set(name, undefined);
    return snapshot;
  }

  #compare(before: Map<string, EntrySnapshot | undefined>, after: Map<string, EntrySnapshot | undefined>): void {
    for (const [name, old] of before) {
      if (!after.has(name)) {
        if (this.filter.fileName) this.#record({ kind: 'fileName', name, source: 'poll' });
        continue;
      }
      const now = after.get(name);
      if (old === undefined || now === undefined) continue;
      if (this.filter.size && old.size !== now.size) this.#record({ kind: 'size', name, source: 'poll' });
      if (this.filter.lastWrite && old.mtimeMs !== now.mtimeMs) this.#record({ kind: 'lastWrite', name, source: 'poll' });
      if (this.filter.attributes && old.mode !== now.mode) this.#record({ kind: 'attributes', name, source: 'poll' });
    }
    if (this.filter.fileName) {
      for (const name of after.keys()) {
        if (!before.has(name)) this.#record({ kind: 'fileName', name, source: 'poll' });
      }
    }
  }

  #record(change: DirectoryChange): void {
    if (this.#closed) return;
    if (this.#overflowed) return;
    if (this.#changes.length >= this.#options.queueEventsMax) {
      this.#overflow();
      return;
    }
    this.#changes.push(change);
    this.#notify();
  }

  #overflow(): void {
    this.#overflowed = true;
    this.#changes = [];
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

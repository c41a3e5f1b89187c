/**
 * Where message bodies live (claims 3, 4): files in the message directory.
 *
 * A message sent alone has its own file `msg/ID`. The messages of one batch (`sendBatch` of two or
 * more) share one **bundle** file `msg/CLIENT-FIRST.bundle`: creating a file is the dearest thing a
 * send does on most file systems (hundreds of microseconds on a local disk, a round trip or more on
 * a share), so a batch of 32 pays it once instead of 32 times.
 *
 * Bundle layout (little-endian):
 *
 *   [0, 16)                 magic 'NQBN', version 1, count k, first message sequence
 *   [16, 16 + 12k)          entry i: body offset, body length, body CRC-32C
 *   [16 + 12k, 20 + 12k)    CRC-32C of bytes [0, 16 + 12k)
 *   [20 + 12k, 20 + 13k)    mark i: 0 = live, 0xA5 = gone (acked, dead-lettered, or never linked)
 *   then the bodies, each where its entry says
 *
 * The rule that keeps repair safe holds for both kinds: a body is removed (its file deleted, or its
 * mark set to gone) before the commit that frees its slot, under the header lock, after the fence.
 * So a live body always means a message not yet acked. A bundle whose last live body goes is
 * deleted.
 */

import { crc32c } from './crc32.js';
import { NasqError, isNasqError } from './errors.js';
import { messageIdOf, type Slot } from './format.js';
import { joinPath, unlinkIfPresent } from './layout.js';
import type { FileHandle, FileSystem } from './ports.js';

export const bundleMagic = 0x4e42514e; // 'NQBN' read as little-endian
export const bundleVersion = 1;
export const bundleHeaderSize = 16;
export const bundleEntrySize = 12;
export const markLive = 0;
export const markGone = 0xa5;
/** Batches of at least this many messages share a bundle. */
export const bundleMinimumMessages = 2;

export interface BundleEntry {
  readonly offset: number;
  readonly length: number;
  readonly checksum: number;
  readonly mark: number;
}

export interface Bundle {
  readonly count: number;
  readonly firstSequence: number;
  readonly entries: BundleEntry[];
}

export function marksOffset(count: number): number {
  return bundleHeaderSize + bundleEntrySize * count + 4;
}

function bodiesOffset(count: number): number {
  return Math.ceil((marksOffset(count) + count) / 8) * 8;
}

export function bundleName(client: number, firstSequence: number): string {
  return `${client}-${firstSequence}.bundle`;
}

const bundleNamePattern = /^(\d{1,10})-(\d{1,10})\.bundle$/;

export function parseBundleName(name: string): { client: number; firstSequence: number } | undefined {
  const match = bundleNamePattern.exec(name);
  if (match === null) return undefined;
  return { client: Number(match[1]), firstSequence: Number(match[2]) };
}

/** Builds a bundle of bodies, all marked live. */
export function encodeBundle(firstSequence: number, bodies: ReadonlyArray<{ body: Uint8Array; checksum: number }>): Uint8Array {
  const count = bodies.length;
  let size = bodiesOffset(count);
  for (const { body } of bodies) size += body.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, bundleMagic, true);
  view.setUint32(4, bundleVersion, true);
  view.setUint32(8, count, true);
  view.setUint32(12, firstSequence, true);
  let at = bodiesOffset(count);
  bodies.forEach(({ body, checksum }, index) => {
    const entryAt = bundleHeaderSize + index * bundleEntrySize;
    view.setUint32(entryAt, at, true);
    view.setUint32(entryAt + 4, body.length, true);
    view.setUint32(entryAt + 8, checksum, true);
    bytes.set(body, at);
    at += body.length;
  });
  const tableEnd = bundleHeaderSize + count * bundleEntrySize;
  view.setUint32(tableEnd, crc32c(bytes, 0, tableEnd), true);
  return bytes;
}

/** Reads a bundle's header, table and marks (not the bodies); a defect in words, or the bundle. */
export function decodeBundle(bytes: Uint8Array): Bundle | string {
  if (bytes.length < bundleHeaderSize) return `bundle is cut short (${bytes.length} bytes)`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0, true) !== bundleMagic) return 'bundle has a wrong magic number';
  if (view.getUint32(4, true) !== bundleVersion) return `bundle has version ${view.getUint32(4, true)}, expected ${bundleVersion}`;
  const count = view.getUint32(8, true);
  if (count < 1 || count > 1_000_000 || bytes.length < marksOffset(count) + count) return `bundle says it holds ${count} bodies but is ${bytes.length} bytes`;
  const tableEnd = bundleHeaderSize + count * bundleEntrySize;
  if (view.getUint32(tableEnd, true) !== crc32c(bytes, 0, tableEnd)) return 'bundle table checksum does not match';
  const entries: BundleEntry[] = [];
  const marksAt = marksOffset(count);
  for (let index = 0; index < count; index += 1) {
    const entryAt = bundleHeaderSize + index * bundleEntrySize;
    const mark = bytes[marksAt + index]!;
    if (mark !== markLive && mark !== markGone) return `bundle mark ${index} is ${mark}, neither live nor gone`;
    entries.push({ offset: view.getUint32(entryAt, true), length: view.getUint32(entryAt + 4, true), checksum: view.getUint32(entryAt + 8, true), mark });
  }
  return { count, firstSequence: view.getUint32(12, true), entries };
}

/** The body of entry `index` if it is live and whole, else why not. */
export function bundleBody(bytes: Uint8Array, bundle: Bundle, index: number): Uint8Array | 'gone' | 'damaged' {
  const entry = bundle.entries[index];
  if (entry === undefined) return 'damaged';
  if (entry.mark !== markLive) return 'gone';
  if (entry.offset + entry.length > bytes.length) return 'damaged';
  const body = bytes.subarray(entry.offset, entry.offset + entry.length);
  return crc32c(body) === entry.checksum ? body : 'damaged';
}

/** What reading a message's body found. */
export type BodyProblem = 'missing' | 'damaged';

export class BodyStore {
  constructor(
    private readonly fs: FileSystem,
    private readonly directory: string,
    private readonly messagesName: string,
    private readonly durable: () => boolean,
  ) {}

  private path(name: string): string {
    return joinPath(joinPath(this.directory, this.messagesName), name);
  }

  bodyPath(id: string): string {
    return this.path(id);
  }

  bundlePath(client: number, firstSequence: number): string {
    return this.path(bundleName(client, firstSequence));
  }

  private pathOf(slot: Slot): string {
    return slot.bundleFirstSequence === 0 ? this.path(messageIdOf(slot)) : this.bundlePath(slot.messageClient, slot.bundleFirstSequence);
  }

  /**
   * Writes the bodies of one send (all of one client, consecutive sequences) before their slots
   * are linked. Returns where they went: each its own file, or one bundle.
   */
  async write(client: number, messages: ReadonlyArray<{ sequence: number; body: Uint8Array; checksum: number }>): Promise<{ bundleFirstSequence: number; bundleCount: number }> {
    const durable = this.durable();
    if (messages.length < bundleMinimumMessages) {
      for (const message of messages) {
        await this.fs.writeFile(this.path(messageIdOf({ messageClient: client, messageSequence: message.sequence })), message.body, { exclusive: true, sync: durable });
      }
      return { bundleFirstSequence: 0, bundleCount: 0 };
    }
    const firstSequence = messages[0]!.sequence;
    messages.forEach((message, index) => {
      if (message.sequence !== firstSequence + index) throw new NasqError('INVALID_ARGUMENT', 'a bundle needs consecutive message sequences');
    });
    await this.fs.writeFile(this.bundlePath(client, firstSequence), encodeBundle(firstSequence, messages), { exclusive: true, sync: durable });
    return { bundleFirstSequence: firstSequence, bundleCount: messages.length };
  }

  /**
   * Reads the bodies of slots just taken: one read per file (a bundle is read once for all its
   * messages). Each body is checked against its slot; a problem is named, never a wrong body.
   */
  async read(slots: readonly Slot[]): Promise<Array<Uint8Array | BodyProblem>> {
    const files = new Map<string, Uint8Array | 'missing'>();
    const result: Array<Uint8Array | BodyProblem> = [];
    for (const slot of slots) {
      const path = this.pathOf(slot);
      let bytes = files.get(path);
      if (bytes === undefined) {
        try {
          bytes = await this.fs.readFile(path);
        } catch (error) {
          if (!isNasqError(error, 'NOT_FOUND')) throw error;
          bytes = 'missing';
        }
        files.set(path, bytes);
      }
      if (bytes === 'missing') {
        result.push('missing');
        continue;
      }
      let body: Uint8Array | 'gone' | 'damaged' = bytes;
      if (slot.bundleFirstSequence !== 0) {
        const bundle = decodeBundle(bytes);
        body = typeof bundle === 'string' ? 'damaged' : bundleBody(bytes, bundle, slot.messageSequence - slot.bundleFirstSequence);
      }
      if (body === 'gone') result.push('missing');
      else if (body === 'damaged' || body.length !== slot.bodyLength || crc32c(body) !== slot.bodyChecksum) result.push('damaged');
      else result.push(body.slice());
    }
    return result;
  }

  /**
   * Removes the bodies of messages leaving the queue (ack, dead letter), under the header lock and
   * before the commit that frees their slots. A whole bundle acked together is one delete; part of
   * one is marked gone in place, and the bundle is deleted with its last live body.
   */
  async remove(slots: readonly Slot[]): Promise<void> {
    // In order: a path to delete, or a bundle to mark in part.
    const steps: Array<string | { readonly path: string; readonly count: number; readonly indexes: ReadonlySet<number> }> = [];
    let lastDelete = -1;
    const bundles = new Map<string, Slot[]>();
    for (const slot of slots) {
      if (slot.bundleFirstSequence === 0) {
        lastDelete = steps.push(this.path(messageIdOf(slot))) - 1;
        continue;
      }
      const path = this.pathOf(slot);
      const list = bundles.get(path);
      if (list === undefined) bundles.set(path, [slot]);
      else list.push(slot);
    }
    for (const [path, members] of bundles) {
      const count = members[0]!.bundleCount;
      const indexes = new Set(members.map((slot) => slot.messageSequence - slot.bundleFirstSequence));
      if (indexes.size === count) lastDelete = steps.push(path) - 1;
      else steps.push({ path, count, indexes });
    }
    // Durable: the last delete flushes the directory, which makes every delete before it durable
    // too (one directory, one flush), before the commit that frees the slots. A delete that finds
    // the body gone already (an earlier attempt of this ack died before its commit) is fine.
    const durable = this.durable();
    for (let index = 0; index < steps.length; index += 1) {
      const step = steps[index]!;
      if (typeof step === 'string') await unlinkIfPresent(this.fs, step, durable && index === lastDelete);
      else await this.markGone(step.path, step.count, step.indexes);
    }
  }

  /** Marks entries of a bundle gone; deletes the bundle once none is live. */
  async markGone(path: string, count: number, indexes: ReadonlySet<number>): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await this.fs.open(path);
    } catch (error) {
      if (isNasqError(error, 'NOT_FOUND')) return; // already deleted with its last body
      throw error;
    }
    let allGone = false;
    try {
      const at = marksOffset(count);
      const marks = await this.fs.read(handle, at, count);
      if (marks.length !== count) throw new NasqError('CORRUPT', `bundle ${path} is cut short in its marks`, { details: { path } });
      const updated = new Uint8Array(marks);
      for (const index of indexes) updated[index] = markGone;
      allGone = updated.every((mark) => mark === markGone);
      if (!allGone) {
        await this.fs.write(handle, at, updated);
        if (this.durable()) await this.fs.sync(handle);
      }
    } finally {
      await this.closeQuietly(handle);
    }
    if (allGone) await unlinkIfPresent(this.fs, path, this.durable());
  }

  /** Is the message's body still there (not removed by an ack that died before its commit)? */
  async present(slot: Slot): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await this.fs.open(this.pathOf(slot));
    } catch (error) {
      if (isNasqError(error, 'NOT_FOUND')) return false;
      throw error;
    }
    try {
      if (slot.bundleFirstSequence === 0) return true;
      const mark = await this.fs.read(handle, marksOffset(slot.bundleCount) + slot.messageSequence - slot.bundleFirstSequence, 1);
      return mark.length === 1 && mark[0] === markLive;
    } finally {
      await this.closeQuietly(handle);
    }
  }

  /** Whether bodies are flushed (the queue's `durable` option). */
  get isDurable(): boolean {
    return this.durable();
  }

  /**
   * Moves a body to `target` (dead letters): a rename for its own file, a copy out of a bundle.
   * Durable: the rename flushes both directories (also when an earlier attempt already moved it).
   */
  async moveOut(slot: Slot, target: string): Promise<void> {
    if (slot.bundleFirstSequence === 0) {
      try {
        await this.fs.rename(this.path(messageIdOf(slot)), target, { sync: this.durable() });
      } catch (error) {
        // Missing: the record says so. Exists: an earlier attempt moved it and died before its commit.
        if (!isNasqError(error, 'NOT_FOUND', 'EXISTS')) throw error;
      }
      return;
    }
    const [body] = await this.read([slot]);
    if (body instanceof Uint8Array) await this.fs.writeFile(target, body, { sync: this.durable() });
    await this.remove([slot]);
  }

  private async closeQuietly(handle: FileHandle): Promise<void> {
    try {
      await this.fs.close(handle);
    } catch (error) {
      if (!(error instanceof NasqError)) throw error;
    }
  }
}

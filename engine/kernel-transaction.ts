/**
 * One lock cycle's view of the kernel file: the header as read under the header lock, slots read
 * on demand through the journal, changes collected in memory, and the commit that makes them
 * durable with one write of the inactive header copy.
 *
 * Commit protocol (why a crash at any instant leaves a valid file, see docs/format.md):
 * 1. If the journal would overflow its soft limit, write the images of the *committed* journal
 *    that this cycle did not change to their places in the slot area (they stay in the committed
 *    header copy's journal until step 3, so a crash here loses nothing: the journal still wins).
 * 2. With the durable option, fsync (so step 1 reaches the disk before step 3 can).
 * 3. Write the new header, with the new journal, into the copy not in force. Its generation is
 *    one higher; once its last byte lands it is the newest valid copy: the commit point. A torn
 *    write leaves a bad checksum, and the other copy (the previous state) stays in force.
 * 4. With the durable option, fsync again.
 */

import { bytesToOverwrite } from './byte-slab.js';
import { NasqError, assert } from './errors.js';
import {
  choosePrefixCycleHeader,
  chooseCycleHeader,
  decodeSlot,
  decodeSoundSlot,
  encodeHeaderFields,
  encodeSlot,
  headerCopySize,
  headerFixedSize,
  headerPrefixBytesFor,
  headerRegionSize,
  isSlotOffset,
  journalCapacity,
  resealSlot,
  sealHeaderCopyOfSealedImages,
  slotDefect,
  slotSize,
  slotsOffset,
  validateHeaderFields,
  type CycleHeader,
  type Header,
  type Slot,
} from './format.js';
import type { FileHandle, FileSystem } from './ports.js';

export interface TransactionOptions {
  /** Fsync between the slot-area writes and the header write, and after it. */
  readonly durable: boolean;
  /**
   * Keep at most this many images in the journal after an ordinary commit; older ones are written
   * to the slot area first. Bigger saves writes, smaller saves checksum work per cycle.
   */
  readonly journalSoftLimit: number;
  /** Slots to read per slot-area read (the aligned block of this many slots around the wanted one). */
  readonly readAheadSlots: number;
  /**
   * A `headerRegionSize` buffer to read the header region into (FileSystem.read's `into`) instead
   * of a new one. The transaction works from it until its first commit: it must not be handed to
   * another transaction while this one is in use (a client passes its own, one cycle at a time).
   */
  readonly regionBuffer?: Uint8Array;
  /**
   * Read only this many bytes of the header region first (all of copy A and the start of copy B):
   * enough when copy B's journal ends inside them; else the whole region is read (a second read).
   * Default: the whole region at once.
   */
  readonly prefixBytes?: number;
}

/** Images one item of any operation may dirty at most; batches checkpoint below the capacity. */
export const maximumImagesPerItem = 5;

/** Sorts a short array of offsets in place (insertion sort: the journal holds at most `journalCapacity`). */
function sortAscending(offsets: number[]): void {
  for (let index = 1; index < offsets.length; index += 1) {
    const value = offsets[index]!;
    let position = index - 1;
    while (position >= 0 && offsets[position]! > value) {
      offsets[position + 1] = offsets[position]!;
      position -= 1;
    }
    offsets[position + 1] = value;
  }
}

export class KernelTransaction {
  /**
   * The working header: mutate freely, `commit` writes it. Its `journal` stays empty: the
   * transaction keeps the journal itself (as the bytes of the copy in force, decoded on demand).
   */
  readonly header: Header;
  private copyInForce: 0 | 1;
  /**
   * The committed journal as bytes: the image of slot `offset` is `slotSize` bytes at
   * `committedAt.get(offset)` in `committedBytes` (the copy read, then each copy written). Carried
   * into the next copy byte for byte, so an unchanged image is never decoded or re-encoded.
   */
  private committedBytes: Uint8Array;
  private committedAt = new Map<number, number>();
  /**
   * Whether the own checksums of the images in `committedBytes` are known good: true if the read
   * found them all right (the header check computes them anyway), and once they are bytes this
   * transaction encoded. The header checksum (format 2) leaves image checksums out, so one read
   * from the file may be wrong (a torn write); carried or moved as bytes, such images are
   * resealed, exactly as decoding and encoding the image again would give.
   */
  private committedChecksumsTrusted: boolean;
  /** Committed journal images decoded so far (each offset decoded at most once, then shared). */
  private readonly committedDecoded = new Map<number, Slot>();
  private readonly dirty = new Map<number, Slot>();
  private readonly diskCache = new Map<number, Slot>();
  private headerChanged = false;
  /** Bytes a prefix read must have to cover copy B's journal as this read found it (headerPrefixBytes). */
  prefixBytesNeeded = 0;
  /** Port calls this transaction made (reads and writes), for diagnostics. */
  commits = 0;
  /** Slots per slot-area read (options.readAheadSlots, or more after `readAheadAtLeast`). */
  private readAheadSlots: number;

  private constructor(
    private readonly fs: FileSystem,
    private readonly handle: FileHandle,
    private readonly options: TransactionOptions,
    header: Header,
    copy: 0 | 1,
    journalBytes: Uint8Array,
    journalAt: number,
    journalOffsets: readonly number[],
    imagesSealed: boolean,
  ) {
    this.header = header;
    this.copyInForce = copy;
    this.committedBytes = journalBytes;
    this.committedChecksumsTrusted = imagesSealed;
    this.readAheadSlots = Math.max(1, options.readAheadSlots);
    for (let index = 0; index < journalOffsets.length; index += 1) {
      this.committedAt.set(journalOffsets[index]!, journalAt + index * slotSize);
    }
  }

  /** Reads the header region (the caller holds the header lock) and starts a transaction. */
  static async begin(fs: FileSystem, handle: FileHandle, options: TransactionOptions): Promise<KernelTransaction> {
    const prefixBytes = options.prefixBytes;
    let region: Uint8Array | undefined;
    let chosen: CycleHeader | undefined;
    if (prefixBytes !== undefined && prefixBytes < headerRegionSize) {
      region = await fs.read(handle, 0, prefixBytes, options.regionBuffer);
      // A short read means a file shorter than the prefix: the whole-region rules judge it.
      if (region.length === prefixBytes) chosen = choosePrefixCycleHeader(region);
    }
    if (chosen === undefined) {
      region = await fs.read(handle, 0, headerRegionSize, options.regionBuffer);
      chosen = chooseCycleHeader(region);
    }
    const defect = validateHeaderFields(chosen.header);
    if (defect !== undefined) {
      throw new NasqError('CORRUPT', `kernel header: ${defect}`, { details: { structure: 'header', generation: chosen.header.generation } });
    }
    const transaction = new KernelTransaction(fs, handle, options, chosen.header, chosen.copy, chosen.journalBytes, chosen.journalAt, chosen.journalOffsets, chosen.imagesSealed);
    transaction.prefixBytesNeeded = headerPrefixBytesFor(region!);
    return transaction;
  }

  /** Marks the header as changed (slot changes mark it on their own). */
  touchHeader(): void {
    this.headerChanged = true;
  }

  get dirtyCount(): number {
    return this.dirty.size;
  }

  /** True when another item may be applied without a checkpoint. */
  hasRoomForItem(): boolean {
    return this.dirty.size + maximumImagesPerItem <= journalCapacity;
  }

  /**
   * The current image of a slot if it is known without reading the file (this cycle's change, the
   * journal's, or one read before), else undefined. Lets a caller skip an await.
   */
  knownSlot(offset: number): Slot | undefined {
    const changed = this.dirty.get(offset);
    if (changed !== undefined) return changed;
    const committed = this.committedImage(offset);
    if (committed !== undefined) return committed;
    return this.diskCache.get(offset);
  }

  /** The current image of a slot: this cycle's change, else the journal's, else the slot area's. */
  async slot(offset: number): Promise<Slot> {
    if (!isSlotOffset(offset, this.header.totalSlots)) {
      throw new NasqError('CORRUPT', `a link points at ${offset}, which is not one of the ${this.header.totalSlots} slot offsets`, {
        details: { structure: 'link', offset },
      });
    }
    const known = this.knownSlot(offset);
    if (known !== undefined) return known;
    // The window is the aligned block of `readAheadSlots` slots around the wanted one, not the
    // slots after it: a batch walks the empty stack in either direction (acks push in order, so
    // the next batch pops in reverse), and an aligned block serves both with one read.
    const window = this.readAheadSlots;
    const index = (offset - slotsOffset) / slotSize;
    const firstIndex = index - (index % window);
    const count = Math.min(window, this.header.totalSlots - firstIndex);
    const windowOffset = slotsOffset + firstIndex * slotSize;
    const bytes = await this.fs.read(this.handle, windowOffset, count * slotSize);
    const wantedAt = offset - windowOffset;
    if (bytes.length < wantedAt + slotSize) {
      throw new NasqError('CORRUPT', `slot at offset ${offset} lies past the end of the kernel file`, {
        details: { structure: 'slot', offset },
      });
    }
    const wanted = decodeSlot(bytes, wantedAt, offset);
    this.diskCache.set(offset, wanted);
    // Keep the sound neighbours that the journal does not shadow; a damaged one is reported
    // only if it is ever wanted (it is then read again and fails on its own).
    for (let at = 0; at + slotSize <= bytes.length; at += slotSize) {
      const neighbour = windowOffset + at;
      if (neighbour === offset || this.committedAt.has(neighbour) || this.dirty.has(neighbour) || this.diskCache.has(neighbour)) continue;
      if (slotDefect(bytes, at, neighbour) === undefined) this.diskCache.set(neighbour, decodeSoundSlot(bytes, at));
    }
    return wanted;
  }

  /**
   * Reads at least `slots` slots per slot-area read from now on in this transaction: for a walk
   * along a list, whose slots are not in order, where one wider read saves many narrow ones.
   */
  readAheadAtLeast(slots: number): void {
    this.readAheadSlots = Math.max(this.readAheadSlots, Math.floor(slots));
  }

  /** Records a new image of a slot for this cycle. */
  put(slot: Slot): void {
    assert(isSlotOffset(slot.offset, this.header.totalSlots), () => `put: ${slot.offset} is not a slot offset`);
    slot.stamp = this.header.generation + 1;
    this.dirty.set(slot.offset, slot);
    this.headerChanged = true;
  }

  get changed(): boolean {
    return this.headerChanged;
  }

  /**
   * Makes every change so far durable as one atomic step (see the protocol above). May be called
   * more than once in a cycle (a checkpoint between items of a batch); each call is one commit.
   */
  async commit(): Promise<void> {
    if (!this.headerChanged) return;
    const dirty = this.dirty;
    assert(dirty.size <= journalCapacity, () => `commit: ${dirty.size} changed slots exceed the journal's ${journalCapacity}`);
    // The new journal: the committed images this cycle did not change, then this cycle's.
    let carried: number[] = [];
    for (const offset of this.committedAt.keys()) {
      if (!dirty.has(offset)) carried.push(offset);
    }
    if (carried.length + dirty.size > Math.max(this.options.journalSoftLimit, dirty.size)) {
      // They stay in the committed copy's journal until the header write, so a crash loses nothing.
      await this.writeToSlotArea(carried);
      if (this.options.durable) await this.fs.sync(this.handle);
      for (const offset of carried) {
        this.diskCache.set(offset, this.committedImage(offset)!);
        this.committedDecoded.delete(offset);
      }
      carried = [];
    }
    const offsets = carried;
    for (const offset of dirty.keys()) offsets.push(offset);
    sortAscending(offsets);
    this.header.generation += 1;
    // Only the used part of the copy is written: the fields and the images (every byte of them
    // below). What lies after them in the file, older images, is never read: a copy is read as far
    // as its journalCount says, and that count is under the checksum.
    const bytes = bytesToOverwrite(headerFixedSize + offsets.length * slotSize);
    encodeHeaderFields(this.header, offsets.length, bytes);
    const nextAt = new Map<number, number>();
    const committedBytes = this.committedBytes;
    let at = headerFixedSize;
    // Carried images are copied as bytes, a run of them that was adjacent in the old copy at once.
    let runFrom = -1;
    let runTo = -1;
    let runAt = 0;
    for (const offset of offsets) {
      const image = dirty.get(offset);
      if (image === undefined) {
        const from = this.committedAt.get(offset)!;
        if (from !== runTo) {
          if (runFrom >= 0) bytes.set(committedBytes.subarray(runFrom, runTo), runAt);
          runFrom = from;
          runAt = at;
        }
        runTo = from + slotSize;
      } else {
        encodeSlot(image, bytes, at);
        if (runFrom >= 0) bytes.set(committedBytes.subarray(runFrom, runTo), runAt);
        runFrom = -1;
        runTo = -1;
      }
      nextAt.set(offset, at);
      at += slotSize;
    }
    if (runFrom >= 0) bytes.set(committedBytes.subarray(runFrom, runTo), runAt);
    if (!this.committedChecksumsTrusted) {
      for (const [offset, imageAt] of nextAt) if (!dirty.has(offset)) resealSlot(bytes, imageAt);
    }
    // Every image now carries its right own checksum (encoded just now, verified at the read, or
    // resealed above), so the header checksum is continued from them.
    sealHeaderCopyOfSealedImages(bytes, offsets.length);
    const target: 0 | 1 = this.copyInForce === 0 ? 1 : 0;
    await this.fs.write(this.handle, target * headerCopySize, bytes);
    if (this.options.durable) await this.fs.sync(this.handle);
    this.copyInForce = target;
    this.committedBytes = bytes;
    this.committedAt = nextAt;
    this.committedChecksumsTrusted = true;
    for (const [offset, image] of dirty) this.committedDecoded.set(offset, image);
    dirty.clear();
    this.headerChanged = false;
    this.commits += 1;
  }

  /** The committed journal's image of a slot, decoded once; undefined if the journal has none. */
  private committedImage(offset: number): Slot | undefined {
    const decoded = this.committedDecoded.get(offset);
    if (decoded !== undefined) return decoded;
    const at = this.committedAt.get(offset);
    if (at === undefined) return undefined;
    const image = decodeSoundSlot(this.committedBytes, at);
    this.committedDecoded.set(offset, image);
    return image;
  }

  /** Writes committed journal images to their places (as bytes), one write per run of adjacent slots. */
  private async writeToSlotArea(offsets: number[]): Promise<void> {
    sortAscending(offsets);
    let runStart = 0;
    while (runStart < offsets.length) {
      let runEnd = runStart + 1;
      while (runEnd < offsets.length && offsets[runEnd]! === offsets[runEnd - 1]! + slotSize) runEnd += 1;
      // Every byte is written below (whole images).
      const bytes = bytesToOverwrite((runEnd - runStart) * slotSize);
      for (let index = runStart; index < runEnd; index += 1) {
        const from = this.committedAt.get(offsets[index]!)!;
        const at = (index - runStart) * slotSize;
        bytes.set(this.committedBytes.subarray(from, from + slotSize), at);
        if (!this.committedChecksumsTrusted) resealSlot(bytes, at);
      }
      await this.fs.write(this.handle, offsets[runStart]!, bytes);
      runStart = runEnd;
    }
  }
}

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

import { NasqError, assert } from './errors.js';
import {
  chooseHeader,
  decodeSlot,
  encodeHeader,
  encodeSlot,
  headerCopySize,
  headerRegionSize,
  isSlotOffset,
  journalCapacity,
  slotDefect,
  slotSize,
  slotsOffset,
  validateHeaderFields,
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
  /** Slots to read per slot-area read (a window starting at the wanted slot). */
  readonly readAheadSlots: number;
}

/** Images one item of any operation may dirty at most; batches checkpoint below the capacity. */
export const maximumImagesPerItem = 5;

export class KernelTransaction {
  /** The working header: mutate freely, `commit` writes it. */
  readonly header: Header;
  private copyInForce: 0 | 1;
  private committedJournal: Map<number, Slot>;
  private readonly dirty = new Map<number, Slot>();
  private readonly diskCache = new Map<number, Slot>();
  private headerChanged = false;
  /** Port calls this transaction made (reads and writes), for diagnostics. */
  commits = 0;

  private constructor(
    private readonly fs: FileSystem,
    private readonly handle: FileHandle,
    private readonly options: TransactionOptions,
    header: Header,
    copy: 0 | 1,
  ) {
    this.header = header;
    this.copyInForce = copy;
    this.committedJournal = new Map(header.journal.map((image) => [image.offset, image]));
  }

  /** Reads the header region (the caller holds the header lock) and starts a transaction. */
  static async begin(fs: FileSystem, handle: FileHandle, options: TransactionOptions): Promise<KernelTransaction> {
    const region = await fs.read(handle, 0, headerRegionSize);
    const chosen = chooseHeader(region);
    const defect = validateHeaderFields(chosen.header);
    if (defect !== undefined) {
      throw new NasqError('CORRUPT', `kernel header: ${defect}`, { details: { structure: 'header', generation: chosen.header.generation } });
    }
    return new KernelTransaction(fs, handle, options, chosen.header, chosen.copy);
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

  /** The current image of a slot: this cycle's change, else the journal's, else the slot area's. */
  async slot(offset: number): Promise<Slot> {
    if (!isSlotOffset(offset, this.header.totalSlots)) {
      throw new NasqError('CORRUPT', `a link points at ${offset}, which is not one of the ${this.header.totalSlots} slot offsets`, {
        details: { structure: 'link', offset },
      });
    }
    const known = this.dirty.get(offset) ?? this.committedJournal.get(offset) ?? this.diskCache.get(offset);
    if (known !== undefined) return known;
    const lastOffset = slotsOffset + (this.header.totalSlots - 1) * slotSize;
    const count = Math.max(1, Math.min(this.options.readAheadSlots, (lastOffset - offset) / slotSize + 1));
    const bytes = await this.fs.read(this.handle, offset, count * slotSize);
    if (bytes.length < slotSize) {
      throw new NasqError('CORRUPT', `slot at offset ${offset} lies past the end of the kernel file`, {
        details: { structure: 'slot', offset },
      });
    }
    const wanted = decodeSlot(bytes, 0, offset);
    this.diskCache.set(offset, wanted);
    // Keep the sound neighbours that the journal does not shadow; a damaged one is reported
    // only if it is ever wanted (it is then read again and fails on its own).
    for (let at = slotSize; at + slotSize <= bytes.length; at += slotSize) {
      const neighbour = offset + at;
      if (this.committedJournal.has(neighbour) || this.dirty.has(neighbour) || this.diskCache.has(neighbour)) continue;
      if (slotDefect(bytes, at, neighbour) === undefined) this.diskCache.set(neighbour, decodeSlot(bytes, at, neighbour));
    }
    return wanted;
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
    assert(this.dirty.size <= journalCapacity, () => `commit: ${this.dirty.size} changed slots exceed the journal's ${journalCapacity}`);
    const journal = new Map(this.committedJournal);
    for (const [offset, image] of this.dirty) journal.set(offset, image);
    if (journal.size > Math.max(this.options.journalSoftLimit, this.dirty.size)) {
      const evicted: Slot[] = [];
      for (const [offset, image] of this.committedJournal) {
        if (!this.dirty.has(offset)) evicted.push(image);
      }
      await this.writeToSlotArea(evicted);
      if (this.options.durable) await this.fs.sync(this.handle);
      journal.clear();
      for (const [offset, image] of this.dirty) journal.set(offset, image);
      for (const image of evicted) this.diskCache.set(image.offset, image);
    }
    this.header.generation += 1;
    this.header.journal = [...journal.values()].sort((a, b) => a.offset - b.offset);
    const bytes = encodeHeader(this.header);
    const target: 0 | 1 = this.copyInForce === 0 ? 1 : 0;
    await this.fs.write(this.handle, target * headerCopySize, bytes);
    if (this.options.durable) await this.fs.sync(this.handle);
    this.copyInForce = target;
    this.committedJournal = journal;
    this.dirty.clear();
    this.headerChanged = false;
    this.commits += 1;
  }

  /** Writes images to their places, one write per run of adjacent slots. */
  private async writeToSlotArea(images: Slot[]): Promise<void> {
    images.sort((a, b) => a.offset - b.offset);
    let runStart = 0;
    while (runStart < images.length) {
      let runEnd = runStart + 1;
      while (runEnd < images.length && images[runEnd]!.offset === images[runEnd - 1]!.offset + slotSize) runEnd += 1;
      const bytes = new Uint8Array((runEnd - runStart) * slotSize);
      for (let index = runStart; index < runEnd; index += 1) encodeSlot(images[index]!, bytes, (index - runStart) * slotSize);
      await this.fs.write(this.handle, images[runStart]!.offset, bytes);
      runStart = runEnd;
    }
  }
}

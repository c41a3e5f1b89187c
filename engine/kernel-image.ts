/**
 * The logical contents of a whole kernel file, and the check of every invariant of the format.
 *
 * Used by fsck, by the property tests and by the simulator's checkers (on the server's copy of
 * the file after every write). It reads bytes, never a port, so it works on any copy of the file.
 */

import {
  SlotState,
  chooseHeader,
  comesBefore,
  expiresBefore,
  headerRegionSize,
  isSlotOffset,
  kernelFileSize,
  maximumSlots,
  noOffset,
  slotDefect,
  decodeSoundSlot,
  slotIndexOf,
  slotOffsetOf,
  slotSize,
  validateHeaderFields,
  type Header,
  type JournalImageDecoder,
  type Slot,
} from './format.js';
import { isNasqError } from './errors.js';

export interface KernelImage {
  header: Header;
  /** Which header copy is in force. */
  copy: 0 | 1;
  /** Logical slots by index (journal over slot area); undefined where the slot is unreadable. */
  slots: Array<Slot | undefined>;
  /** Slots that could not be read, with the reason. */
  slotDefects: Array<{ offset: number; defect: string }>;
  /** A defect of the header copy not in force (harmless: the next commit overwrites it). */
  otherCopyDefect: string | undefined;
}

/**
 * What `readKernelImage` made of each slot of a file last time, with the bytes it made it of.
 * A reader that reads one file again and again (the simulator's header-invariants checker, after
 * every write of the kernel file) verifies and decodes again only the slot images, in the slot
 * area or in the journal, whose bytes changed: a commit rewrites a few of many. The result is the
 * same as without a memo (same bytes, same offset, same verdict); the slots it returns are shared
 * between images, so a caller with a memo must not change them.
 */
export class SlotMemo {
  private readonly slots = new ImageCache<Slot | string>();
  private readonly journal = new ImageCache<Slot>();

  /** Slot number `index`, at its place `offset` in `bytes` (whole there), or why it is unusable. */
  read(bytes: Uint8Array, index: number, offset: number): Slot | string {
    return this.slots.read(bytes, offset, index, readSlot);
  }

  /** For chooseHeader: journal image `index`, sound, at `at`. */
  readonly decodeImage: JournalImageDecoder = (bytes, at, index) => this.journal.read(bytes, at, index, decodeSoundSlot);
}

/** A slot in the slot area (at its own offset), or its defect. */
const readSlot = (bytes: Uint8Array, offset: number): Slot | string => slotDefect(bytes, offset, offset) ?? decodeSoundSlot(bytes, offset);

/** Per key (a slot index, a journal position): the last slot-sized bytes seen, and what they meant. */
class ImageCache<T> {
  /** Image `key` at `key * slotSize`. */
  private seen = new Uint8Array(0);
  private seenWords = new Int32Array(0);
  private readonly known: Array<T | undefined> = [];
  /** A word view of the last source buffer (a file's bytes stay in one buffer between growths). */
  private sourceBuffer: ArrayBufferLike | undefined;
  private sourceWords: Int32Array<ArrayBufferLike> = new Int32Array(0);

  read(bytes: Uint8Array, at: number, key: number, make: (bytes: Uint8Array, at: number) => T): T {
    const start = key * slotSize;
    const known = this.known[key];
    if (known !== undefined && this.unchanged(bytes, at, start)) return known;
    const result = make(bytes, at);
    if (this.seen.length < start + slotSize) this.grow(start + slotSize);
    this.seen.set(bytes.subarray(at, at + slotSize), start);
    this.known[key] = result;
    return result;
  }

  private unchanged(bytes: Uint8Array, at: number, start: number): boolean {
    const from = bytes.byteOffset + at;
    if ((from & 3) === 0) {
      if (bytes.buffer !== this.sourceBuffer) {
        this.sourceBuffer = bytes.buffer;
        this.sourceWords = new Int32Array(bytes.buffer, 0, bytes.buffer.byteLength >>> 2);
      }
      const words = this.sourceWords;
      const seenWords = this.seenWords;
      const word = from >>> 2;
      const seenWord = start >>> 2;
      for (let index = 0; index < slotSize >>> 2; index += 1) {
        if (words[word + index] !== seenWords[seenWord + index]) return false;
      }
      return true;
    }
    const seen = this.seen;
    for (let index = 0; index < slotSize; index += 1) {
      if (bytes[at + index] !== seen[start + index]) return false;
    }
    return true;
  }

  private grow(size: number): void {
    const grown = new Uint8Array(Math.max(size, 2 * this.seen.length));
    grown.set(this.seen);
    this.seen = grown;
    this.seenWords = new Int32Array(grown.buffer);
  }
}

/**
 * Decodes a whole kernel file. Throws CORRUPT when no header copy is valid. With a memo, slots
 * whose bytes are as the memo last saw them are not verified and decoded again.
 */
export function readKernelImage(bytes: Uint8Array, memo?: SlotMemo): KernelImage {
  const chosen = chooseHeader(bytes.subarray(0, headerRegionSize), { verifyBoth: true, decodeImage: memo?.decodeImage });
  const { header } = chosen;
  const journalByOffset = new Map<number, Slot>();
  for (const image of header.journal) journalByOffset.set(image.offset, image);
  const slots: Array<Slot | undefined> = [];
  const slotDefects: Array<{ offset: number; defect: string }> = [];
  const expectedSize = kernelFileSize(header.totalSlots);
  if (bytes.length < expectedSize) {
    slotDefects.push({ offset: bytes.length, defect: `kernel file is ${bytes.length} bytes, ${header.totalSlots} slots need ${expectedSize}` });
  }
  // Slots wholly inside the file; the rest stay missing (undefined).
  const readableSlots = Math.min(header.totalSlots, Math.max(0, Math.floor((bytes.length - headerRegionSize) / slotSize)));
  // Never trust the header's count for the work done: slots past the end of the file are missing
  // (one defect above says so), and only journal images can stand in for them.
  let slotCount = readableSlots;
  for (const image of header.journal) slotCount = Math.max(slotCount, slotIndexOf(image.offset) + 1);
  slotCount = Math.min(slotCount, header.totalSlots, maximumSlots);
  for (let index = 0; index < slotCount; index += 1) {
    const offset = slotOffsetOf(index);
    const journaled = journalByOffset.get(offset);
    if (journaled !== undefined) {
      slots.push(journaled);
      continue;
    }
    if (index >= readableSlots) {
      slots.push(undefined);
      continue;
    }
    const slot = memo === undefined ? readSlot(bytes, offset) : memo.read(bytes, index, offset);
    if (typeof slot === 'string') {
      slots.push(undefined);
      slotDefects.push({ offset, defect: slot });
      continue;
    }
    slots.push(slot);
  }
  return { header, copy: chosen.copy, slots, slotDefects, otherCopyDefect: chosen.otherDefect };
}

/**
 * Every invariant of a kernel file, as a list of violations (empty when the file is sound):
 * the header is valid, counts equal group sizes, the three groups partition the slots, no list
 * has a cycle, offsets are in range and aligned, links agree both ways, the unread list is ordered
 * by (delivery time, send order) and its head's priority is in the header, the pending list is
 * ordered by lease expiry, and every slot's checksum holds.
 */
export function kernelViolations(bytes: Uint8Array, memo?: SlotMemo): string[] {
  let image: KernelImage;
  try {
    image = readKernelImage(bytes, memo);
  } catch (error) {
    if (isNasqError(error, 'CORRUPT')) return [error.message];
    throw error;
  }
  return imageViolations(image);
}

export function imageViolations(image: KernelImage): string[] {
  const violations: string[] = [];
  const { header, slots } = image;
  const fieldDefect = validateHeaderFields(header);
  if (fieldDefect !== undefined) violations.push(fieldDefect);
  if (slots.length < header.totalSlots) violations.push(`kernel file holds ${slots.length} of ${header.totalSlots} slots`);
  for (const { defect } of image.slotDefects) violations.push(defect);
  if (violations.length > 0) return violations;

  // Which list each slot index was found in (0: none yet), and how many were found.
  const groupNames = ['', 'empty', 'unread', 'pending'];
  const ownerOf = new Uint8Array(slots.length);
  let owned = 0;
  const slotAt = (offset: number): Slot | undefined =>
    isSlotOffset(offset, header.totalSlots) ? slots[(offset - headerRegionSize) / slotSize] : undefined;

  const walk = (group: 1 | 2 | 3, first: number, expectedState: SlotState, count: number): Slot[] => {
    const name = groupNames[group]!;
    const members: Slot[] = [];
    let offset = first;
    let previous = noOffset;
    while (offset !== noOffset) {
      if (members.length >= header.totalSlots) {
        violations.push(`${name} list is longer than the ${header.totalSlots} slots: it has a cycle`);
        break;
      }
      const slot = slotAt(offset);
      if (slot === undefined) {
        violations.push(`${name} list links to ${offset}, not a slot offset`);
        break;
      }
      const index = (offset - headerRegionSize) / slotSize;
      const seenIn = ownerOf[index]!;
      if (seenIn !== 0) {
        violations.push(`slot ${offset} is in the ${groupNames[seenIn]} list and again in the ${name} list`);
        break;
      }
      ownerOf[index] = group;
      owned += 1;
      if (slot.state !== expectedState) violations.push(`slot ${offset} in the ${name} list has state ${slot.state}`);
      if (group === 3 && slot.previous !== previous) {
        violations.push(`pending slot ${offset} says its previous is ${slot.previous}, but it follows ${previous}`);
      }
      if (group !== 3 && slot.previous !== noOffset) {
        violations.push(`${name} slot ${offset} has a previous link ${slot.previous}; only pending slots have one`);
      }
      members.push(slot);
      previous = offset;
      offset = slot.next;
    }
    if (members.length !== count) violations.push(`header counts ${count} ${name} slots, the list has ${members.length}`);
    return members;
  };

  walk(1, header.firstEmptyOffset, SlotState.empty, header.emptyCount);
  const unread = walk(2, header.firstUnreadOffset, SlotState.unread, header.unreadCount);
  const pending = walk(3, header.firstPendingOffset, SlotState.pending, header.pendingCount);

  for (let index = 1; index < unread.length; index += 1) {
    const before = unread[index - 1]!;
    const after = unread[index]!;
    if (comesBefore(after, before)) {
      violations.push(`unread slot ${after.offset} (priority ${after.priority}) comes after ${before.offset} (priority ${before.priority})`);
    }
    if (before.nextPriority !== after.priority) {
      violations.push(`unread slot ${before.offset} caches next priority ${before.nextPriority}, the next slot has ${after.priority}`);
    }
  }
  const head = unread[0];
  const tail = unread[unread.length - 1];
  if (head !== undefined && header.firstUnreadPriority !== head.priority) {
    violations.push(`header firstUnreadPriority ${header.firstUnreadPriority} differs from the head's priority ${head.priority}`);
  }
  if (head === undefined && header.firstUnreadPriority !== 0) violations.push('header firstUnreadPriority is set on an empty unread list');
  if (tail !== undefined) {
    if (header.lastUnreadOffset !== tail.offset) violations.push(`header lastUnreadOffset ${header.lastUnreadOffset} is not the tail ${tail.offset}`);
    if (header.lastUnreadPriority !== tail.priority || header.lastUnreadSendSequence !== tail.sendSequence) {
      violations.push('header last unread priority or send sequence differs from the tail');
    }
    if (tail.nextPriority !== 0) violations.push(`unread tail ${tail.offset} caches a next priority`);
  } else if (header.lastUnreadOffset !== noOffset) {
    violations.push('header lastUnreadOffset is set on an empty unread list');
  }

  for (let index = 1; index < pending.length; index += 1) {
    const before = pending[index - 1]!;
    const after = pending[index]!;
    if (expiresBefore(after, before)) violations.push(`pending slot ${after.offset} expires before ${before.offset} but comes after it`);
  }
  const pendingHead = pending[0];
  const pendingTail = pending[pending.length - 1];
  if ((pendingHead?.leaseExpiry ?? 0) !== header.firstPendingExpiry) {
    violations.push(`header firstPendingExpiry ${header.firstPendingExpiry} differs from the pending head's ${pendingHead?.leaseExpiry ?? 0}`);
  }
  if ((pendingTail?.offset ?? noOffset) !== header.lastPendingOffset) {
    violations.push(`header lastPendingOffset ${header.lastPendingOffset} is not the pending tail ${pendingTail?.offset ?? noOffset}`);
  }

  if (owned !== header.totalSlots && violations.length === 0) {
    violations.push(`the groups hold ${owned} of ${header.totalSlots} slots`);
  }
  return violations;
}

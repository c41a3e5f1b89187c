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
  decodeSlot,
  slotIndexOf,
  slotOffsetOf,
  slotSize,
  validateHeaderFields,
  type Header,
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

/** Decodes a whole kernel file. Throws CORRUPT when no header copy is valid. */
export function readKernelImage(bytes: Uint8Array): KernelImage {
  const chosen = chooseHeader(bytes.subarray(0, headerRegionSize), { verifyBoth: true });
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
    const defect = slotDefect(bytes, offset, offset);
    if (defect !== undefined) {
      slots.push(undefined);
      slotDefects.push({ offset, defect });
      continue;
    }
    slots.push(decodeSlot(bytes, offset, offset));
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
export function kernelViolations(bytes: Uint8Array): string[] {
  let image: KernelImage;
  try {
    image = readKernelImage(bytes);
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

  const owner = new Map<number, string>();
  const slotAt = (offset: number): Slot | undefined =>
    isSlotOffset(offset, header.totalSlots) ? slots[(offset - headerRegionSize) / slotSize] : undefined;

  const walk = (name: string, first: number, expectedState: SlotState, count: number): Slot[] => {
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
      const seenIn = owner.get(offset);
      if (seenIn !== undefined) {
        violations.push(`slot ${offset} is in the ${seenIn} list and again in the ${name} list`);
        break;
      }
      owner.set(offset, name);
      if (slot.state !== expectedState) violations.push(`slot ${offset} in the ${name} list has state ${slot.state}`);
      if (name === 'pending' && slot.previous !== previous) {
        violations.push(`pending slot ${offset} says its previous is ${slot.previous}, but it follows ${previous}`);
      }
      if (name !== 'pending' && slot.previous !== noOffset) {
        violations.push(`${name} slot ${offset} has a previous link ${slot.previous}; only pending slots have one`);
      }
      members.push(slot);
      previous = offset;
      offset = slot.next;
    }
    if (members.length !== count) violations.push(`header counts ${count} ${name} slots, the list has ${members.length}`);
    return members;
  };

  walk('empty', header.firstEmptyOffset, SlotState.empty, header.emptyCount);
  const unread = walk('unread', header.firstUnreadOffset, SlotState.unread, header.unreadCount);
  const pending = walk('pending', header.firstPendingOffset, SlotState.pending, header.pendingCount);

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

  if (owner.size !== header.totalSlots && violations.length === 0) {
    violations.push(`the groups hold ${owner.size} of ${header.totalSlots} slots`);
  }
  return violations;
}

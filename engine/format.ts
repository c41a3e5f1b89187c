/**
 * The on-disk format of the kernel file (see docs/format.md for the prose and the reasons).
 *
 * kernel file = two header copies (ping-pong) + N fixed-size slots.
 *
 *   [0, 8192)        header copy A
 *   [8192, 16384)    header copy B
 *   [16384, ...)     slot 0, slot 1, ... each 128 bytes
 *
 * The header lock is an exclusive byte-range lock on [0, 16384): both copies. A header copy holds
 * the counts and offsets of claim 5, a generation counter, and a journal: full images of slots
 * changed by recent lock cycles that may not have reached their place in the slot area yet. The
 * newest valid copy wins; the journal overlays the slot area. One write of one header copy is
 * therefore the atomic commit of a whole lock cycle.
 *
 * All integers are little-endian. Times and sequence numbers are float64 holding integers
 * (exact below 2^53). Offsets are byte offsets into the kernel file; 0 means "none" (offset 0 is
 * the header, never a slot).
 */

import { crc32c, crc32cContinue, crc32cShiftTables } from './crc32.js';
import { AssertionError, NasqError, assert } from './errors.js';

export const kernelMagic = 0x4e415351; // 'NASQ' read as a little-endian u32 of "QSAN"
/**
 * 2: the header checksum leaves out each journal image's own checksum (see headerChecksum).
 * 3: 128-byte slots; a body may live in a bundle file with the other bodies of its batch.
 */
export const formatVersion = 3;
export const headerCopySize = 8192;
export const headerRegionSize = 2 * headerCopySize;
export const headerFixedSize = 128;
export const slotSize = 128;
export const slotsOffset = headerRegionSize;
/** How many slot images one header copy's journal holds. */
export const journalCapacity = Math.floor((headerCopySize - headerFixedSize) / slotSize);
export const minimumSlots = 1;
/** Offsets are u32: the kernel file must stay under 4 GiB. */
export const maximumSlots = Math.floor((2 ** 32 - slotsOffset) / slotSize) - 1;
export const noOffset = 0;
export const maximumDeliveriesLimit = 65_535;

export const SlotState = {
  empty: 1,
  unread: 2,
  pending: 3,
} as const;
export type SlotState = (typeof SlotState)[keyof typeof SlotState];

/** Flags of a slot. */
export const slotFlagFilling = 1;

/** The decoded header (one copy). */
export interface Header {
  generation: number;
  totalSlots: number;
  /** Claim 5: the number of empty slots. */
  emptyCount: number;
  /** Claim 5: the number of slots being filled or processed. */
  pendingCount: number;
  unreadCount: number;
  /** Claim 5: the offset of the first slot ready to be processed by a receiver. */
  firstUnreadOffset: number;
  lastUnreadOffset: number;
  /** Claim 5: the offset of the first empty slot. */
  firstEmptyOffset: number;
  firstPendingOffset: number;
  lastPendingOffset: number;
  /** Claim 5: the queue priority (delivery time) of the first slot waiting to be processed; 0 if none. */
  firstUnreadPriority: number;
  lastUnreadPriority: number;
  lastUnreadSendSequence: number;
  /** Lease expiry of the first pending slot (the earliest); 0 if none. */
  firstPendingExpiry: number;
  nextSendSequence: number;
  nextClientId: number;
  nextLeaseToken: number;
  /** Counts leases taken back from their holders (expiry); lets holders know whether to look. */
  reclaimEpoch: number;
  /** Deliveries after which a message goes to the dead-letter directory instead of back to unread. */
  maximumDeliveries: number;
  deadCount: number;
  /** Slot images newer than the slot area, by offset. */
  journal: Slot[];
}

/** The decoded contents of one slot. */
export interface Slot {
  /** Where the slot lives; stored in the slot so a misplaced image is detected. */
  offset: number;
  state: SlotState;
  flags: number;
  deliveryCount: number;
  /** Next slot of the same group; 0 at the end. */
  next: number;
  /** Previous slot of the same group (kept for the pending group); 0 at the start. */
  previous: number;
  /** Queue priority: the delivery time in milliseconds since the epoch. */
  priority: number;
  /** Global send order, the tie-breaker between equal priorities. */
  sendSequence: number;
  messageClient: number;
  messageSequence: number;
  bodyLength: number;
  bodyChecksum: number;
  /** Client id of the receiver (or filling sender) while pending; 0 otherwise. */
  owner: number;
  /** Fencing token of the current lease; 0 when not pending. */
  leaseToken: number;
  leaseExpiry: number;
  /** Priority of the next unread slot (so popping the head needs no second read); 0 if none. */
  nextPriority: number;
  /** Generation of the commit that wrote this image. */
  stamp: number;
  /** When the sender sent the message, on the sender's clock. */
  sentAt: number;
  /**
   * 0 when the body is its own file `msg/ID`; else the message sequence of the first message of
   * the bundle `msg/CLIENT-FIRST.bundle` that holds the bodies of its batch.
   */
  bundleFirstSequence: number;
  /** Messages in that bundle (0 when not bundled). */
  bundleCount: number;
}

export function slotOffsetOf(index: number): number {
  return slotsOffset + index * slotSize;
}

export function slotIndexOf(offset: number): number {
  return (offset - slotsOffset) / slotSize;
}

export function kernelFileSize(totalSlots: number): number {
  return slotsOffset + totalSlots * slotSize;
}

export function isSlotOffset(offset: number, totalSlots: number): boolean {
  return (
    Number.isInteger(offset) &&
    offset >= slotsOffset &&
    offset < slotsOffset + totalSlots * slotSize &&
    (offset - slotsOffset) % slotSize === 0
  );
}

export function emptySlot(offset: number, next: number, stamp: number): Slot {
  // Fields in the order of decodeSoundSlot and copySlot: one object shape for every slot.
  return {
    state: SlotState.empty,
    flags: 0,
    deliveryCount: 0,
    offset,
    next,
    previous: noOffset,
    priority: 0,
    sendSequence: 0,
    messageClient: 0,
    messageSequence: 0,
    bodyLength: 0,
    bodyChecksum: 0,
    owner: 0,
    leaseToken: 0,
    leaseExpiry: 0,
    nextPriority: 0,
    stamp,
    sentAt: 0,
    bundleFirstSequence: 0,
    bundleCount: 0,
  };
}

/** The header of a new queue of `totalSlots` empty slots (generation 1, an empty journal). */
export function emptyQueueHeader(totalSlots: number, maximumDeliveries: number): Header {
  return {
    generation: 1,
    totalSlots,
    emptyCount: totalSlots,
    pendingCount: 0,
    unreadCount: 0,
    firstUnreadOffset: noOffset,
    lastUnreadOffset: noOffset,
    firstEmptyOffset: slotOffsetOf(0),
    firstPendingOffset: noOffset,
    lastPendingOffset: noOffset,
    firstUnreadPriority: 0,
    lastUnreadPriority: 0,
    lastUnreadSendSequence: 0,
    firstPendingExpiry: 0,
    nextSendSequence: 1,
    nextClientId: 1,
    nextLeaseToken: 1,
    reclaimEpoch: 0,
    maximumDeliveries,
    deadCount: 0,
    journal: [],
  };
}

/** A copy of a slot, field by field (cheaper than a spread, and of the one slot shape). */
export function copySlot(slot: Slot): Slot {
  return {
    state: slot.state,
    flags: slot.flags,
    deliveryCount: slot.deliveryCount,
    offset: slot.offset,
    next: slot.next,
    previous: slot.previous,
    priority: slot.priority,
    sendSequence: slot.sendSequence,
    messageClient: slot.messageClient,
    messageSequence: slot.messageSequence,
    bodyLength: slot.bodyLength,
    bodyChecksum: slot.bodyChecksum,
    owner: slot.owner,
    leaseToken: slot.leaseToken,
    leaseExpiry: slot.leaseExpiry,
    nextPriority: slot.nextPriority,
    stamp: slot.stamp,
    sentAt: slot.sentAt,
    bundleFirstSequence: slot.bundleFirstSequence,
    bundleCount: slot.bundleCount,
  };
}

// ---------------------------------------------------------------------------------------------
// Slots

/**
 * One DataView per buffer, kept for the next calls: encoding and decoding run on every lock
 * cycle, and a DataView per slot (or per field) was a large share of their cost. The views of the
 * last two buffers are kept, because a cycle alternates between two: the header region it read
 * (a client's own buffer) and the copy it writes (a slab). Holding on to them keeps them alive a
 * little longer; nothing else. crc32.ts keeps its word views the same way, in code of its own on
 * purpose: one shared cache class handing out DataViews here and Int32Arrays there made the loads
 * through them polymorphic, and the whole simulator run measurably slower (about 5 %).
 */
let viewBytes: Uint8Array | undefined;
let viewBuffer: ArrayBufferLike | undefined;
let viewOfBuffer: DataView | undefined;
let previousViewBuffer: ArrayBufferLike | undefined;
let previousViewOfBuffer: DataView | undefined;

function viewOf(bytes: Uint8Array): DataView {
  if (bytes === viewBytes) return viewOfBuffer!;
  const buffer = bytes.buffer;
  if (buffer !== viewBuffer) {
    const lastBuffer = viewBuffer;
    const lastView = viewOfBuffer;
    viewOfBuffer = buffer === previousViewBuffer ? previousViewOfBuffer : new DataView(buffer);
    viewBuffer = buffer;
    previousViewBuffer = lastBuffer;
    previousViewOfBuffer = lastView;
  }
  viewBytes = bytes;
  return viewOfBuffer!;
}

export function encodeSlot(slot: Slot, target: Uint8Array, at: number): void {
  if (!(at >= 0 && at + slotSize <= target.length)) throw new AssertionError(`encodeSlot: ${at} + ${slotSize} lies outside a buffer of ${target.length} bytes`);
  const view = viewOf(target);
  const base = target.byteOffset + at;
  view.setUint8(base, slot.state);
  view.setUint8(base + 1, slot.flags);
  view.setUint16(base + 2, slot.deliveryCount, true);
  view.setUint32(base + 4, slot.offset, true);
  view.setUint32(base + 8, slot.next, true);
  view.setUint32(base + 12, slot.previous, true);
  view.setFloat64(base + 16, slot.priority, true);
  view.setFloat64(base + 24, slot.sendSequence, true);
  view.setUint32(base + 32, slot.messageClient, true);
  view.setUint32(base + 36, slot.messageSequence, true);
  view.setUint32(base + 40, slot.bodyLength, true);
  view.setUint32(base + 44, slot.bodyChecksum, true);
  view.setUint32(base + 48, slot.owner, true);
  view.setUint32(base + 52, slot.leaseToken, true);
  view.setFloat64(base + 56, slot.leaseExpiry, true);
  view.setFloat64(base + 64, slot.nextPriority, true);
  view.setFloat64(base + 72, slot.stamp, true);
  view.setFloat64(base + 80, slot.sentAt, true);
  view.setUint32(base + 88, slot.bundleFirstSequence, true);
  view.setUint32(base + 92, slot.bundleCount, true);
  for (let reserved = 96; reserved < slotSize - 4; reserved += 4) view.setUint32(base + reserved, 0, true);
  view.setUint32(base + slotSize - 4, crc32c(target, at, at + slotSize - 4), true);
}

/** Recomputes and stores the own checksum of the slot image at `at` (its other bytes as they are). */
export function resealSlot(target: Uint8Array, at: number): void {
  viewOf(target).setUint32(target.byteOffset + at + slotSize - 4, crc32c(target, at, at + slotSize - 4), true);
}

/** Why a slot image is unusable, or undefined if it is sound. */
export function slotDefect(bytes: Uint8Array, at: number, expectedOffset: number): string | undefined {
  if (bytes.length < at + slotSize) return `slot at offset ${expectedOffset} is cut short (${bytes.length - at} of ${slotSize} bytes)`;
  const view = viewOf(bytes);
  const base = bytes.byteOffset + at;
  const stored = view.getUint32(base + slotSize - 4, true);
  const computed = crc32c(bytes, at, at + slotSize - 4);
  if (stored !== computed) return `slot at offset ${expectedOffset} has checksum ${hex(stored)}, expected ${hex(computed)}`;
  const selfOffset = view.getUint32(base + 4, true);
  if (selfOffset !== expectedOffset) return `slot at offset ${expectedOffset} says it belongs at offset ${selfOffset}`;
  const state = bytes[at]!;
  if (state !== SlotState.empty && state !== SlotState.unread && state !== SlotState.pending) {
    return `slot at offset ${expectedOffset} has unknown state ${state}`;
  }
  return undefined;
}

/** Decodes a slot image; throws CORRUPT if it is unsound. */
export function decodeSlot(bytes: Uint8Array, at: number, expectedOffset: number): Slot {
  const defect = slotDefect(bytes, at, expectedOffset);
  if (defect !== undefined) {
    throw new NasqError('CORRUPT', defect, { details: { structure: 'slot', offset: expectedOffset } });
  }
  return decodeSoundSlot(bytes, at);
}

/**
 * Decodes a slot image already known to be sound (its checksum, or the header checksum that
 * covers it, verified; its state valid).
 */
export function decodeSoundSlot(bytes: Uint8Array, at: number): Slot {
  const view = viewOf(bytes);
  const base = bytes.byteOffset + at;
  return {
    state: view.getUint8(base) as SlotState,
    flags: view.getUint8(base + 1),
    deliveryCount: view.getUint16(base + 2, true),
    offset: view.getUint32(base + 4, true),
    next: view.getUint32(base + 8, true),
    previous: view.getUint32(base + 12, true),
    priority: view.getFloat64(base + 16, true),
    sendSequence: view.getFloat64(base + 24, true),
    messageClient: view.getUint32(base + 32, true),
    messageSequence: view.getUint32(base + 36, true),
    bodyLength: view.getUint32(base + 40, true),
    bodyChecksum: view.getUint32(base + 44, true),
    owner: view.getUint32(base + 48, true),
    leaseToken: view.getUint32(base + 52, true),
    leaseExpiry: view.getFloat64(base + 56, true),
    nextPriority: view.getFloat64(base + 64, true),
    stamp: view.getFloat64(base + 72, true),
    sentAt: view.getFloat64(base + 80, true),
    bundleFirstSequence: view.getUint32(base + 88, true),
    bundleCount: view.getUint32(base + 92, true),
  };
}

// ---------------------------------------------------------------------------------------------
// Header

const checksumAt = 124;

/** Encodes a header copy into a fresh `headerCopySize` buffer. */
export function encodeHeader(header: Header): Uint8Array {
  assert(header.journal.length <= journalCapacity, () => `journal holds ${header.journal.length} images, at most ${journalCapacity} fit`);
  const bytes = new Uint8Array(headerCopySize);
  encodeHeaderFields(header, header.journal.length, bytes);
  let at = headerFixedSize;
  for (const image of header.journal) {
    encodeSlot(image, bytes, at);
    at += slotSize;
  }
  sealHeaderCopy(bytes, header.journal.length);
  return bytes;
}

/**
 * Writes the fixed part of a header copy (all but the checksum) into `bytes[0, headerFixedSize)`;
 * `journalLength` images are to follow at `headerFixedSize`. Then `sealHeaderCopy`. `bytes` may
 * end after the journal: nothing reads a copy past its `journalCount` images.
 */
export function encodeHeaderFields(header: Header, journalLength: number, bytes: Uint8Array): void {
  if (journalLength > journalCapacity || bytes.length < headerFixedSize + journalLength * slotSize) {
    throw new AssertionError(`encodeHeaderFields: a ${bytes.length}-byte buffer for a journal of ${journalLength} images`);
  }
  const view = viewOf(bytes);
  const base = bytes.byteOffset;
  view.setUint32(base, kernelMagic, true);
  view.setUint16(base + 4, formatVersion, true);
  view.setUint16(base + 6, slotSize, true);
  view.setFloat64(base + 8, header.generation, true);
  view.setUint32(base + 16, header.totalSlots, true);
  view.setUint32(base + 20, journalLength, true);
  view.setUint32(base + 24, slotsOffset, true);
  view.setUint32(base + 28, header.emptyCount, true);
  view.setUint32(base + 32, header.pendingCount, true);
  view.setUint32(base + 36, header.unreadCount, true);
  view.setUint32(base + 40, header.firstUnreadOffset, true);
  view.setUint32(base + 44, header.lastUnreadOffset, true);
  view.setUint32(base + 48, header.firstEmptyOffset, true);
  view.setUint32(base + 52, header.firstPendingOffset, true);
  view.setUint32(base + 56, header.lastPendingOffset, true);
  view.setUint32(base + 60, header.nextClientId, true);
  view.setFloat64(base + 64, header.firstUnreadPriority, true);
  view.setFloat64(base + 72, header.lastUnreadPriority, true);
  view.setFloat64(base + 80, header.lastUnreadSendSequence, true);
  view.setFloat64(base + 88, header.firstPendingExpiry, true);
  view.setFloat64(base + 96, header.nextSendSequence, true);
  view.setUint32(base + 104, header.nextLeaseToken, true);
  view.setUint32(base + 108, header.reclaimEpoch, true);
  view.setUint32(base + 112, header.maximumDeliveries, true);
  view.setUint32(base + 116, header.deadCount, true);
  view.setUint32(base + 120, 0, true);
}

/** Stores the checksum of a header copy whose fields and journal images are written. */
export function sealHeaderCopy(bytes: Uint8Array, journalLength: number): void {
  viewOf(bytes).setUint32(bytes.byteOffset + checksumAt, headerChecksum(bytes, 0, journalLength, undefined), true);
}

/**
 * `sealHeaderCopy` for a copy whose journal images all carry their correct own checksums (just
 * encoded, or verified): the header checksum is continued over each image from its stored own
 * checksum, without reading the image again (see crc32cContinue). Same bytes as sealHeaderCopy.
 */
export function sealHeaderCopyOfSealedImages(bytes: Uint8Array, journalLength: number): void {
  const view = viewOf(bytes);
  let crc = crc32c(bytes, 0, checksumAt);
  for (let index = 0; index < journalLength; index += 1) {
    crc = crc32cContinue(imageShift, crc, view.getUint32(bytes.byteOffset + headerFixedSize + index * slotSize + slotSize - 4, true));
  }
  view.setUint32(bytes.byteOffset + checksumAt, crc, true);
}

/** Continues a checksum over the first slotSize - 4 bytes of a journal image (all but its own checksum). */
const imageShift = crc32cShiftTables(slotSize - 4);

/** What `headerChecksum` also learns: whether every journal image's own checksum is right. */
interface ImageSeals {
  allSound: boolean;
}

/**
 * CRC-32C of the header's fixed fields and of each journal image WITHOUT the image's own
 * checksum. (CRC is linear: a block followed by its own CRC adds the same value to a running CRC
 * whatever the block holds, so a checksum over whole images could not tell one image from another:
 * a torn write mixing images of two generations would pass.)
 *
 * Computed as the checksum of the fields continued by each image's own checksum of its bytes
 * (the same value as one checksum over all of them, crc32cContinue), so the images' own
 * checksums are checked on the way: `seals.allSound` says whether every stored one is right.
 */
function headerChecksum(bytes: Uint8Array, at: number, journalLength: number, seals: ImageSeals | undefined): number {
  const view = viewOf(bytes);
  let crc = crc32c(bytes, at, at + checksumAt);
  let allSound = true;
  for (let index = 0; index < journalLength; index += 1) {
    const imageAt = at + headerFixedSize + index * slotSize;
    const own = crc32c(bytes, imageAt, imageAt + slotSize - 4);
    if (own !== view.getUint32(bytes.byteOffset + imageAt + slotSize - 4, true)) allSound = false;
    crc = crc32cContinue(imageShift, crc, own);
  }
  if (seals !== undefined) seals.allSound = allSound;
  return crc;
}

export type HeaderCopyResult = { ok: true; header: Header } | { ok: false; defect: string };

/**
 * Checks one header copy found at `at` in `bytes` (magic, version, sizes, checksum, and each
 * journal image's offset and state) without decoding it. Returns its defect, or undefined if it
 * is sound; then `journalOffsets` (if given) holds the slot offset of each journal image.
 */
function headerCopyDefect(bytes: Uint8Array, at: number, journalOffsets: number[] | undefined, seals?: ImageSeals, wholeCopy = true): string | undefined {
  if (bytes.length < at + headerFixedSize) return `header copy at ${at} is cut short (${Math.max(0, bytes.length - at)} bytes)`;
  const view = viewOf(bytes);
  const base = bytes.byteOffset + at;
  const magic = view.getUint32(base, true);
  if (magic !== kernelMagic) return `header copy at ${at} has magic ${hex(magic)}, expected ${hex(kernelMagic)}`;
  const version = view.getUint16(base + 4, true);
  if (version !== formatVersion) return `header copy at ${at} has format version ${version}, expected ${formatVersion}`;
  const storedSlotSize = view.getUint16(base + 6, true);
  if (storedSlotSize !== slotSize) return `header copy at ${at} has slot size ${storedSlotSize}, expected ${slotSize}`;
  const journalLength = view.getUint32(base + 20, true);
  if (journalLength > journalCapacity) return `header copy at ${at} says its journal holds ${journalLength} images, at most ${journalCapacity} fit`;
  // A copy is read as far as its journal; a prefix read of the region (wholeCopy false) may end there.
  if (bytes.length < (wholeCopy ? at + headerCopySize : at + headerFixedSize + journalLength * slotSize)) return `header copy at ${at} is cut short`;
  const stored = view.getUint32(base + checksumAt, true);
  const computed = headerChecksum(bytes, at, journalLength, seals);
  if (stored !== computed) return `header copy at ${at} has checksum ${hex(stored)}, expected ${hex(computed)}`;
  const totalSlots = view.getUint32(base + 16, true);
  for (let index = 0; index < journalLength; index += 1) {
    const imageAt = at + headerFixedSize + index * slotSize;
    const offset = view.getUint32(bytes.byteOffset + imageAt + 4, true);
    if (!isSlotOffset(offset, totalSlots)) {
      return `header copy at ${at} has a journal image for offset ${offset}, outside the ${totalSlots} slots`;
    }
    // The header checksum covers the journal: an image whose own checksum is wrong is still sound
    // (its own checksum is resealed before it is written anywhere; seals.allSound says so).
    const state = bytes[imageAt]!;
    if (state !== SlotState.empty && state !== SlotState.unread && state !== SlotState.pending) {
      return `header copy at ${at} has a journal image for offset ${offset} with unknown state ${state}`;
    }
    journalOffsets?.push(offset);
  }
  return undefined;
}

/** The fields of a sound header copy at `at`, with the given journal. */
function decodeHeaderFields(bytes: Uint8Array, at: number, journal: Slot[]): Header {
  const view = viewOf(bytes);
  const base = bytes.byteOffset + at;
  return {
    generation: view.getFloat64(base + 8, true),
    totalSlots: view.getUint32(base + 16, true),
    emptyCount: view.getUint32(base + 28, true),
    pendingCount: view.getUint32(base + 32, true),
    unreadCount: view.getUint32(base + 36, true),
    firstUnreadOffset: view.getUint32(base + 40, true),
    lastUnreadOffset: view.getUint32(base + 44, true),
    firstEmptyOffset: view.getUint32(base + 48, true),
    firstPendingOffset: view.getUint32(base + 52, true),
    lastPendingOffset: view.getUint32(base + 56, true),
    nextClientId: view.getUint32(base + 60, true),
    firstUnreadPriority: view.getFloat64(base + 64, true),
    lastUnreadPriority: view.getFloat64(base + 72, true),
    lastUnreadSendSequence: view.getFloat64(base + 80, true),
    firstPendingExpiry: view.getFloat64(base + 88, true),
    nextSendSequence: view.getFloat64(base + 96, true),
    nextLeaseToken: view.getUint32(base + 104, true),
    reclaimEpoch: view.getUint32(base + 108, true),
    maximumDeliveries: view.getUint32(base + 112, true),
    deadCount: view.getUint32(base + 116, true),
    journal,
  };
}

/**
 * Decodes journal image number `index`, found at `at` in `bytes` and known to be sound (the
 * header checksum covers it). A reader of one file again and again may hand out the slot it
 * decoded last time from the same bytes (SlotMemo).
 */
export type JournalImageDecoder = (bytes: Uint8Array, at: number, index: number) => Slot;

const decodeJournalImage: JournalImageDecoder = (bytes, at) => decodeSoundSlot(bytes, at);

/** The header of a sound copy at `at` (headerCopyDefect found nothing), its journal decoded. */
function decodeSoundHeaderCopy(bytes: Uint8Array, at: number, decodeImage: JournalImageDecoder): Header {
  const journalLength = viewOf(bytes).getUint32(bytes.byteOffset + at + 20, true);
  const journal: Slot[] = [];
  for (let index = 0; index < journalLength; index += 1) journal.push(decodeImage(bytes, at + headerFixedSize + index * slotSize, index));
  return decodeHeaderFields(bytes, at, journal);
}

/** Decodes one header copy found at `at` in `bytes`, reporting a defect instead of throwing. */
export function decodeHeaderCopy(bytes: Uint8Array, at: number): HeaderCopyResult {
  const defect = headerCopyDefect(bytes, at, undefined);
  if (defect !== undefined) return { ok: false, defect };
  return { ok: true, header: decodeSoundHeaderCopy(bytes, at, decodeJournalImage) };
}

/**
 * The header of a lock cycle: the fields of the copy in force, and its journal left as bytes
 * (`journalBytes[journalAt + index * slotSize]` is the image of slot `journalOffsets[index]`),
 * decoded only when a slot is wanted and copied as bytes into the next copy otherwise.
 */
export interface CycleHeader {
  /** The header; its `journal` is empty (the images are in `journalBytes`). */
  header: Header;
  copy: 0 | 1;
  journalBytes: Uint8Array;
  journalAt: number;
  journalOffsets: number[];
  /** Every journal image's own checksum is right (else they are resealed before being written again). */
  imagesSealed: boolean;
}

/**
 * `chooseCycleHeader` from the first bytes of the header region only, or undefined when they do
 * not settle it: a lock cycle reads a prefix that holds all of copy A and the used part of copy B
 * in the common case (about 10 of the 16 KB), and reads the whole region only when copy B's
 * journal is longer than the prefix, or the newer copy is damaged (then the whole-region rules
 * decide, as before). When the prefix settles it, the choice is the whole region's: the copy
 * with the higher generation, sound. (One difference, for a kernel file cut short inside copy B,
 * which is corrupt anyway: the newer copy B, whole up to its journal's end, is taken where the
 * whole-region rule would fall back to copy A.)
 */
export function choosePrefixCycleHeader(prefix: Uint8Array): CycleHeader | undefined {
  if (prefix.length < headerCopySize + headerFixedSize || prefix.length >= headerRegionSize) return undefined;
  // The newer copy must be whole up to its journal's end (a copy cut short there is a defect).
  return soundNewerCopy(prefix, false);
}

/**
 * How many bytes of the header region a prefix read needs to hold copy B's fields and a journal
 * of `journalLength` images (all of copy A comes first): at most the whole region.
 */
export function headerPrefixBytes(journalLength: number): number {
  return Math.min(headerRegionSize, headerCopySize + headerFixedSize + Math.min(journalCapacity, journalLength) * slotSize);
}

/** `headerPrefixBytes` of the journal copy B claims in `region` (its fields only, if it claims none or too many). */
export function headerPrefixBytesFor(region: Uint8Array): number {
  if (region.length < headerCopySize + headerFixedSize) return headerPrefixBytes(0);
  return headerPrefixBytes(viewOf(region).getUint32(region.byteOffset + headerCopySize + 20, true));
}

/** Which copy claims the higher generation (copy A on a tie). */
function newerCopy(region: Uint8Array): 0 | 1 {
  const view = viewOf(region);
  return view.getFloat64(region.byteOffset + headerCopySize + 8, true) > view.getFloat64(region.byteOffset + 8, true) ? 1 : 0;
}

/**
 * The fast path of a cycle: the copy that claims the higher generation, if it is sound (checked
 * whole, or as far as its journal when `wholeCopy` is false), with its journal left as bytes.
 */
function soundNewerCopy(region: Uint8Array, wholeCopy: boolean): CycleHeader | undefined {
  const newer = newerCopy(region);
  const at = newer * headerCopySize;
  const journalOffsets: number[] = [];
  const seals: ImageSeals = { allSound: false };
  if (headerCopyDefect(region, at, journalOffsets, seals, wholeCopy) !== undefined) return undefined;
  return { header: decodeHeaderFields(region, at, []), copy: newer, journalBytes: region, journalAt: at + headerFixedSize, journalOffsets, imagesSealed: seals.allSound };
}

/**
 * `chooseHeader` for a lock cycle: picks the same copy, or throws the same CORRUPT, but leaves
 * the journal images as bytes.
 */
export function chooseCycleHeader(region: Uint8Array): CycleHeader {
  if (region.length >= headerRegionSize) {
    const chosen = soundNewerCopy(region, true);
    if (chosen !== undefined) return chosen;
  }
  // The slow path (a damaged or short copy): exactly chooseHeader's choice among both copies.
  const chosen = chooseHeader(region, { verifyBoth: true });
  const journalOffsets = chosen.header.journal.map((image) => image.offset);
  return {
    header: { ...chosen.header, journal: [] },
    copy: chosen.copy,
    journalBytes: region,
    journalAt: chosen.copy * headerCopySize + headerFixedSize,
    journalOffsets,
    imagesSealed: false,
  };
}

export interface ChosenHeader {
  header: Header;
  /** 0 for copy A, 1 for copy B: the copy that holds the newest valid header. */
  copy: 0 | 1;
  /** Defect of the other copy, if it is damaged (it will be overwritten by the next commit). */
  otherDefect: string | undefined;
}

/**
 * Picks the newest valid header copy from the bytes of the header region. Throws CORRUPT if
 * neither copy is valid, naming both defects.
 */
export function chooseHeader(region: Uint8Array, options: { verifyBoth?: boolean; decodeImage?: JournalImageDecoder | undefined } = {}): ChosenHeader {
  const decodeImage = options.decodeImage ?? decodeJournalImage;
  // Only the chosen copy's journal is decoded; the other copy is only verified.
  const decode = (copy: 0 | 1): Header => decodeSoundHeaderCopy(region, copy * headerCopySize, decodeImage);
  if (options.verifyBoth !== true && region.length >= headerRegionSize) {
    // Fast path of every lock cycle: verify only the copy that claims the higher generation; the
    // other is checked only if that one fails.
    const newer = newerCopy(region);
    if (headerCopyDefect(region, newer * headerCopySize, undefined) === undefined) return { header: decode(newer), copy: newer, otherDefect: undefined };
  }
  const firstDefect = headerCopyDefect(region, 0, undefined);
  const secondDefect = headerCopyDefect(region, headerCopySize, undefined);
  if (firstDefect === undefined && secondDefect === undefined) {
    const newer = newerCopy(region);
    return { header: decode(newer), copy: newer, otherDefect: undefined };
  }
  if (firstDefect === undefined) return { header: decode(0), copy: 0, otherDefect: secondDefect };
  if (secondDefect === undefined) return { header: decode(1), copy: 1, otherDefect: firstDefect };
  throw new NasqError('CORRUPT', `no valid header copy: ${firstDefect}; ${secondDefect}`, {
    details: { structure: 'header', defects: [firstDefect, secondDefect] },
  });
}

export function validateHeaderFields(header: Header): string | undefined {
  const { totalSlots } = header;
  if (totalSlots < minimumSlots || totalSlots > maximumSlots) return `header says ${totalSlots} slots, expected ${minimumSlots} to ${maximumSlots}`;
  if (header.emptyCount + header.pendingCount + header.unreadCount !== totalSlots) {
    return `header counts ${header.emptyCount} empty + ${header.pendingCount} pending + ${header.unreadCount} unread do not add up to ${totalSlots} slots`;
  }
  // Checked one by one (this runs every lock cycle): no list of pairs to allocate.
  const offsetDefect = (name: string, offset: number): string | undefined =>
    offset !== noOffset && !isSlotOffset(offset, totalSlots) ? `header ${name} ${offset} is not a slot offset` : undefined;
  const badOffset =
    offsetDefect('firstUnreadOffset', header.firstUnreadOffset) ??
    offsetDefect('lastUnreadOffset', header.lastUnreadOffset) ??
    offsetDefect('firstEmptyOffset', header.firstEmptyOffset) ??
    offsetDefect('firstPendingOffset', header.firstPendingOffset) ??
    offsetDefect('lastPendingOffset', header.lastPendingOffset);
  if (badOffset !== undefined) return badOffset;
  if ((header.firstUnreadOffset === noOffset) !== (header.unreadCount === 0)) return 'header unread list head disagrees with its count';
  if ((header.firstEmptyOffset === noOffset) !== (header.emptyCount === 0)) return 'header empty list head disagrees with its count';
  if ((header.firstPendingOffset === noOffset) !== (header.pendingCount === 0)) return 'header pending list head disagrees with its count';
  return undefined;
}

export function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** The message id of a slot: the sender's client id and its own sequence number. */
export function messageIdOf(slot: Pick<Slot, 'messageClient' | 'messageSequence'>): string {
  return `${slot.messageClient}-${slot.messageSequence}`;
}

const messageIdPattern = /^(\d{1,10})-(\d{1,10})$/;

export function parseMessageId(id: string): { messageClient: number; messageSequence: number } | undefined {
  const match = messageIdPattern.exec(id);
  if (match === null) return undefined;
  const messageClient = Number(match[1]);
  const messageSequence = Number(match[2]);
  if (messageClient > 0xffffffff || messageSequence > 0xffffffff) return undefined;
  return { messageClient, messageSequence };
}

/** Orders unread slots: earlier delivery time first, then earlier send. */
export function comesBefore(
  a: Pick<Slot, 'priority' | 'sendSequence'>,
  b: Pick<Slot, 'priority' | 'sendSequence'>,
): boolean {
  return a.priority < b.priority || (a.priority === b.priority && a.sendSequence < b.sendSequence);
}

/** Orders pending slots: earlier lease expiry first, then earlier lease. */
export function expiresBefore(a: Pick<Slot, 'leaseExpiry' | 'leaseToken'>, b: Pick<Slot, 'leaseExpiry' | 'leaseToken'>): boolean {
  return a.leaseExpiry < b.leaseExpiry || (a.leaseExpiry === b.leaseExpiry && a.leaseToken < b.leaseToken);
}

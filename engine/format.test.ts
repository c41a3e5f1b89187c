import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32.js';
import { decodeHeaderCopy, emptySlot, encodeHeader, encodeSlot, slotOffsetOf, slotSize, type Header } from './format.js';

const header = (journal: Header['journal']): Header => ({
  generation: 5,
  totalSlots: 4,
  emptyCount: 4,
  pendingCount: 0,
  unreadCount: 0,
  firstUnreadOffset: 0,
  lastUnreadOffset: 0,
  firstEmptyOffset: slotOffsetOf(0),
  firstPendingOffset: 0,
  lastPendingOffset: 0,
  firstUnreadPriority: 0,
  lastUnreadPriority: 0,
  lastUnreadSendSequence: 0,
  firstPendingExpiry: 0,
  nextSendSequence: 1,
  nextClientId: 1,
  nextLeaseToken: 1,
  reclaimEpoch: 0,
  maximumDeliveries: 10,
  deadCount: 0,
  journal,
});

describe('format', () => {
  it('computes CRC-32C (Castagnoli) of the standard check string', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('rejects a header copy whose journal image was swapped for another valid image (a torn write mixing generations)', () => {
    const bytes = encodeHeader(header([emptySlot(slotOffsetOf(0), slotOffsetOf(1), 5)]));
    expect(decodeHeaderCopy(bytes, 0).ok).toBe(true);
    const other = new Uint8Array(slotSize);
    encodeSlot(emptySlot(slotOffsetOf(0), slotOffsetOf(3), 2), other, 0);
    const forged = bytes.slice();
    forged.set(other, 128);
    expect(forged).not.toEqual(bytes);
    const result = decodeHeaderCopy(forged, 0);
    expect(result.ok).toBe(false);
  });
});

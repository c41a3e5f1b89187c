/**
 * KernelTransaction carries unchanged journal images into the next header copy as bytes. Format
 * 2's header checksum leaves out each image's own checksum, so an image read from the file may
 * carry a wrong own checksum (a write torn inside it) under a valid header: carried or moved to
 * the slot area, it must come out with its checksum recomputed, exactly as decoding and encoding
 * it again would give, never spread to the slot area where it would read as corrupt.
 */

import { describe, expect, it } from 'vitest';
import { chooseHeader, headerCopySize, headerFixedSize, headerRegionSize, journalCapacity, slotDefect, slotSize } from './format.js';
import { kernelViolations } from './kernel-image.js';
import { memoryQueue } from './test-support/memory-queue.js';

describe('KernelTransaction', () => {
  it('recomputes the own checksum of journal images it carries or moves to the slot area', async () => {
    const queue = await memoryQueue({ slots: 16 });
    const sender = await queue.open({ journalSoftLimit: 8 });
    for (let index = 0; index < 3; index += 1) await sender.send(`m${index}`);

    // Damage the own checksum of every journal image of the copy in force; the header checksum
    // (fields and image bodies) stays valid.
    const path = `/${queue.directory}/kernel`;
    const bytes = queue.kernelBytes();
    const chosen = chooseHeader(bytes.subarray(0, headerRegionSize));
    const journalLength = chosen.header.journal.length;
    expect(journalLength).toBeGreaterThan(1);
    for (let index = 0; index < journalLength; index += 1) {
      const checksumAt = chosen.copy * headerCopySize + headerFixedSize + index * slotSize + slotSize - 4;
      bytes[checksumAt] = bytes[checksumAt]! ^ 0xff;
    }
    queue.fs.volume.writeFileSync(path, bytes);
    expect(chooseHeader(queue.kernelBytes().subarray(0, headerRegionSize)).copy).toBe(chosen.copy);

    // One cycle that carries them (a new copy), then one that moves them all to the slot area.
    const carrier = await queue.open({ journalSoftLimit: journalCapacity });
    await carrier.send('carried');
    const evicter = await queue.open({ journalSoftLimit: 1 });
    await evicter.send('evicted');

    const after = queue.kernelBytes();
    for (const image of chosen.header.journal) {
      expect(slotDefect(after, image.offset, image.offset)).toBeUndefined();
    }
    expect(kernelViolations(after)).toEqual([]);
    const receiver = await queue.open();
    const bodies: string[] = [];
    for (let delivery = await receiver.receive(); delivery !== null; delivery = await receiver.receive()) {
      bodies.push(new TextDecoder().decode(delivery.body));
      await receiver.ack(delivery.receipt);
    }
    expect(bodies).toEqual(['m0', 'm1', 'm2', 'carried', 'evicted']);
  });
});

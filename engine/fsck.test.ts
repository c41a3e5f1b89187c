/**
 * Corruption of the kernel file, and fsck.
 *
 * The property test damages kernel files at random (flipped bytes, a file cut short, links
 * rewritten with valid checksums, header fields rewritten with valid checksums) and shows: every
 * damage that changes what the file says is detected (fsck reports it, the engine throws a typed
 * error), the engine never hands out a wrong message nor throws anything but a NasqError, and
 * `fsck --repair` keeps every message whose body is whole, never bringing back an acked one.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32.js';
import { NasqError } from './errors.js';
import { decodeHeaderCopy, headerCopySize, headerFixedSize, headerRegionSize, slotOffsetOf, slotSize } from './format.js';
import { fsck } from './fsck.js';
import { readKernelImage } from './kernel-image.js';
import type { QueueClient } from './queue.js';
import { memoryQueue, type MemoryQueue } from './test-support/memory-queue.js';

const slots = 10;

interface Scene {
  queue: MemoryQueue;
  bodies: Map<string, string>;
  acked: Set<string>;
  original: Uint8Array;
}

/** A queue with unread, pending, delayed and acked messages, some images still in the journal. */
async function scene(journalSoftLimit: number): Promise<Scene> {
  const queue = await memoryQueue({ slots });
  const client = await queue.open({ journalSoftLimit, leaseMs: 1_000 });
  const bodies = new Map<string, string>();
  const acked = new Set<string>();
  for (let index = 0; index < 5; index += 1) {
    const body = `body ${index}`;
    bodies.set(await client.send(body, index === 4 ? { deliverAt: queue.clock.now() + 60_000 } : {}), body);
  }
  // A batch: its bodies share one bundle file.
  const batch = ['batch a', 'batch b', 'batch c'];
  (await client.sendBatch(batch.map((body) => ({ body })))).forEach((id, index) => bodies.set(id, batch[index]!));
  const taken = await client.receiveBatch(3);
  await client.ack(taken[0]!.receipt);
  acked.add(taken[0]!.id);
  await client.release(taken[1]!.receipt);
  // One message of the bundle acked: its body is marked gone, the others stay live.
  const fromBundle = (await client.receiveBatch(8)).filter((delivery) => delivery.id.endsWith('-7'));
  await client.ack(fromBundle[0]!.receipt);
  acked.add(fromBundle[0]!.id);
  await client.close();
  return { queue, bodies, acked, original: queue.kernelBytes() };
}

type Damage =
  | { kind: 'flip'; flips: Array<{ position: number; mask: number }> }
  | { kind: 'truncate'; fraction: number }
  | { kind: 'link'; slot: number; field: 'next' | 'previous'; value: number }
  | { kind: 'header'; field: number; value: number };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    flips: fc.array(fc.record({ position: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), fraction: fc.double({ min: 0, max: 0.999, noNaN: true }) }),
  fc.record({
    kind: fc.constant('link' as const),
    slot: fc.integer({ min: 0, max: slots - 1 }),
    field: fc.constantFrom<'next' | 'previous'>('next', 'previous'),
    value: fc.oneof(
      fc.integer({ min: 0, max: slots - 1 }).map(slotOffsetOf),
      fc.constantFrom(0, 1, 5000, slotOffsetOf(slots), slotOffsetOf(2) + 7, 0xffffffff),
    ),
  }),
  fc.record({
    kind: fc.constant('header' as const),
    field: fc.constantFrom(16, 28, 32, 36, 40, 44, 48, 52, 56),
    value: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: slots }).map(slotOffsetOf), fc.constant(0xffffffff)),
  }),
);

function setU32(bytes: Uint8Array, at: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(at, value >>> 0, true);
}

/** Rewrites a slot field and its checksum, wherever the slot's current image lives. */
function rewriteSlot(bytes: Uint8Array, index: number, fieldAt: number, value: number): void {
  const offset = slotOffsetOf(index);
  const image = readKernelImage(bytes);
  const journalIndex = image.header.journal.findIndex((slot) => slot.offset === offset);
  if (journalIndex === -1) {
    setU32(bytes, offset + fieldAt, value);
    setU32(bytes, offset + slotSize - 4, crc32c(bytes, offset, offset + slotSize - 4));
    return;
  }
  const copyAt = image.copy * headerCopySize;
  const at = copyAt + headerFixedSize + journalIndex * slotSize;
  setU32(bytes, at + fieldAt, value);
  setU32(bytes, at + slotSize - 4, crc32c(bytes, at, at + slotSize - 4));
  resealHeader(bytes, copyAt);
}

function resealHeader(bytes: Uint8Array, copyAt: number): void {
  const journalCount = new DataView(bytes.buffer, bytes.byteOffset).getUint32(copyAt + 20, true);
  const fixed = crc32c(bytes, copyAt, copyAt + 124);
  setU32(bytes, copyAt + 124, crc32c(bytes, copyAt + headerFixedSize, copyAt + headerFixedSize + journalCount * slotSize, fixed));
}

function applyDamage(original: Uint8Array, change: Damage): Uint8Array {
  const bytes = new Uint8Array(original);
  switch (change.kind) {
    case 'flip':
      for (const { position, mask } of change.flips) bytes[position % bytes.length]! ^= mask;
      return bytes;
    case 'truncate':
      return bytes.slice(0, Math.floor(bytes.length * change.fraction));
    case 'link':
      rewriteSlot(bytes, change.slot, change.field === 'next' ? 8 : 12, change.value);
      return bytes;
    case 'header': {
      const copyAt = readKernelImage(bytes).copy * headerCopySize;
      setU32(bytes, copyAt + change.field, change.value);
      resealHeader(bytes, copyAt);
      return bytes;
    }
  }
}

/** What the file says: both header copies (or their defects) and every logical slot. */
function meaning(bytes: Uint8Array): string {
  let slotsMeaning: unknown;
  try {
    slotsMeaning = readKernelImage(bytes).slots;
  } catch (error) {
    slotsMeaning = (error as Error).message;
  }
  return JSON.stringify({
    copies: [decodeHeaderCopy(bytes, 0), decodeHeaderCopy(bytes, headerCopySize)],
    slots: slotsMeaning,
    length: bytes.length,
  });
}

async function drain(client: QueueClient, queue: MemoryQueue): Promise<string[]> {
  await queue.clock.advance(120_000);
  const seen: string[] = [];
  for (let round = 0; round < 50; round += 1) {
    const deliveries = await client.receiveBatch(4);
    if (deliveries.length === 0) break;
    for (const delivery of deliveries) {
      seen.push(delivery.id);
      await client.ack(delivery.receipt);
    }
  }
  return seen;
}

describe('corrupt kernel files', () => {
  it('detects every damage, never hands out a wrong message, and repair keeps every whole message', async () => {
    let detected = 0;
    let harmless = 0;
    await fc.assert(
      fc.asyncProperty(damage, fc.constantFrom(1, 8), async (change, journalSoftLimit) => {
        const { queue, bodies, acked, original } = await scene(journalSoftLimit);
        const damaged = applyDamage(original, change);
        const changedMeaning = meaning(damaged) !== meaning(original);
        queue.fs.volume.writeFileSync('/q/kernel', damaged);

        // 1. fsck sees it.
        const report = await fsck(queue.ports, 'q', { orphanGraceMs: 0 });
        if (changedMeaning) {
          expect(report.clean, `undetected: ${JSON.stringify(change)}`).toBe(false);
          detected += 1;
        } else {
          harmless += 1;
        }

        // 2. The engine either works with right messages, or throws a typed error.
        const client = await queue.open({ leaseMs: 1_000 }).catch((error: unknown) => {
          if (!(error instanceof NasqError)) throw error;
          return undefined;
        });
        if (client !== undefined) {
          for (let round = 0; round < 12; round += 1) {
            let delivery;
            try {
              delivery = await client.receive();
            } catch (error) {
              if (!(error instanceof NasqError)) throw error;
              break;
            }
            if (delivery === null) break;
            expect(new TextDecoder().decode(delivery.body)).toBe(bodies.get(delivery.id));
            expect(acked.has(delivery.id)).toBe(false);
          }
          await client.close();
        }

        // 3. Repair (from the damaged file again) keeps every message whose body is whole.
        queue.fs.volume.writeFileSync('/q/kernel', damaged);
        const repair = await fsck(queue.ports, 'q', { repair: true, orphanGraceMs: 0 });
        const after = await fsck(queue.ports, 'q', { orphanGraceMs: 0 });
        expect(after.violations, `after repair of ${JSON.stringify(change)}: ${JSON.stringify(repair.repaired)}`).toEqual([]);
        const drainer = await queue.open({ leaseMs: 1_000 });
        const delivered = await drain(drainer, queue);
        const expected = [...bodies.keys()].filter((id) => !acked.has(id));
        expect(delivered.sort()).toEqual(expected.sort());
      }),
      { numRuns: 1_000, examples: [[{ kind: "header", field: 16, value: 4294967295 }, 1]] },
    );
    // The cases must mostly be real damage, or the property proves little.
    expect(detected).toBeGreaterThan(harmless);
  });
});

describe('fsck', () => {
  it('reports a clean queue as clean, and a young orphan body as harmless', async () => {
    const { queue } = await scene(8);
    expect(await fsck(queue.ports, 'q')).toMatchObject({ clean: true, violations: [], messages: 6 });
    await queue.fs.writeFile('q/msg/99-1', new TextEncoder().encode('half a send'));
    const report = await fsck(queue.ports, 'q', { orphanGraceMs: 60_000 });
    expect(report.clean).toBe(true);
    expect(report.orphans.map((orphan) => orphan.id)).toEqual(['99-1']);
  });

  it('repair moves old orphan bodies of a sound kernel to the dead letters, body kept, and says so', async () => {
    const { queue } = await scene(8);
    await queue.fs.writeFile('q/msg/99-1', new TextEncoder().encode('interrupted send'));
    // Every whole-file write and delete, with whether it was flushed.
    const steps: string[] = [];
    const fs = new Proxy(queue.ports.fs, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (property === 'writeFile') steps.push(`writeFile ${String(args[0])}${(args[2] as { sync?: boolean } | undefined)?.sync === true ? ' sync' : ''}`);
          if (property === 'unlink') steps.push(`unlink ${String(args[0])}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const report = await fsck({ fs, clock: queue.ports.clock }, 'q', { repair: true, orphanGraceMs: 0 });
    // The copy is on stable storage before the orphan goes: a power cut cannot keep only the delete.
    expect(steps).toEqual(['writeFile q/dead/99-1 sync', 'writeFile q/dead/99-1.json sync', 'unlink q/msg/99-1']);
    expect(report.repaired).toMatchObject({ rebuilt: false, deadLetteredOrphans: ['99-1'] });
    expect(await queue.fs.readdir('q/msg')).not.toContain('99-1');
    expect(new TextDecoder().decode(await queue.fs.readFile('q/dead/99-1'))).toBe('interrupted send');
    expect(JSON.parse(new TextDecoder().decode(await queue.fs.readFile('q/dead/99-1.json')))).toMatchObject({ id: '99-1', reason: 'orphan' });
    expect(await fsck(queue.ports, 'q', { orphanGraceMs: 0 })).toMatchObject({ clean: true, orphans: [] });
  });

  it('keeps a sent message whose commit a damaged newest header copy rolled back: its body goes to the dead letters, not away', async () => {
    const queue = await memoryQueue({ slots: 4 });
    const client = await queue.open();
    const id = await client.send('sent, then rolled back');
    // The newest header copy is damaged after the send returned; the copy before it (without the
    // message) is taken, and the next cycle overwrites the evidence.
    const bytes = queue.kernelBytes();
    const newest = readKernelImage(bytes).copy * headerCopySize;
    bytes.fill(0xee, newest + 40, newest + 140);
    queue.fs.volume.writeFileSync('/q/kernel', bytes);
    expect(await client.receive()).toBeNull();
    const report = await fsck(queue.ports, 'q', { repair: true, orphanGraceMs: 0 });
    expect(report.orphans.map((orphan) => orphan.id)).toEqual([id]);
    expect(report.repaired.deadLetteredOrphans).toEqual([id]);
    expect(new TextDecoder().decode(await queue.fs.readFile(`q/dead/${id}`))).toBe('sent, then rolled back');
  });

  it('rebuilds a kernel whose both header copies are gone from the slots and the bodies', async () => {
    const { queue, bodies, acked, original } = await scene(1);
    const damaged = new Uint8Array(original);
    damaged.fill(0, 0, headerRegionSize);
    queue.fs.volume.writeFileSync('/q/kernel', damaged);
    const report = await fsck(queue.ports, 'q', { repair: true, orphanGraceMs: 0 });
    expect(report.repaired.rebuilt).toBe(true);
    const drainer = await queue.open();
    const delivered = await drain(drainer, queue);
    expect(delivered.sort()).toEqual([...bodies.keys()].filter((id) => !acked.has(id)).sort());
  });

  it('drops the slot of an ack that deleted the body and died, and brings back no acked message', async () => {
    const queue = await memoryQueue({ slots: 4 });
    const client = await queue.open({ leaseMs: 1_000 });
    const id = await client.send('acked by a client that then died');
    await client.receive();
    await queue.fs.unlink(`q/msg/${id}`);
    const report = await fsck(queue.ports, 'q', { orphanGraceMs: 0 });
    // Not damage: an interrupted ack, which the engine finishes when the lease runs out.
    expect(report).toMatchObject({ clean: true, badBodies: [], interruptedAcks: [id] });
    // The engine itself finishes the ack when the lease runs out.
    await queue.clock.advance(1_000);
    expect(await client.receive()).toBeNull();
    expect(await fsck(queue.ports, 'q', { orphanGraceMs: 0 })).toMatchObject({ clean: true, messages: 0 });
  });

  it('repairs a torn commit of the header copy not in force by committing again, keeping every lease', async () => {
    const queue = await memoryQueue({ slots: 4 });
    const client = await queue.open({ leaseMs: 60_000 });
    await client.send('held');
    const held = await client.receive();
    const bytes = queue.kernelBytes();
    const other = readKernelImage(bytes).copy === 0 ? headerCopySize : 0;
    bytes.fill(0xee, other + 40, other + 140);
    queue.fs.volume.writeFileSync('/q/kernel', bytes);
    const report = await fsck(queue.ports, 'q', { repair: true });
    expect(report.violations).toEqual([expect.stringMatching(/^header copy not in force: /)]);
    expect(report.repaired).toMatchObject({ recommitted: true, rebuilt: false });
    expect((await fsck(queue.ports, 'q')).clean).toBe(true);
    await client.ack(held!.receipt); // the lease survived the repair
  });

  it('refuses a directory that is not a queue', async () => {
    const queue = await memoryQueue();
    await expect(fsck(queue.ports, 'elsewhere')).rejects.toMatchObject({ code: 'NOT_A_QUEUE' });
    await expect(fsck(queue.ports, 'q', { orphanGraceMs: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

/**
 * Bundles: the bodies of one batch in one file. Written once, read once per receive, deleted once
 * when the batch is acked together, marked gone body by body otherwise; and the rule that keeps
 * repair safe (a live body means a message not yet acked) holds for them as for single files.
 */

import { describe, expect, it } from 'vitest';
import { countingFileSystem } from '../adapters/counting-file-system.js';
import { bundleBody, decodeBundle, encodeBundle, markGone, marksOffset } from './bodies.js';
import { crc32c } from './crc32.js';
import { NasqError } from './errors.js';
import { headerRegionSize } from './format.js';
import { fsck } from './fsck.js';
import type { FileSystem } from './ports.js';
import { QueueClient } from './queue.js';
import { memoryQueue } from './test-support/memory-queue.js';

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const bodiesOf = (...texts: string[]) => texts.map((body) => ({ body }));

describe('bundle format', () => {
  it('round-trips bodies, and names a damaged table, mark or body', () => {
    const parts = ['one', 'two!', ''].map((body) => new TextEncoder().encode(body));
    const bytes = encodeBundle(7, parts.map((body) => ({ body, checksum: crc32c(body) })));
    const bundle = decodeBundle(bytes);
    if (typeof bundle === 'string') throw new Error(bundle);
    expect(bundle).toMatchObject({ count: 3, firstSequence: 7 });
    expect(parts.map((_, index) => text(bundleBody(bytes, bundle, index) as Uint8Array))).toEqual(['one', 'two!', '']);

    const table = bytes.slice();
    table[20] = table[20]! ^ 1;
    expect(decodeBundle(table)).toMatch(/table checksum/);
    const mark = bytes.slice();
    mark[marksOffset(3) + 1] = 7;
    expect(decodeBundle(mark)).toMatch(/mark 1 is 7/);
    const gone = bytes.slice();
    gone[marksOffset(3)] = markGone;
    expect(bundleBody(gone, decodeBundle(gone) as never, 0)).toBe('gone');
    const body = bytes.slice();
    body[body.length - 2] = body[body.length - 2]! ^ 1;
    expect(bundleBody(body, decodeBundle(body) as never, 1)).toBe('damaged');
    expect(decodeBundle(bytes.subarray(0, 10))).toMatch(/cut short/);
  });
});

describe('bundles in the queue', () => {
  it('writes a batch as one file, reads it once, and deletes it once when the batch is acked together', async () => {
    const queue = await memoryQueue({ slots: 64 });
    const counting = countingFileSystem(queue.fs, { record: true });
    const client = await QueueClient.open({ fs: counting, clock: queue.clock }, 'q');
    counting.reset();
    const ids = await client.sendBatch(bodiesOf('a', 'b', 'c', 'd'));
    expect(counting.counts.get('writeFile')).toBe(1);
    expect(await queue.fs.readdir('q/msg')).toEqual([`${ids[0]}.bundle`]);
    counting.reset();
    const deliveries = await client.receiveBatch(4);
    expect(deliveries.map((delivery) => text(delivery.body))).toEqual(['a', 'b', 'c', 'd']);
    expect(counting.counts.get('readFile')).toBe(1);
    counting.reset();
    expect(await client.ackBatch(deliveries.map((delivery) => delivery.receipt))).toEqual(['acked', 'acked', 'acked', 'acked']);
    expect(counting.counts.get('unlink')).toBe(1);
    expect(counting.calls.filter((call) => call.method === 'open' || call.method === 'write' && call.path.endsWith('.bundle'))).toEqual([]);
    expect(await queue.fs.readdir('q/msg')).toEqual([]);
    expect((await fsck(queue.ports, 'q')).clean).toBe(true);
  });

  it('marks bodies gone one ack at a time, and deletes the bundle with its last live body', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    const [first] = await client.sendBatch(bodiesOf('x', 'y', 'z'));
    const deliveries = await client.receiveBatch(3);
    await client.ack(deliveries[1]!.receipt);
    expect(await queue.fs.readdir('q/msg')).toEqual([`${first}.bundle`]);
    expect(await fsck(queue.ports, 'q')).toMatchObject({ clean: true, messages: 2, orphans: [] });
    await client.ack(deliveries[0]!.receipt);
    await client.ack(deliveries[2]!.receipt);
    expect(await queue.fs.readdir('q/msg')).toEqual([]);
  });

  it('marks the bodies of a batch that did not fit gone, so no repair ever sends them', async () => {
    const queue = await memoryQueue({ slots: 2 });
    const client = await queue.open();
    const error = await client.sendBatch(bodiesOf('fits', 'fits too', 'no room')).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'QUEUE_FULL', details: { sent: [expect.any(String), expect.any(String)] } });
    const report = await fsck(queue.ports, 'q', { orphanGraceMs: 0 });
    expect(report).toMatchObject({ clean: true, messages: 2, orphans: [] });
    // Even a full rebuild from the bodies (both header copies gone) brings back only the two.
    const bytes = queue.kernelBytes();
    bytes.fill(0, 0, headerRegionSize);
    queue.fs.volume.writeFileSync('/q/kernel', bytes);
    await fsck(queue.ports, 'q', { repair: true, orphanGraceMs: 0 });
    const receiver = await queue.open();
    expect((await receiver.receiveBatch(8)).map((delivery) => text(delivery.body)).sort()).toEqual(['fits', 'fits too']);
  });

  it('finishes an ack that marked its bodies gone and died before its commit, when the lease runs out', async () => {
    const queue = await memoryQueue();
    const sender = await queue.open({ leaseMs: 1_000 });
    await sender.sendBatch(bodiesOf('p', 'q', 'r'));
    // The acker's share goes away right at its commit: the bundle is already deleted.
    let armed = false;
    const dying: FileSystem = new Proxy(queue.fs, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as (...args: unknown[]) => Promise<unknown>;
        if (property !== 'write') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          if (armed && (args[1] as number) < headerRegionSize) throw new NasqError('SHARE_UNAVAILABLE', 'the share went away', { injected: true });
          return value.apply(target, args);
        };
      },
    });
    const acker = await QueueClient.open({ fs: dying, clock: queue.clock }, 'q', { leaseMs: 1_000 });
    const deliveries = await acker.receiveBatch(3);
    armed = true;
    await expect(acker.ackBatch(deliveries.map((delivery) => delivery.receipt))).rejects.toMatchObject({ code: 'SHARE_UNAVAILABLE' });
    // On a real share the lost session took the acker's lock with it; here closing it does.
    await acker.close();
    expect(await queue.fs.readdir('q/msg')).toEqual([]);
    expect((await fsck(queue.ports, 'q')).interruptedAcks).toHaveLength(3);
    await queue.clock.advance(1_000);
    expect(await sender.receive()).toBeNull(); // the reclaim found the bodies gone: the ack took effect
    expect(await sender.stat()).toMatchObject({ pendingCount: 0, unreadCount: 0 });
  });

  it('dead-letters a bundled message with its own body, leaving the others in the bundle', async () => {
    const queue = await memoryQueue({ maximumDeliveries: 1 });
    const client = await queue.open({ leaseMs: 100 });
    const ids = await client.sendBatch(bodiesOf('poison', 'fine'));
    const [poison] = await client.receiveBatch(1);
    expect(poison!.id).toBe(ids[0]);
    await queue.clock.advance(100);
    const [fine] = await client.receiveBatch(4);
    expect(text(fine!.body)).toBe('fine');
    expect(await queue.fs.readdir('q/dead')).toEqual([ids[0], `${ids[0]}.json`]);
    expect(text(await queue.fs.readFile(`q/dead/${ids[0]}`))).toBe('poison');
    await client.ack(fine!.receipt);
    expect(await queue.fs.readdir('q/msg')).toEqual([]);
  });

  it('moves the bodies of a batch send that died before its commit (orphans) to the dead letters, after the grace period', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    const [first] = await client.sendBatch(bodiesOf('kept'));
    await queue.fs.writeFile('q/msg/77-1.bundle', encodeBundle(1, ['lost', 'too'].map((body) => new TextEncoder().encode(body)).map((body) => ({ body, checksum: crc32c(body) }))));
    // And one that died while writing it: a file cut short, not damage but an orphan.
    await queue.fs.writeFile('q/msg/78-1.bundle', new Uint8Array(0));
    expect((await fsck(queue.ports, 'q', { orphanGraceMs: 60_000 })).clean).toBe(true);
    const report = await fsck(queue.ports, 'q', { repair: true, orphanGraceMs: 0 });
    expect(report.violations).toEqual([]);
    expect(report.orphans.map((orphan) => orphan.id)).toEqual(['77-1', '77-2', '78-1.bundle']);
    expect(await queue.fs.readdir('q/msg')).toEqual([first]);
    // Each live body of the bundle is kept as a dead letter; the empty file held none.
    expect(report.repaired.deadLetteredOrphans).toEqual(['77-1', '77-2']);
    expect(new TextDecoder().decode(await queue.fs.readFile('q/dead/77-2'))).toBe('too');
  });
});

/**
 * The queue engine, claim by claim (docs/claims.md points here), plus leases, dead letters, a
 * full queue and corrupt kernels.
 */

import { describe, expect, it } from 'vitest';
import { countingFileSystem } from '../adapters/counting-file-system.js';
import { settle } from '../adapters/manual-clock.js';
import { NasqError } from './errors.js';
import { SlotState, headerCopySize, slotOffsetOf, slotsOffset } from './format.js';
import { kernelViolations, readKernelImage } from './kernel-image.js';
import type { FileSystem } from './ports.js';
import { QueueClient, bellTimeMs, createQueue, formatReceipt, parseReceipt, queueLayout } from './queue.js';
import { memoryQueue, poisonedQueue } from './test-support/memory-queue.js';

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('claim 1 / 12 / 16: receive = lock header, take the first unread, unlock, then process', () => {
  it('locks the header, reads it, takes the head, writes, unlocks, and only then reads the body', async () => {
    const queue = await memoryQueue();
    const sender = await queue.open();
    await sender.send('first');
    await sender.send('second');
    const recorder = countingFileSystem(queue.fs, { record: true });
    const receiver = await queue.open({}, recorder);
    recorder.reset();
    const delivery = await receiver.receive();
    expect(text(delivery!.body)).toBe('first');
    const methods = recorder.calls.map((call) => call.method);
    expect(methods[0]).toBe('lock');
    expect(methods[1]).toBe('read');
    const unlockAt = methods.indexOf('unlock');
    expect(methods.lastIndexOf('write')).toBeLessThan(unlockAt);
    expect(methods.indexOf('readFile')).toBeGreaterThan(unlockAt);
    expect(recorder.calls[methods.indexOf('readFile')]!.path).toBe(`q/${queueLayout.messages}/${delivery!.id}`);
  });

  it('holds the header lock so that no other open can read or lock the header meanwhile', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    await client.send('x');
    let sawConflict = false;
    const spy: FileSystem = new Proxy(queue.fs, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as (...args: unknown[]) => Promise<unknown>;
        if (property !== 'write') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          // While the receiver holds the header lock, a second open cannot read or lock it.
          const other = await queue.fs.open('q/kernel');
          await expect(queue.fs.read(other, 0, 16)).rejects.toMatchObject({ code: 'LOCK_CONFLICT' });
          await expect(queue.fs.lock(other, { offset: 0, length: 1 })).rejects.toMatchObject({ code: 'LOCK_NOT_GRANTED' });
          await queue.fs.close(other);
          sawConflict = true;
          return value.apply(target, args);
        };
      },
    });
    const receiver = await QueueClient.open({ fs: spy, clock: queue.clock }, 'q');
    await receiver.receive();
    expect(sawConflict).toBe(true);
  });
});

describe('claim 2: a time queue whose priority is the delivery time', () => {
  it('delivers in delivery-time order, then send order, and never before the delivery time', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    const now = queue.clock.now();
    await client.send('late', { deliverAt: now + 5_000 });
    await client.send('early', { deliverAt: now + 1_000 });
    await client.send('now-1');
    await client.send('now-2');
    const order: string[] = [];
    for (const delivery of await client.receiveBatch(10)) order.push(text(delivery.body));
    expect(order).toEqual(['now-1', 'now-2']);
    await queue.clock.advance(999);
    expect(await client.receive()).toBeNull();
    await queue.clock.advance(1);
    expect(text((await client.receive())!.body)).toBe('early');
    await queue.clock.advance(4_000);
    const late = await client.receive();
    expect(text(late!.body)).toBe('late');
    expect(late!.deliverAt).toBe(now + 5_000);
  });

  it('places a message due before the tail with a few wide reads, not a read per message it walks past', async () => {
    const queue = await memoryQueue({ slots: 128 });
    const counting = countingFileSystem(queue.fs);
    // Few images per commit: the slots go to the slot area, where the walk must read them.
    const client = await queue.open({ journalSoftLimit: 2 }, counting);
    const now = queue.clock.now();
    for (let index = 0; index < 60; index += 1) await client.send(`m${index}`, { deliverAt: now + 1_000 + 2 * index });
    counting.reset();
    // Due between m49 and m50: the send walks the unread list from its head past 50 messages.
    await client.send('late-comer', { deliverAt: now + 1_099 });
    expect(counting.counts.get('read') ?? 0).toBeLessThanOrEqual(4);
    await queue.clock.advance(2_000);
    const order = (await client.receiveBatch(100)).map((delivery) => text(delivery.body));
    expect(order).toHaveLength(61);
    expect(order.slice(48, 52)).toEqual(['m48', 'm49', 'late-comer', 'm50']);
  });

  it('wakes a waiting receiver at the head message delivery time', async () => {
    const queue = await memoryQueue();
    const client = await queue.open({ pollIntervalMs: 60_000 });
    const start = queue.clock.now();
    await client.send('timed', { deliverAt: start + 2_500 });
    let receivedAt = -1;
    const waiting = client.receive({ waitMs: 10_000 }).then((delivery) => {
      receivedAt = queue.clock.now();
      return delivery;
    });
    await settle(500); // let the receiver look once and go to sleep
    await queue.clock.advance(10_000);
    expect(text((await waiting)!.body)).toBe('timed');
    expect(receivedAt).toBe(start + 2_500);
  });
});

describe('claims 3 and 4: a message directory and a notification file', () => {
  it('keeps bodies as files in the message directory until acked', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    const id = await client.send('body text');
    expect(await queue.fs.readdir(`q/${queueLayout.messages}`)).toEqual([id]);
    expect(text(await queue.fs.readFile(`q/${queueLayout.messages}/${id}`))).toBe('body text');
    const delivery = await client.receive();
    await client.ack(delivery!.receipt);
    expect(await queue.fs.readdir(`q/${queueLayout.messages}`)).toEqual([]);
    expect((await queue.fs.stat(`q/${queueLayout.bell}`)).isDirectory).toBe(false);
  });
});

describe('claims 5 / 13 / 17: the header counts and offsets', () => {
  it('reports empty, pending and total counts, the first unread and first empty offsets and the head priority', async () => {
    const queue = await memoryQueue({ slots: 4 });
    const client = await queue.open();
    const now = queue.clock.now();
    expect(await client.stat()).toMatchObject({
      emptyCount: 4,
      pendingCount: 0,
      totalSlots: 4,
      firstUnreadOffset: 0,
      firstEmptyOffset: slotsOffset,
      firstUnreadPriority: 0,
      unreadCount: 0,
    });
    await client.send('a', { deliverAt: now + 10 });
    await client.send('b', { deliverAt: now });
    const stat = await client.stat();
    expect(stat).toMatchObject({ emptyCount: 2, pendingCount: 0, unreadCount: 2, firstUnreadPriority: now, firstEmptyOffset: slotOffsetOf(2) });
    expect(stat.firstUnreadOffset).toBe(slotOffsetOf(1));
    await client.receive();
    expect(await client.stat()).toMatchObject({ emptyCount: 2, pendingCount: 1, unreadCount: 1, firstUnreadPriority: now + 10, firstUnreadOffset: slotOffsetOf(0) });
  });
});

describe('claim 6: three virtual groups of slots', () => {
  it('moves a slot empty -> pending (being filled) -> unread -> pending (being processed) -> empty', async () => {
    const queue = await memoryQueue({ slots: 3 });
    const client = await queue.open();
    const groups = (): Record<string, number[]> => {
      const image = readKernelImage(queue.kernelBytes());
      const result: Record<string, number[]> = { empty: [], unread: [], pending: [] };
      for (const slot of image.slots) {
        const name = slot!.state === SlotState.empty ? 'empty' : slot!.state === SlotState.unread ? 'unread' : 'pending';
        result[name]!.push(slot!.offset);
      }
      return result;
    };
    const reservation = await client.reserve();
    expect(groups().pending).toEqual([reservation.offset]);
    await client.fill(reservation, 'big body');
    expect(groups().unread).toEqual([reservation.offset]);
    const delivery = await client.receive();
    expect(groups().pending).toEqual([reservation.offset]);
    await client.ack(delivery!.receipt);
    expect(groups()).toEqual({ empty: [slotOffsetOf(0), slotOffsetOf(1), slotOffsetOf(2)], unread: [], pending: [] });
    expect(kernelViolations(queue.kernelBytes())).toEqual([]);
  });

  it('frees a reservation whose sender never filled it, once its lease runs out', async () => {
    const queue = await memoryQueue({ slots: 1 });
    const sender = await queue.open();
    const reservation = await sender.reserve({ leaseMs: 100 });
    await expect(sender.send('no room')).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await queue.clock.advance(100);
    expect(await (await queue.open()).receive()).toBeNull();
    await expect(sender.fill(reservation, 'too late')).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(await queue.fs.readdir('q/msg')).toEqual([]);
    await sender.send('now there is room');
  });
});

describe('claims 7 and 11: a send posts a notification that wakes a waiting receiver', () => {
  it('changes the notification file when a send makes a new head', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    await client.send('one');
    expect((await queue.fs.stat('q/notify/bell')).mtimeMs).toBe(bellTimeMs(1));
    await client.send('two'); // behind the head: nobody waiting needs to wake
    expect((await queue.fs.stat('q/notify/bell')).mtimeMs).toBe(bellTimeMs(1));
    await client.send('urgent', { deliverAt: queue.clock.now() - 1_000 });
    expect((await queue.fs.stat('q/notify/bell')).mtimeMs).toBe(bellTimeMs(3));
  });

  it('a receiver blocked on an empty queue gets a message within one notification, with no time passing', async () => {
    const queue = await memoryQueue();
    const receiver = await queue.open({ pollIntervalMs: 60_000 });
    const sender = await queue.open();
    let result: string | undefined;
    const waiting = receiver.receive({ waitMs: 30_000 }).then((delivery) => {
      result = delivery === null ? 'nothing' : text(delivery.body);
    });
    await settle(200);
    expect(result).toBeUndefined();
    expect(queue.clock.waiting).toBe(1);
    const sentAt = queue.clock.now();
    await sender.send('wake up');
    await settle(200);
    await waiting;
    expect(result).toBe('wake up');
    expect(queue.clock.now()).toBe(sentAt);
  });

  it('with the notification lost, a waiting receiver still gets the message within the polling bound', async () => {
    const queue = await memoryQueue();
    const pollIntervalMs = 750;
    const receiver = await queue.open({ pollIntervalMs });
    // The sender's share drops every change of the notification file (a lost notification).
    const deaf: FileSystem = new Proxy(queue.fs, {
      get(target, property, receiver_) {
        const value = Reflect.get(target, property, receiver_) as (...args: unknown[]) => Promise<unknown>;
        if (property === 'setTimes') return async () => undefined;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const sender = await QueueClient.open({ fs: deaf, clock: queue.clock }, 'q');
    let receivedAt = -1;
    const waiting = receiver.receive({ waitMs: 30_000 }).then((delivery) => {
      receivedAt = queue.clock.now();
      return delivery;
    });
    await settle(200);
    await queue.clock.advance(300);
    const sentAt = queue.clock.now();
    await sender.send('quietly');
    for (let step = 0; step < 100 && receivedAt < 0; step += 1) await queue.clock.advance(10);
    expect(text((await waiting)!.body)).toBe('quietly');
    expect(receivedAt - sentAt).toBeGreaterThan(0);
    expect(receivedAt - sentAt).toBeLessThanOrEqual(pollIntervalMs);
  });
});

describe('leases, fencing, redelivery and dead letters', () => {
  it('redelivers a message whose lease ran out, with a higher delivery count, and fences out the old holder', async () => {
    const queue = await memoryQueue();
    const first = await queue.open({ leaseMs: 1_000 });
    const second = await queue.open({ leaseMs: 1_000 });
    await first.send('work');
    const taken = await first.receive();
    expect(taken!.deliveryCount).toBe(1);
    expect(await second.receive()).toBeNull();
    await queue.clock.advance(1_000);
    const retaken = await second.receive();
    expect(retaken!.id).toBe(taken!.id);
    expect(retaken!.deliveryCount).toBe(2);
    await expect(first.ack(taken!.receipt)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await second.ack(retaken!.receipt);
    await expect(second.ack(retaken!.receipt)).rejects.toMatchObject({ code: 'LEASE_LOST' });
  });

  it('lets a holder whose lease expired still ack while nobody took the message over', async () => {
    const queue = await memoryQueue();
    const client = await queue.open({ leaseMs: 100 });
    await client.send('slow');
    const delivery = await client.receive();
    await queue.clock.advance(5_000);
    await client.ack(delivery!.receipt);
    expect(await client.stat()).toMatchObject({ pendingCount: 0, unreadCount: 0 });
  });

  it('moves a message to the dead-letter directory after the maximum number of deliveries', async () => {
    const { queue, client, id } = await poisonedQueue();
    expect(await queue.fs.readdir('q/dead')).toEqual([id, `${id}.json`]);
    const record = JSON.parse(text(await queue.fs.readFile(`q/dead/${id}.json`))) as Record<string, unknown>;
    expect(record).toMatchObject({ id, reason: 'too-many-deliveries', deliveryCount: 2 });
    expect(await client.stat()).toMatchObject({ emptyCount: 16, deadCount: 1 });
  });

  it('releases a message for redelivery, at once or after a delay', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    await client.send('again');
    const first = await client.receive();
    await client.release(first!.receipt);
    const second = await client.receive();
    expect(second!.deliveryCount).toBe(2);
    await client.release(second!.receipt, { delayMs: 500 });
    expect(await client.receive()).toBeNull();
    await queue.clock.advance(500);
    expect((await client.receive())!.deliveryCount).toBe(3);
  });

  it('acks by receipt text and by id (the CLI forms)', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    await client.sendBatch([{ body: 'a' }, { body: 'b' }]);
    const [a, b] = await client.receiveBatch(2);
    const receipt = parseReceipt(formatReceipt(a!.receipt));
    expect(receipt).toMatchObject({ id: a!.id, offset: a!.receipt.offset, leaseToken: a!.receipt.leaseToken });
    await client.ack(receipt!);
    await client.ackById(b!.id);
    await expect(client.ackById(b!.id)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await expect(client.ackById('nonsense')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('a full queue and bad input', () => {
  it('refuses a send into a full queue with QUEUE_FULL and keeps what it has', async () => {
    const queue = await memoryQueue({ slots: 2 });
    const client = await queue.open();
    await client.send('one');
    await client.send('two');
    const error = await client.send('three').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NasqError);
    expect(error).toMatchObject({ code: 'QUEUE_FULL' });
    expect(await queue.fs.readdir('q/msg')).toHaveLength(2);
    const batch = await client.sendBatch([{ body: 'x' }]).catch((caught: unknown) => caught);
    expect(batch).toMatchObject({ code: 'QUEUE_FULL', details: { sent: [] } });
  });

  it('rejects bad options and arguments with what was expected and what was given', async () => {
    const queue = await memoryQueue();
    await expect(createQueue(queue.ports, 'other', { slots: 0 })).rejects.toThrow(/slots: expected an integer from 1 to .*got 0/);
    await expect(createQueue(queue.ports, 'q', { slots: 4 })).rejects.toMatchObject({ code: 'EXISTS' });
    await expect(queue.open({ leaseMs: -5 })).rejects.toThrow(/leaseMs: expected a number in \(0, .*got -5/);
    const client = await queue.open();
    await expect(client.send('x', { deliverAt: Number.NaN })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(client.receiveBatch(0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(QueueClient.open(queue.ports, 'nowhere')).rejects.toMatchObject({ code: 'NOT_A_QUEUE' });
  });

  it('refuses a kernel whose header copies are both damaged, naming both defects, and loses no body', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    const id = await client.send('keep me');
    const bytes = queue.kernelBytes();
    bytes[10] = (bytes[10] ?? 0) ^ 0xff;
    bytes[headerCopySize + 10] = (bytes[headerCopySize + 10] ?? 0) ^ 0xff;
    queue.fs.volume.writeFileSync('/q/kernel', bytes);
    const error = await client.receive().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'CORRUPT' });
    expect(String((error as Error).message)).toMatch(/header copy at 0 .*header copy at 8192/);
    expect(await queue.fs.readdir('q/msg')).toEqual([id]);
  });

  it('survives a damaged newest header copy by using the other one', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    await client.send('a');
    await client.send('b');
    const image = readKernelImage(queue.kernelBytes());
    const bytes = queue.kernelBytes();
    const at = image.copy * headerCopySize + 20;
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    queue.fs.volume.writeFileSync('/q/kernel', bytes);
    // The older copy is one commit behind: message "b" was its last change and is lost with it,
    // exactly what a torn header write would do; "a" remains.
    const delivery = await client.receive();
    expect(text(delivery!.body)).toBe('a');
  });

  it('never hands out a message whose body does not match its slot: it goes to the dead letters', async () => {
    const queue = await memoryQueue();
    const client = await queue.open();
    const id = await client.send('original');
    queue.fs.volume.writeFileSync(`/q/msg/${id}`, 'tampered');
    expect(await client.receive()).toBeNull();
    expect(await queue.fs.readdir('q/dead')).toEqual([id, `${id}.json`]);
    expect(client.counters.deadLettered).toBe(1);
  });
});

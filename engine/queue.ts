/**
 * The queue: a time queue (claim 2) kept in a kernel file on a shared file system.
 *
 * Every change of the kernel file happens in a lock cycle (claims 1, 11): lock the header range,
 * read the header, do the work through a KernelTransaction, commit with one header write, unlock.
 * Bodies live as files in the message directory (claims 3, 4); a send that makes a new head
 * changes the notification file's last write time, which wakes receivers (claims 7, 11).
 *
 * The engine reaches the world only through `Ports`: it reads no ambient time or randomness.
 */

import { crc32c } from './crc32.js';
import { NasqError, assert, isNasqError, sessionLostCodes } from './errors.js';
import {
  SlotState,
  comesBefore,
  copySlot,
  emptyQueueHeader,
  emptySlot,
  encodeHeader,
  expiresBefore,
  headerCopySize,
  headerPrefixBytes,
  headerRegionSize,
  journalCapacity,
  kernelFileSize,
  maximumDeliveriesLimit,
  maximumSlots,
  messageIdOf,
  minimumSlots,
  noOffset,
  parseMessageId,
  slotFlagFilling,
  slotOffsetOf,
  type Header,
  type Slot,
} from './format.js';
import { BodyStore } from './bodies.js';
import { deadLetterSlot } from './dead-letters.js';
import { joinPath, queueLayout } from './layout.js';
import { KernelTransaction, maximumImagesPerItem } from './kernel-transaction.js';
import type { FileHandle, Ports, WatchHandle } from './ports.js';
import { encodeSlot } from './format.js';

// ---------------------------------------------------------------------------------------------
// Layout of a queue directory

export { joinPath, queueLayout } from './layout.js';

/** The notification file's last write time for a send: strictly increasing, 2 s apart (FAT). */
export function bellTimeMs(sendSequence: number): number {
  return sendSequence * 2000;
}

// ---------------------------------------------------------------------------------------------
// Options

export interface CreateQueueOptions {
  /** Number of slots, fixed at creation: the most messages the queue holds at once. Required. */
  readonly slots: number;
  /** Deliveries after which an expired message goes to the dead-letter directory. Default 10. */
  readonly maximumDeliveries?: number;
}

export interface QueueOptions {
  /** Fsync bodies and the kernel file before send, ack and release return. Default false. */
  readonly durable?: boolean;
  /** Lease of a received message, after which another receiver may take it. Default 30,000 ms. */
  readonly leaseMs?: number;
  /** Longest sleep of a waiting receiver between looks (a notification can be lost). Default 1,000 ms. */
  readonly pollIntervalMs?: number;
  /** Longest wait for the header lock before an operation fails with LOCK_NOT_GRANTED. Default 10,000 ms. */
  readonly lockWaitMs?: number;
  /** Journal images kept after an ordinary commit (1 to `journalCapacity`, 31). Default 8. */
  readonly journalSoftLimit?: number;
  /** Expired leases taken back per receive cycle at most. Default 8. */
  readonly reclaimPerCycle?: number;
  /** Ask the share for durable handles, which keep their locks over a short disconnect. Default false. */
  readonly durableHandles?: boolean;
}

interface ResolvedOptions {
  durable: boolean;
  leaseMs: number;
  pollIntervalMs: number;
  lockWaitMs: number;
  journalSoftLimit: number;
  reclaimPerCycle: number;
  durableHandles: boolean;
}

function resolveOptions(options: QueueOptions): ResolvedOptions {
  const positive = (name: string, value: number | undefined, fallback: number, maximum = Number.MAX_SAFE_INTEGER): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > maximum) {
      throw new NasqError('INVALID_ARGUMENT', `option ${name}: expected a number in (0, ${maximum}], got ${String(value)}`);
    }
    return value;
  };
  const journalSoftLimit = positive('journalSoftLimit', options.journalSoftLimit, 8, journalCapacity);
  if (!Number.isInteger(journalSoftLimit)) {
    throw new NasqError('INVALID_ARGUMENT', `option journalSoftLimit: expected an integer, got ${journalSoftLimit}`);
  }
  return {
    durable: options.durable ?? false,
    leaseMs: positive('leaseMs', options.leaseMs, 30_000),
    pollIntervalMs: positive('pollIntervalMs', options.pollIntervalMs, 1_000),
    lockWaitMs: positive('lockWaitMs', options.lockWaitMs, 10_000),
    journalSoftLimit,
    reclaimPerCycle: Math.floor(positive('reclaimPerCycle', options.reclaimPerCycle, 8, 1_000)),
    durableHandles: options.durableHandles ?? false,
  };
}

// ---------------------------------------------------------------------------------------------
// Public value types

/** Proof of a lease: what ack and release need. */
export interface Receipt {
  readonly id: string;
  /** Offset of the slot holding the message while it is pending. */
  readonly offset: number;
  /** Fencing token: changes with every delivery, so a stale holder cannot ack. */
  readonly leaseToken: number;
  /** When the lease ends, on the receiver's clock. */
  readonly leaseExpiry: number;
}

export interface Delivery {
  readonly id: string;
  readonly body: Uint8Array;
  /** The delivery time (queue priority) in milliseconds since the epoch. */
  readonly deliverAt: number;
  /** 1 on the first delivery, 2 on the first redelivery, ... */
  readonly deliveryCount: number;
  readonly sentAt: number;
  readonly receipt: Receipt;
}

export interface SendOptions {
  /** Deliver no earlier than this time (ms since the epoch). Default: now. */
  readonly deliverAt?: number;
}

export interface ReceiveOptions {
  /** Wait this long for a message to become ready. Default 0: look once. */
  readonly waitMs?: number;
  /** Lease for this delivery. Default: the client's `leaseMs`. */
  readonly leaseMs?: number;
}

export interface ReleaseOptions {
  /** Deliver again no earlier than this many ms from now. Default 0. */
  readonly delayMs?: number;
}

export type AckOutcome = 'acked' | 'lease-lost';

/** The header fields of claim 5 and the counts, as `nasq queue stat --json` prints them. */
export interface QueueStat {
  emptyCount: number;
  pendingCount: number;
  totalSlots: number;
  firstUnreadOffset: number;
  firstEmptyOffset: number;
  firstUnreadPriority: number;
  unreadCount: number;
  generation: number;
  deadCount: number;
}

/** Counters of one client, for diagnostics and reports. */
export interface ClientCounters {
  cycles: number;
  reclaimed: number;
  deadLettered: number;
  reopened: number;
}

export function formatReceipt(receipt: Receipt): string {
  return `${receipt.id}@${receipt.offset}:${receipt.leaseToken}`;
}

export function parseReceipt(text: string): Receipt | undefined {
  const match = /^(\d+-\d+)@(\d+):(\d+)$/.exec(text);
  if (match === null || parseMessageId(match[1]!) === undefined) return undefined;
  return { id: match[1]!, offset: Number(match[2]), leaseToken: Number(match[3]), leaseExpiry: 0 };
}

// ---------------------------------------------------------------------------------------------
// Creating a queue

/**
 * Creates a queue directory: kernel file with every slot empty, message, notification and
 * dead-letter directories. Fails with EXISTS if a kernel file is already there.
 */
export async function createQueue(ports: Ports, directory: string, options: CreateQueueOptions): Promise<void> {
  const { fs } = ports;
  const slots = options.slots;
  if (!Number.isInteger(slots) || slots < minimumSlots || slots > maximumSlots) {
    throw new NasqError('INVALID_ARGUMENT', `slots: expected an integer from ${minimumSlots} to ${maximumSlots}, got ${String(slots)}`);
  }
  const maximumDeliveries = options.maximumDeliveries ?? 10;
  if (!Number.isInteger(maximumDeliveries) || maximumDeliveries < 1 || maximumDeliveries > maximumDeliveriesLimit) {
    throw new NasqError(
      'INVALID_ARGUMENT',
      `maximumDeliveries: expected an integer from 1 to ${maximumDeliveriesLimit}, got ${String(maximumDeliveries)}`,
    );
  }
  await fs.mkdir(directory, { recursive: true });
  for (const name of [queueLayout.messages, queueLayout.notify, queueLayout.dead]) {
    await fs.mkdir(joinPath(directory, name), { recursive: true });
  }
  await fs.writeFile(joinPath(directory, queueLayout.bell), new Uint8Array(0));

  const header = emptyQueueHeader(slots, maximumDeliveries);
  const bytes = new Uint8Array(kernelFileSize(slots));
  bytes.set(encodeHeader(header), 0);
  bytes.set(encodeHeader({ ...header, generation: 0 }), headerCopySize);
  for (let index = 0; index < slots; index += 1) {
    const next = index + 1 < slots ? slotOffsetOf(index + 1) : noOffset;
    encodeSlot(emptySlot(slotOffsetOf(index), next, 1), bytes, slotOffsetOf(index));
  }
  // Write aside, then rename into place: a half-written kernel file is never seen as a queue.
  const temporary = joinPath(directory, `${queueLayout.kernel}.creating`);
  await fs.writeFile(temporary, bytes, { sync: true });
  await fs.rename(temporary, joinPath(directory, queueLayout.kernel));
}

// ---------------------------------------------------------------------------------------------
// The client

type Constructor<T> = new (ports: Ports, directory: string, options: ResolvedOptions) => T;

interface Popped {
  slot: Slot;
}

/**
 * One client of a queue: a sender, a receiver, or both. Not safe for concurrent use: call one
 * method at a time (open several clients for parallel work; they exclude each other through the
 * header lock like clients on different machines).
 */
export class QueueClient {
  /** This client's id, unique in the queue's lifetime (from the header's counter). */
  clientId = 0;
  readonly counters: ClientCounters = { cycles: 0, reclaimed: 0, deadLettered: 0, reopened: 0 };

  protected readonly fs: Ports['fs'];
  /** Where bodies live: their own files, or bundles shared by a batch (engine/bodies.ts). */
  protected readonly bodies: BodyStore;
  protected readonly clock: Ports['clock'];
  private kernel: FileHandle | undefined;
  /** Kernel handles of lost sessions, to close before the next open (see noteSessionLoss). */
  private readonly staleKernels: FileHandle[] = [];
  /**
   * The header region of every lock cycle is read into this buffer (one cycle at a time: a client
   * is not for concurrent use), not a new one per cycle.
   */
  private readonly headerRegion = new Uint8Array(headerRegionSize);
  /** Bytes of the header region a cycle reads first (beginTransaction). */
  private prefixBytes: number;
  private watch: WatchHandle | undefined;
  private messageSequence = 0;
  private closed = false;

  /** Use `QueueClient.open`. */
  constructor(
    protected readonly ports: Ports,
    readonly directory: string,
    protected readonly options: ResolvedOptions,
  ) {
    this.fs = ports.fs;
    this.clock = ports.clock;
    this.bodies = new BodyStore(this.fs, directory, queueLayout.messages, () => this.options.durable);
    this.prefixBytes = headerPrefixBytes(options.journalSoftLimit + maximumImagesPerItem);
  }

  /** Opens a queue and registers a new client id in its header. */
  static async open<T extends QueueClient>(
    this: Constructor<T>,
    ports: Ports,
    directory: string,
    options: QueueOptions = {},
  ): Promise<T> {
    const client = new this(ports, directory, resolveOptions(options));
    try {
      await client.register();
    } catch (error) {
      // Give back what the failed open took (a durable handle would keep its locks otherwise).
      await client.close();
      throw error;
    }
    return client;
  }

  // ---- paths

  protected path(name: string): string {
    return joinPath(this.directory, name);
  }

  protected bodyPath(id: string): string {
    return this.bodies.bodyPath(id);
  }

  // ---- sending

  /** Sends one message; returns its id. Throws QUEUE_FULL when no slot is empty. */
  async send(body: Uint8Array | string, options: SendOptions = {}): Promise<string> {
    const [id] = await this.sendBatch([{ body, ...options }]);
    return id!;
  }

  /**
   * Sends several messages under one lock cycle (split into several commits if the journal
   * fills). Bodies are written first, so a message is never visible before its body is whole.
   */
  async sendBatch(items: ReadonlyArray<{ body: Uint8Array | string } & SendOptions>): Promise<string[]> {
    assert(!this.closed, 'send on a closed client');
    const now = this.clock.now();
    const prepared = items.map((item) => {
      const body = typeof item.body === 'string' ? new TextEncoder().encode(item.body) : item.body;
      const deliverAt = item.deliverAt ?? now;
      if (!Number.isFinite(deliverAt) || deliverAt < 0 || !Number.isInteger(deliverAt)) {
        throw new NasqError('INVALID_ARGUMENT', `deliverAt: expected whole milliseconds since the epoch, got ${String(item.deliverAt)}`);
      }
      if (body.length > 0xffffffff) throw new NasqError('INVALID_ARGUMENT', `body: at most 4 GiB, got ${body.length} bytes`);
      return { body, deliverAt, id: this.nextMessageId(), checksum: crc32c(body) };
    });
    const placed =
      prepared.length === 0
        ? { bundleFirstSequence: 0, bundleCount: 0 }
        : await this.bodies.write(
            this.clientId,
            prepared.map((message) => ({ sequence: message.id.sequence, body: message.body, checksum: message.checksum })),
          );
    let newHeadSequence = 0;
    let linked = 0;
    let totalSlots = 0;
    // If the cycle throws (lock never granted, corrupt kernel, lost session), its earlier
    // checkpoints may have committed some messages: bodies stay either way, linked ones as
    // messages, the others as orphans that fsck moves to the dead letters.
    await this.cycle(prepared.length, async (transaction) => {
      totalSlots = transaction.header.totalSlots;
      for (const message of prepared) {
        if (transaction.header.emptyCount === 0) break;
        if (!transaction.hasRoomForItem()) await transaction.commit();
        const empty = await this.popEmpty(transaction);
        const sendSequence = transaction.header.nextSendSequence;
        transaction.header.nextSendSequence += 1;
        const filled = copySlot(empty);
        filled.state = SlotState.unread;
        filled.flags = 0;
        filled.deliveryCount = 0;
        filled.priority = message.deliverAt;
        filled.sendSequence = sendSequence;
        filled.messageClient = message.id.client;
        filled.messageSequence = message.id.sequence;
        filled.bodyLength = message.body.length;
        filled.bodyChecksum = message.checksum;
        filled.owner = 0;
        filled.leaseToken = 0;
        filled.leaseExpiry = 0;
        filled.sentAt = now;
        filled.bundleFirstSequence = placed.bundleFirstSequence;
        filled.bundleCount = placed.bundleCount;
        const becameHead = await this.insertUnread(transaction, filled);
        if (becameHead) newHeadSequence = sendSequence;
        linked += 1;
      }
    });
    if (newHeadSequence > 0) await this.ring(newHeadSequence);
    const sent = prepared.slice(0, linked).map((message) => message.id.text);
    if (linked < prepared.length) {
      await this.discardUnlinked(prepared.slice(linked).map((message) => message.id), placed);
      throw new NasqError('QUEUE_FULL', `all ${totalSlots} slots are in use: ${linked} of ${prepared.length} messages sent`, {
        details: { totalSlots, sent },
      });
    }
    return sent;
  }

  // ---- receiving

  /**
   * Takes the first unread message whose delivery time has come (claim 1): lock the header, move
   * the slot to pending with a lease, unlock, then read the body. Waits up to `waitMs` for one,
   * waking on the notification file or at the next delivery time, and polling as a fallback.
   * Returns null if nothing arrived in time.
   */
  async receive(options: ReceiveOptions = {}): Promise<Delivery | null> {
    const deliveries = await this.receiveBatch(1, options);
    return deliveries[0] ?? null;
  }

  /** Takes up to `maximum` ready messages under one lock cycle. */
  async receiveBatch(maximum: number, options: ReceiveOptions = {}): Promise<Delivery[]> {
    return this.receiveLoop(maximum, options, undefined);
  }

  /** Acks one message and takes the next in the same lock cycle. */
  async ackAndReceive(receipt: Receipt, options: ReceiveOptions = {}): Promise<Delivery | null> {
    const deliveries = await this.receiveLoop(1, options, receipt);
    return deliveries[0] ?? null;
  }

  private async receiveLoop(maximum: number, options: ReceiveOptions, ackFirst: Receipt | undefined): Promise<Delivery[]> {
    assert(!this.closed, 'receive on a closed client');
    if (!Number.isInteger(maximum) || maximum < 1 || maximum > 10_000) {
      throw new NasqError('INVALID_ARGUMENT', `maximum: expected an integer from 1 to 10000, got ${String(maximum)}`);
    }
    const waitMs = options.waitMs ?? 0;
    const leaseMs = options.leaseMs ?? this.options.leaseMs;
    if (!Number.isFinite(waitMs) || waitMs < 0) throw new NasqError('INVALID_ARGUMENT', `waitMs: expected a number >= 0, got ${String(waitMs)}`);
    if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw new NasqError('INVALID_ARGUMENT', `leaseMs: expected a number > 0, got ${String(leaseMs)}`);
    const deadline = this.clock.now() + waitMs;
    if (waitMs > 0) await this.ensureWatch();
    let pendingAck = ackFirst;
    // Every round either delivers, or sleeps until the deadline, a notification or a poll: the
    // bound only guards against a clock that never advances.
    const maximumRounds = 1_000_000;
    for (let round = 0; round < maximumRounds; round += 1) {
      const popped: Popped[] = [];
      let nextDueAt = 0;
      await this.cycle(maximum, async (transaction) => {
        if (pendingAck !== undefined) {
          await this.ackInCycle(transaction, pendingAck);
          pendingAck = undefined;
        }
        const now = this.clock.now();
        await this.reclaimExpired(transaction, now);
        while (popped.length < maximum && transaction.header.unreadCount > 0) {
          if (!this.isDue(transaction.header.firstUnreadPriority, now)) break;
          if (!transaction.hasRoomForItem()) await transaction.commit();
          popped.push({ slot: await this.takeHead(transaction, now, leaseMs) });
        }
        nextDueAt = transaction.header.unreadCount > 0 ? transaction.header.firstUnreadPriority : 0;
      });
      const deliveries = await this.readDeliveries(popped.map(({ slot }) => slot));
      if (deliveries.length > 0) return deliveries;
      if (popped.length > 0) continue; // All popped messages were dead-lettered: look again.
      const now = this.clock.now();
      if (now >= deadline) return [];
      let wakeAt = Math.min(deadline, now + this.options.pollIntervalMs);
      if (nextDueAt > now) wakeAt = Math.min(wakeAt, nextDueAt);
      const watch = await this.ensureWatch();
      try {
        await this.clock.waitForChange(watch, wakeAt);
      } catch (error) {
        if (!isNasqError(error, ...sessionLostCodes)) throw error;
        this.watch = undefined;
      }
    }
    throw new NasqError('TIMEOUT', `receive made ${maximumRounds} rounds without the clock reaching its deadline`);
  }

  /**
   * Reads and verifies the bodies of slots just taken (a bundle once for all its messages);
   * dead-letters a message whose body is missing or does not match its slot.
   */
  private async readDeliveries(slots: readonly Slot[]): Promise<Delivery[]> {
    if (slots.length === 0) return [];
    const bodies = await this.bodies.read(slots);
    const deliveries: Delivery[] = [];
    for (const [index, slot] of slots.entries()) {
      const id = messageIdOf(slot);
      const receipt: Receipt = { id, offset: slot.offset, leaseToken: slot.leaseToken, leaseExpiry: slot.leaseExpiry };
      const body = bodies[index]!;
      if (body === 'missing' || body === 'damaged') {
        await this.deadLetterTaken(receipt, body === 'missing' ? 'body-missing' : 'body-corrupt');
        continue;
      }
      deliveries.push({ id, body, deliverAt: slot.priority, deliveryCount: slot.deliveryCount, sentAt: slot.sentAt, receipt });
    }
    return deliveries;
  }

  // ---- acking and releasing

  /** Acks a message: deletes its body and frees its slot. Throws LEASE_LOST if fenced out. */
  async ack(receipt: Receipt): Promise<void> {
    const [outcome] = await this.ackBatch([receipt]);
    if (outcome === 'lease-lost') {
      throw new NasqError('LEASE_LOST', `message ${receipt.id}: the lease with token ${receipt.leaseToken} is no longer held`, {
        details: { id: receipt.id, leaseToken: receipt.leaseToken },
      });
    }
  }

  /** Acks several messages in one lock cycle; each one is acked or reported as lease-lost. */
  async ackBatch(receipts: readonly Receipt[]): Promise<AckOutcome[]> {
    assert(!this.closed, 'ack on a closed client');
    const outcomes: AckOutcome[] = [];
    await this.cycle(receipts.length, async (transaction) => {
      // Fence every receipt first (nothing changes under our lock meanwhile), then remove the
      // bodies of the held ones (a bundle acked whole is one delete), then free their slots.
      outcomes.length = 0;
      const held: Slot[] = [];
      for (const receipt of receipts) {
        const slot = await transaction.slot(receipt.offset);
        if (this.leaseHolds(slot, receipt) && !held.some((other) => other.offset === slot.offset)) {
          held.push(slot);
          outcomes.push('acked');
        } else {
          outcomes.push('lease-lost');
        }
      }
      await this.bodies.remove(held);
      for (const slot of held) {
        if (!transaction.hasRoomForItem()) await transaction.commit();
        await this.unlinkPending(transaction, await transaction.slot(slot.offset));
        this.pushEmpty(transaction, slot.offset);
      }
    });
    return outcomes;
  }

  /**
   * Acks by message id without a receipt (the CLI's `ack DIR ID`): allowed only while the message
   * is pending under a lease that has not run out. Prefer the receipt, which fences exactly.
   */
  async ackById(id: string): Promise<void> {
    if (parseMessageId(id) === undefined) throw new NasqError('INVALID_ARGUMENT', `message id: expected CLIENT-SEQUENCE like 3-17, got ${JSON.stringify(id)}`);
    const slot = await this.findPending(id);
    if (slot === undefined || slot.leaseExpiry <= this.clock.now()) {
      throw new NasqError('LEASE_LOST', `message ${id} is not pending under a live lease`, { details: { id } });
    }
    await this.ack({ id, offset: slot.offset, leaseToken: slot.leaseToken, leaseExpiry: slot.leaseExpiry });
  }

  /** Gives a message back for redelivery, now or after `delayMs`. Throws LEASE_LOST if fenced out. */
  async release(receipt: Receipt, options: ReleaseOptions = {}): Promise<void> {
    assert(!this.closed, 'release on a closed client');
    const delayMs = options.delayMs ?? 0;
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new NasqError('INVALID_ARGUMENT', `delayMs: expected a number >= 0, got ${String(delayMs)}`);
    let becameHead = false;
    let sendSequence = 0;
    await this.cycle(1, async (transaction) => {
      const slot = await transaction.slot(receipt.offset);
      if (!this.leaseHolds(slot, receipt)) throw this.leaseLost(receipt);
      await this.unlinkPending(transaction, slot);
      // Without a delay it keeps its place (it was due first); with one it waits at least that long.
      const priority = delayMs > 0 ? Math.max(slot.priority, Math.ceil(this.clock.now() + delayMs)) : slot.priority;
      sendSequence = slot.sendSequence;
      becameHead = await this.insertUnread(transaction, returnedToUnread(slot, priority));
    });
    if (becameHead) await this.ring(sendSequence);
  }

  /** Releases by message id (the CLI's `release DIR ID`), under the same rule as `ackById`. */
  async releaseById(id: string, options: ReleaseOptions = {}): Promise<void> {
    if (parseMessageId(id) === undefined) throw new NasqError('INVALID_ARGUMENT', `message id: expected CLIENT-SEQUENCE like 3-17, got ${JSON.stringify(id)}`);
    const slot = await this.findPending(id);
    if (slot === undefined || slot.leaseExpiry <= this.clock.now()) {
      throw new NasqError('LEASE_LOST', `message ${id} is not pending under a live lease`, { details: { id } });
    }
    await this.release({ id, offset: slot.offset, leaseToken: slot.leaseToken, leaseExpiry: slot.leaseExpiry }, options);
  }

  // ---- two-phase send (claim 6: pending slots "being filled")

  /**
   * Reserves a slot before writing a body (useful for large bodies: a full queue is known before
   * the body is written). The slot waits in the pending group, marked as being filled, under a
   * lease; `fill` writes the body and moves it to unread. A reservation whose lease runs out is
   * freed by the next receiver.
   */
  async reserve(options: SendOptions & { leaseMs?: number } = {}): Promise<Receipt> {
    assert(!this.closed, 'reserve on a closed client');
    const now = this.clock.now();
    const deliverAt = options.deliverAt ?? now;
    const id = this.nextMessageId();
    let receipt: Receipt | undefined;
    await this.cycle(1, async (transaction) => {
      const empty = await this.popEmpty(transaction);
      const leaseToken = this.takeLeaseToken(transaction.header);
      const leaseExpiry = now + (options.leaseMs ?? this.options.leaseMs);
      const sendSequence = transaction.header.nextSendSequence;
      transaction.header.nextSendSequence += 1;
      const reserved = copySlot(empty);
      reserved.state = SlotState.pending;
      reserved.flags = slotFlagFilling;
      reserved.priority = deliverAt;
      reserved.sendSequence = sendSequence;
      reserved.messageClient = id.client;
      reserved.messageSequence = id.sequence;
      reserved.owner = this.clientId;
      reserved.leaseToken = leaseToken;
      reserved.leaseExpiry = leaseExpiry;
      reserved.sentAt = now;
      await this.insertPending(transaction, reserved);
      receipt = { id: id.text, offset: empty.offset, leaseToken, leaseExpiry };
    });
    return receipt!;
  }

  /** Writes the body of a reserved slot and makes the message visible. */
  async fill(receipt: Receipt, body: Uint8Array | string): Promise<void> {
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    await this.fs.writeFile(this.bodyPath(receipt.id), bytes, { exclusive: true, sync: this.options.durable });
    let becameHead = false;
    let sendSequence = 0;
    try {
      await this.cycle(1, async (transaction) => {
        const slot = await transaction.slot(receipt.offset);
        if (!(slot.state === SlotState.pending && slot.flags === slotFlagFilling && slot.leaseToken === receipt.leaseToken)) {
          throw this.leaseLost(receipt);
        }
        await this.unlinkPending(transaction, slot);
        sendSequence = slot.sendSequence;
        const filled = returnedToUnread(slot, slot.priority);
        filled.flags = 0;
        filled.bodyLength = bytes.length;
        filled.bodyChecksum = crc32c(bytes);
        becameHead = await this.insertUnread(transaction, filled);
      });
    } catch (error) {
      if (isNasqError(error, 'LEASE_LOST')) await this.removeBodiesQuietly([receipt.id]);
      throw error;
    }
    if (becameHead) await this.ring(sendSequence);
  }

  // ---- looking

  /** The header's counts and offsets (claim 5), read under a shared lock. */
  async stat(): Promise<QueueStat> {
    const header = await this.readHeaderShared();
    return {
      emptyCount: header.emptyCount,
      pendingCount: header.pendingCount,
      totalSlots: header.totalSlots,
      firstUnreadOffset: header.firstUnreadOffset,
      firstEmptyOffset: header.firstEmptyOffset,
      firstUnreadPriority: header.firstUnreadPriority,
      unreadCount: header.unreadCount,
      generation: header.generation,
      deadCount: header.deadCount,
    };
  }

  /** Closes the kernel handle and the watch. The client cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const watch = this.watch;
    const kernel = this.kernel;
    this.watch = undefined;
    this.kernel = undefined;
    if (watch !== undefined) await this.quietly(() => this.fs.unwatch(watch));
    if (kernel !== undefined) await this.quietly(() => this.fs.close(kernel));
    await this.closeStaleHandles();
  }

  // ---- hooks a test may override to plant a bug (production code never changes them)

  /** Does the slot still carry the lease of this receipt? The fence of ack and release. */
  protected leaseHolds(slot: Slot, receipt: Receipt): boolean {
    return (
      slot.state === SlotState.pending &&
      slot.flags === 0 &&
      slot.leaseToken === receipt.leaseToken &&
      messageIdOf(slot) === receipt.id
    );
  }

  /** Has a message of this priority (delivery time) come due? */
  protected isDue(priority: number, now: number): boolean {
    return priority <= now;
  }

  // ---- the lock cycle

  /**
   * Runs `work` inside one lock cycle: lock the header, read it, work, commit, unlock. After a
   * lost session the kernel is reopened by the next cycle; the failed one throws.
   */
  protected async cycle(readAheadSlots: number, work: (transaction: KernelTransaction) => Promise<void>): Promise<void> {
    await this.underHeaderLock('exclusive', async (kernel) => {
      this.counters.cycles += 1;
      const transaction = await this.beginTransaction(kernel, this.options.durable, Math.max(1, Math.min(readAheadSlots, 64)));
      await work(transaction);
      await transaction.commit();
    });
  }

  /**
   * Runs `work` holding the header lock in `mode`, then unlocks (unless the session, and with it
   * the lock, was lost meanwhile). A lost session is noted wherever it shows; work's error wins.
   */
  private async underHeaderLock<T>(mode: 'exclusive' | 'shared', work: (kernel: FileHandle) => Promise<T>): Promise<T> {
    const kernel = await this.kernelHandle();
    const range = { offset: 0, length: headerRegionSize };
    try {
      await this.fs.lock(kernel, range, { mode, waitMs: this.options.lockWaitMs });
    } catch (error) {
      this.noteSessionLoss(error);
      throw error;
    }
    let failure: unknown;
    let result: T | undefined;
    try {
      result = await work(kernel);
    } catch (error) {
      failure = error;
      this.noteSessionLoss(error);
    }
    if (this.kernel === kernel) {
      try {
        await this.fs.unlock(kernel, range);
      } catch (error) {
        // The commit (if any) was written while we held the lock: a session lost just now does
        // not undo it, and the handle is reopened by the next cycle.
        if (!isNasqError(error, ...sessionLostCodes)) failure ??= error;
        this.noteSessionLoss(error);
      }
    }
    if (failure !== undefined) throw failure;
    return result as T;
  }

  /**
   * After a lost session the handles are stale, but not necessarily gone: a durable handle survives
   * a disconnect on the server, with its locks, until its client reconnects and closes it. So a
   * stale handle is kept and closed before the next open (and by close()), never just forgotten:
   * forgetting it would leave the header locked by an open nobody uses until the durable timeout.
   */
  private noteSessionLoss(error: unknown): void {
    if (!isNasqError(error, ...sessionLostCodes)) return;
    if (this.kernel !== undefined) this.staleKernels.push(this.kernel);
    this.kernel = undefined;
    this.watch = undefined;
  }

  private async closeStaleHandles(): Promise<void> {
    // Bounded: each session loss adds one; they are closed at the next open.
    assert(this.staleKernels.length <= maximumStaleHandles, () => `${this.staleKernels.length} stale kernel handles pile up`);
    for (const stale of this.staleKernels.splice(0)) await this.quietly(() => this.fs.close(stale));
  }

  private async kernelHandle(): Promise<FileHandle> {
    if (this.kernel !== undefined) return this.kernel;
    await this.closeStaleHandles();
    try {
      this.kernel = await this.fs.open(this.path(queueLayout.kernel), { durable: this.options.durableHandles });
    } catch (error) {
      if (isNasqError(error, 'NOT_FOUND')) {
        throw new NasqError('NOT_A_QUEUE', `${this.directory} has no kernel file; create the queue first`, { cause: error });
      }
      throw error;
    }
    this.counters.reopened += 1;
    return this.kernel;
  }

  private async ensureWatch(): Promise<WatchHandle> {
    if (this.watch === undefined) {
      const watch = await this.fs.watch(this.path(queueLayout.notify), { lastWrite: true, attributes: true, size: true });
      // SMB arms a directory watch with its first CHANGE_NOTIFY request and reports nothing from
      // before it (Samba: docs/conformance.md, case notify). One wait that returns at once arms
      // it now, so a ring between this and the first real wait (after a look at the queue) wakes
      // that wait instead of being missed until the next poll.
      await this.clock.waitForChange(watch, this.clock.now());
      this.watch = watch;
    }
    return this.watch;
  }

  private async register(): Promise<void> {
    await this.cycle(1, async (transaction) => {
      this.clientId = transaction.header.nextClientId;
      transaction.header.nextClientId = (this.clientId % 0xffffffff) + 1;
      transaction.touchHeader();
    });
    this.messageSequence = 0;
    this.counters.reopened = 0;
  }

  /**
   * Reads the header (the caller holds the header lock) into this client's buffer, first as far
   * as `prefixBytes`: all of copy A and copy B's fields and journal as long as the longest
   * seen so far (starting from this client's soft limit plus one item's images). A longer journal
   * costs that cycle a second, whole read, and is covered from then on. About 10 of the 16 KB in
   * the common case: less to move on every lock cycle.
   */
  private async beginTransaction(kernel: FileHandle, durable: boolean, readAheadSlots: number): Promise<KernelTransaction> {
    const transaction = await KernelTransaction.begin(this.fs, kernel, {
      durable,
      journalSoftLimit: this.options.journalSoftLimit,
      readAheadSlots,
      regionBuffer: this.headerRegion,
      prefixBytes: this.prefixBytes,
    });
    this.prefixBytes = Math.max(this.prefixBytes, transaction.prefixBytesNeeded);
    return transaction;
  }

  private async readHeaderShared(): Promise<Header> {
    return await this.underHeaderLock('shared', async (kernel) => {
      const transaction = await this.beginTransaction(kernel, false, 1);
      return transaction.header;
    });
  }

  /** Finds the pending slot of a message by walking the pending list (bounded by its count). */
  private async findPending(id: string): Promise<Slot | undefined> {
    let found: Slot | undefined;
    await this.cycle(16, async (transaction) => {
      let offset = transaction.header.firstPendingOffset;
      for (let step = 0; offset !== noOffset; step += 1) {
        if (step >= transaction.header.pendingCount) throw corruptList('pending', offset);
        const slot = await transaction.slot(offset);
        if (slot.flags === 0 && messageIdOf(slot) === id) {
          found = slot;
          return;
        }
        offset = slot.next;
      }
    });
    return found;
  }

  // ---- steps inside a cycle

  private async ackInCycle(transaction: KernelTransaction, receipt: Receipt): Promise<void> {
    const slot = await transaction.slot(receipt.offset);
    if (!this.leaseHolds(slot, receipt)) throw this.leaseLost(receipt);
    // The body goes first, under the lock and after the fence: a live body then always means a
    // message not yet acked, which is what fsck --repair relies on to rebuild a damaged kernel.
    await this.bodies.remove([slot]);
    await this.unlinkPending(transaction, slot);
    this.pushEmpty(transaction, slot.offset);
  }

  private async takeHead(transaction: KernelTransaction, now: number, leaseMs: number): Promise<Slot> {
    const { header } = transaction;
    const head = await transaction.slot(header.firstUnreadOffset);
    if (head.state !== SlotState.unread) throw corruptList('unread', head.offset);
    header.firstUnreadOffset = head.next;
    header.firstUnreadPriority = head.next === noOffset ? 0 : head.nextPriority;
    header.unreadCount -= 1;
    if (head.next === noOffset) {
      header.lastUnreadOffset = noOffset;
      header.lastUnreadPriority = 0;
      header.lastUnreadSendSequence = 0;
    }
    const taken = copySlot(head);
    taken.state = SlotState.pending;
    taken.flags = 0;
    taken.deliveryCount = Math.min(head.deliveryCount + 1, maximumDeliveriesLimit);
    taken.owner = this.clientId;
    taken.leaseToken = this.takeLeaseToken(header);
    taken.leaseExpiry = now + leaseMs;
    taken.nextPriority = 0;
    await this.insertPending(transaction, taken);
    return taken;
  }

  /** Takes back leases that ran out (receivers that died or stalled), oldest first. */
  private async reclaimExpired(transaction: KernelTransaction, now: number): Promise<void> {
    const { header } = transaction;
    for (let count = 0; count < this.options.reclaimPerCycle; count += 1) {
      if (header.pendingCount === 0 || header.firstPendingExpiry > now) return;
      if (!transaction.hasRoomForItem()) await transaction.commit();
      const slot = await transaction.slot(header.firstPendingOffset);
      if (slot.state !== SlotState.pending) throw corruptList('pending', slot.offset);
      await this.unlinkPending(transaction, slot);
      header.reclaimEpoch = (header.reclaimEpoch + 1) >>> 0;
      this.counters.reclaimed += 1;
      if (slot.flags === slotFlagFilling) {
        // A sender reserved this slot and never filled it; its body, if any, is an orphan.
        this.pushEmpty(transaction, slot.offset);
        continue;
      }
      if (!(await this.bodies.present(slot))) {
        // Its holder deleted the body in an ack and died before committing: the ack took effect.
        this.pushEmpty(transaction, slot.offset);
        continue;
      }
      if (slot.deliveryCount >= header.maximumDeliveries) {
        await this.moveToDeadLetters(slot, 'too-many-deliveries');
        header.deadCount += 1;
        this.pushEmpty(transaction, slot.offset);
        continue;
      }
      await this.insertUnread(transaction, returnedToUnread(slot, slot.priority));
    }
  }

  /** Moves a message this client holds to the dead-letter directory. */
  private async deadLetterTaken(receipt: Receipt, reason: string): Promise<void> {
    await this.cycle(1, async (transaction) => {
      const slot = await transaction.slot(receipt.offset);
      if (!this.leaseHolds(slot, receipt)) return; // Someone else has it now; nothing to do.
      await this.moveToDeadLetters(slot, reason);
      await this.unlinkPending(transaction, slot);
      transaction.header.deadCount += 1;
      this.pushEmpty(transaction, slot.offset);
    });
    this.counters.deadLettered += 1;
  }

  private async moveToDeadLetters(slot: Slot, reason: string): Promise<void> {
    await deadLetterSlot(this.fs, this.directory, this.bodies, slot, reason, this.clock.now());
  }

  // ---- list operations (each reads what it needs through the transaction)

  private async popEmpty(transaction: KernelTransaction): Promise<Slot> {
    const { header } = transaction;
    if (header.emptyCount === 0) {
      throw new NasqError('QUEUE_FULL', `all ${header.totalSlots} slots are in use`, {
        details: { totalSlots: header.totalSlots, unreadCount: header.unreadCount, pendingCount: header.pendingCount },
      });
    }
    const slot = await transaction.slot(header.firstEmptyOffset);
    if (slot.state !== SlotState.empty) throw corruptList('empty', slot.offset);
    header.firstEmptyOffset = slot.next;
    header.emptyCount -= 1;
    transaction.touchHeader();
    return slot;
  }

  private pushEmpty(transaction: KernelTransaction, offset: number): void {
    const { header } = transaction;
    transaction.put(emptySlot(offset, header.firstEmptyOffset, 0));
    header.firstEmptyOffset = offset;
    header.emptyCount += 1;
  }

  /**
   * Links an unread slot in priority order (delivery time, then send order). Appending after the
   * tail is the common case and reads only the tail. Returns true if the slot became the head.
   */
  protected async insertUnread(transaction: KernelTransaction, slot: Slot): Promise<boolean> {
    const { header } = transaction;
    const image = linkedCopy(slot, SlotState.unread);
    header.unreadCount += 1;
    if (header.unreadCount === 1) {
      header.firstUnreadOffset = image.offset;
      header.lastUnreadOffset = image.offset;
      header.firstUnreadPriority = image.priority;
      header.lastUnreadPriority = image.priority;
      header.lastUnreadSendSequence = image.sendSequence;
      transaction.put(image);
      return true;
    }
    const tailKey = { priority: header.lastUnreadPriority, sendSequence: header.lastUnreadSendSequence };
    if (!comesBefore(image, tailKey)) {
      const tail = await transaction.slot(header.lastUnreadOffset);
      if (tail.state !== SlotState.unread) throw corruptList('unread', tail.offset);
      transaction.put(withNext(tail, image.offset, image.priority));
      transaction.put(image);
      header.lastUnreadOffset = image.offset;
      header.lastUnreadPriority = image.priority;
      header.lastUnreadSendSequence = image.sendSequence;
      return false;
    }
    const head = await transaction.slot(header.firstUnreadOffset);
    if (head.state !== SlotState.unread) throw corruptList('unread', head.offset);
    if (comesBefore(image, head)) {
      transaction.put(withNext(image, head.offset, head.priority));
      header.firstUnreadOffset = image.offset;
      header.firstUnreadPriority = image.priority;
      return true;
    }
    // Somewhere in the middle: walk from the head (bounded by the count). The list's slots are
    // not in list order but lie near each other (they come off the empty stack), so the walk
    // reads wide windows: one read for many steps (on a share whose lock waiters race, sends
    // often land before the tail: docs/reports.md).
    transaction.readAheadAtLeast(unreadWalkReadAheadSlots);
    let before = head;
    for (let step = 0; ; step += 1) {
      if (step >= header.unreadCount || before.next === noOffset) throw corruptList('unread', before.offset);
      const after = await transaction.slot(before.next);
      if (after.state !== SlotState.unread) throw corruptList('unread', after.offset);
      if (comesBefore(image, after)) {
        transaction.put(withNext(before, image.offset, image.priority));
        transaction.put(withNext(image, after.offset, after.priority));
        return false;
      }
      before = after;
    }
  }

  /** Links a pending slot in lease-expiry order, searching back from the tail (usually one step). */
  private async insertPending(transaction: KernelTransaction, slot: Slot): Promise<void> {
    const { header } = transaction;
    const image = linkedCopy(slot, SlotState.pending);
    header.pendingCount += 1;
    transaction.touchHeader();
    if (header.pendingCount === 1) {
      header.firstPendingOffset = image.offset;
      header.lastPendingOffset = image.offset;
      header.firstPendingExpiry = image.leaseExpiry;
      transaction.put(image);
      return;
    }
    // Find the last slot that expires no later than the new one.
    let after: Slot | undefined;
    let before: Slot | undefined = await transaction.slot(header.lastPendingOffset);
    for (let step = 0; before !== undefined && expiresBefore(image, before); step += 1) {
      if (step >= header.pendingCount) throw corruptList('pending', before.offset);
      after = before;
      before = before.previous === noOffset ? undefined : await transaction.slot(before.previous);
    }
    if (before !== undefined && before.state !== SlotState.pending) throw corruptList('pending', before.offset);
    image.previous = before?.offset ?? noOffset;
    image.next = after?.offset ?? noOffset;
    transaction.put(image);
    if (before === undefined) {
      header.firstPendingOffset = image.offset;
      header.firstPendingExpiry = image.leaseExpiry;
    } else {
      transaction.put(withNext(before, image.offset, before.nextPriority));
    }
    if (after === undefined) header.lastPendingOffset = image.offset;
    else transaction.put(withPrevious(after, image.offset));
  }

  private async unlinkPending(transaction: KernelTransaction, slot: Slot): Promise<void> {
    const { header } = transaction;
    if (slot.state !== SlotState.pending) throw corruptList('pending', slot.offset);
    const next = slot.next === noOffset ? undefined : await transaction.slot(slot.next);
    if (slot.previous === noOffset) {
      if (header.firstPendingOffset !== slot.offset) throw corruptList('pending', slot.offset);
      header.firstPendingOffset = slot.next;
      header.firstPendingExpiry = next?.leaseExpiry ?? 0;
    } else {
      const previous = await transaction.slot(slot.previous);
      if (previous.state !== SlotState.pending || previous.next !== slot.offset) throw corruptList('pending', previous.offset);
      transaction.put(withNext(previous, slot.next, previous.nextPriority));
    }
    if (next === undefined) {
      if (header.lastPendingOffset !== slot.offset) throw corruptList('pending', slot.offset);
      header.lastPendingOffset = slot.previous;
    } else {
      if (next.state !== SlotState.pending || next.previous !== slot.offset) throw corruptList('pending', next.offset);
      transaction.put(withPrevious(next, slot.previous));
    }
    header.pendingCount -= 1;
    transaction.touchHeader();
  }

  // ---- small helpers

  private nextMessageId(): { client: number; sequence: number; text: string } {
    assert(this.clientId > 0, 'the client is not registered');
    this.messageSequence += 1;
    assert(this.messageSequence <= 0xffffffff, 'message sequence of this client ran out; open a new client');
    const client = this.clientId;
    const sequence = this.messageSequence;
    return { client, sequence, text: messageIdOf({ messageClient: client, messageSequence: sequence }) };
  }

  private takeLeaseToken(header: Header): number {
    const token = header.nextLeaseToken;
    header.nextLeaseToken = (token % 0xffffffff) + 1;
    return token;
  }

  private leaseLost(receipt: Receipt): NasqError {
    return new NasqError('LEASE_LOST', `message ${receipt.id}: the lease with token ${receipt.leaseToken} is no longer held`, {
      details: { id: receipt.id, offset: receipt.offset, leaseToken: receipt.leaseToken },
    });
  }

  /** Changes the notification file's last write time: wakes waiting receivers (claims 7, 11). */
  private async ring(sendSequence: number): Promise<void> {
    const timeMs = bellTimeMs(sendSequence);
    try {
      await this.fs.setTimes(this.path(queueLayout.bell), timeMs, timeMs);
    } catch (error) {
      // A lost notification costs receivers at most one poll interval; the message is committed.
      if (!isNasqError(error, 'NOT_FOUND', 'IO_ERROR', 'LOCK_CONFLICT', ...sessionLostCodes)) throw error;
    }
  }

  /** After QUEUE_FULL: removes the bodies of messages that were never linked (a definite failure). */
  private async discardUnlinked(ids: ReadonlyArray<{ client: number; sequence: number; text: string }>, placed: { bundleFirstSequence: number; bundleCount: number }): Promise<void> {
    if (placed.bundleFirstSequence === 0) {
      await this.removeBodiesQuietly(ids.map((id) => id.text));
      return;
    }
    const path = this.bodies.bundlePath(this.clientId, placed.bundleFirstSequence);
    const indexes = new Set(ids.map((id) => id.sequence - placed.bundleFirstSequence));
    try {
      await this.bodies.markGone(path, placed.bundleCount, indexes);
    } catch (error) {
      if (!(error instanceof NasqError)) throw error;
    }
  }

  private async removeBodiesQuietly(ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.quietly(() => this.fs.unlink(this.bodyPath(id)));
  }

  private async quietly(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      if (!(error instanceof NasqError)) throw error;
    }
  }
}

/** Session losses between two opens of the kernel: one per failed call at most. */
const maximumStaleHandles = 4;

/** Slots per read while a send walks the unread list (64 slots: 8 KiB, one block of a NAS read). */
const unreadWalkReadAheadSlots = 64;

function corruptList(list: string, offset: number): NasqError {
  return new NasqError('CORRUPT', `the ${list} list is inconsistent at slot ${offset}`, { details: { structure: 'list', list, offset } });
}

// Slot images are copied field by field (copySlot) rather than spread: an object spread of a
// slot cost two to four times as much, and the copies keep one object shape for every slot.

/** A copy of a slot with new links (unlinked), as `insertUnread` and `insertPending` place it. */
function linkedCopy(slot: Slot, state: SlotState): Slot {
  const image = copySlot(slot);
  image.state = state;
  image.next = noOffset;
  image.previous = noOffset;
  image.nextPriority = 0;
  return image;
}

function withNext(slot: Slot, next: number, nextPriority: number): Slot {
  const image = copySlot(slot);
  image.next = next;
  image.nextPriority = nextPriority;
  return image;
}

function withPrevious(slot: Slot, previous: number): Slot {
  const image = copySlot(slot);
  image.previous = previous;
  return image;
}

/** A pending slot given back: unread at `priority`, without owner and lease. */
function returnedToUnread(slot: Slot, priority: number): Slot {
  const image = copySlot(slot);
  image.state = SlotState.unread;
  image.priority = priority;
  image.owner = 0;
  image.leaseToken = 0;
  image.leaseExpiry = 0;
  return image;
}

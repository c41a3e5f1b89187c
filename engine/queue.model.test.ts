/**
 * Model-based property test of the queue engine: random sequences of several clients' send,
 * receive, ack, release, batch calls and lease expiry (time passing) run against the real engine
 * on MemoryFileSystem and against a plain in-memory model. After every command, every invariant
 * of the kernel file holds and the engine agrees with the model.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNasqError } from './errors.js';
import { kernelViolations } from './kernel-image.js';
import { QueueClient, type Delivery, type Receipt } from './queue.js';
import type { Slot } from './format.js';
import { memoryQueue, type MemoryQueue } from './test-support/memory-queue.js';

const clientCount = 3;
const slots = 6;
const leaseMs = 1_000;
const maximumDeliveries = 3;
const reclaimPerCycle = 8;

interface ModelMessage {
  id: string;
  body: string;
  priority: number;
  sendSequence: number;
  state: 'unread' | 'pending' | 'gone';
  deliveryCount: number;
  leaseToken: number;
  leaseExpiry: number;
}

class Model {
  messages = new Map<string, ModelMessage>();
  sendSequence = 0;
  /** Receipts each client holds (possibly stale), newest last. */
  held: Receipt[][] = Array.from({ length: clientCount }, () => []);
  acked = new Set<string>();
  deadLettered = new Set<string>();

  live(): ModelMessage[] {
    return [...this.messages.values()].filter((message) => message.state !== 'gone');
  }

  /** What a receive cycle does before taking heads: expired leases back to unread, or dead. */
  reclaim(now: number): void {
    const expired = this.live()
      .filter((message) => message.state === 'pending')
      .sort((a, b) => a.leaseExpiry - b.leaseExpiry || a.leaseToken - b.leaseToken)
      .filter((message) => message.leaseExpiry <= now)
      .slice(0, reclaimPerCycle);
    for (const message of expired) {
      if (message.deliveryCount >= maximumDeliveries) {
        message.state = 'gone';
        this.deadLettered.add(message.id);
      } else {
        message.state = 'unread';
      }
    }
  }

  ready(now: number): ModelMessage[] {
    return this.live()
      .filter((message) => message.state === 'unread' && message.priority <= now)
      .sort((a, b) => a.priority - b.priority || a.sendSequence - b.sendSequence);
  }
}

interface Real {
  queue: MemoryQueue;
  clients: QueueClient[];
}

type Command = fc.AsyncCommand<Model, Real>;

function checkKernel(real: Real): void {
  expect(kernelViolations(real.queue.kernelBytes())).toEqual([]);
}

function expectDelivery(model: Model, delivery: Delivery, expected: ModelMessage, client: number): void {
  expect(delivery.id).toBe(expected.id);
  expect(new TextDecoder().decode(delivery.body)).toBe(expected.body);
  expect(delivery.deliverAt).toBe(expected.priority);
  expected.deliveryCount += 1;
  expect(delivery.deliveryCount).toBe(expected.deliveryCount);
  expected.state = 'pending';
  expected.leaseToken = delivery.receipt.leaseToken;
  expected.leaseExpiry = delivery.receipt.leaseExpiry;
  model.held[client]!.push(delivery.receipt);
}

class SendCommand implements Command {
  constructor(
    readonly client: number,
    readonly body: string,
    readonly delayMs: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const now = real.queue.clock.now();
    const full = model.live().length >= slots;
    try {
      const id = await real.clients[this.client]!.send(this.body, { deliverAt: now + this.delayMs });
      expect(full).toBe(false);
      model.sendSequence += 1;
      model.messages.set(id, {
        id,
        body: this.body,
        priority: now + this.delayMs,
        sendSequence: model.sendSequence,
        state: 'unread',
        deliveryCount: 0,
        leaseToken: 0,
        leaseExpiry: 0,
      });
    } catch (error) {
      if (!isNasqError(error, 'QUEUE_FULL')) throw error;
      expect(full).toBe(true);
    }
    checkKernel(real);
  }
  toString(): string {
    return `send(c${this.client}, ${JSON.stringify(this.body)}, +${this.delayMs})`;
  }
}

class SendBatchCommand implements Command {
  constructor(
    readonly client: number,
    readonly count: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const now = real.queue.clock.now();
    const room = slots - model.live().length;
    const bodies = Array.from({ length: this.count }, (_, index) => `b${model.sendSequence}-${index}`);
    let ids: string[];
    try {
      ids = await real.clients[this.client]!.sendBatch(bodies.map((body) => ({ body })));
      expect(this.count).toBeLessThanOrEqual(room);
    } catch (error) {
      if (!isNasqError(error, 'QUEUE_FULL')) throw error;
      expect(this.count).toBeGreaterThan(room);
      ids = (error.details['sent'] as string[]) ?? [];
      expect(ids.length).toBe(room);
    }
    ids.forEach((id, index) => {
      model.sendSequence += 1;
      model.messages.set(id, {
        id,
        body: bodies[index]!,
        priority: now,
        sendSequence: model.sendSequence,
        state: 'unread',
        deliveryCount: 0,
        leaseToken: 0,
        leaseExpiry: 0,
      });
    });
    checkKernel(real);
  }
  toString(): string {
    return `sendBatch(c${this.client}, ${this.count})`;
  }
}

class ReceiveCommand implements Command {
  constructor(
    readonly client: number,
    readonly maximum: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const now = real.queue.clock.now();
    model.reclaim(now);
    const expected = model.ready(now).slice(0, this.maximum);
    const deliveries =
      this.maximum === 1
        ? [await real.clients[this.client]!.receive({ leaseMs })].filter((delivery): delivery is Delivery => delivery !== null)
        : await real.clients[this.client]!.receiveBatch(this.maximum, { leaseMs });
    expect(deliveries.map((delivery) => delivery.id)).toEqual(expected.map((message) => message.id));
    deliveries.forEach((delivery, index) => expectDelivery(model, delivery, expected[index]!, this.client));
    checkKernel(real);
  }
  toString(): string {
    return `receive(c${this.client}, ${this.maximum})`;
  }
}

/** Acks (or releases) one of the receipts a client holds: maybe stale, then it must be refused. */
class SettleCommand implements Command {
  constructor(
    readonly client: number,
    readonly pick: number,
    readonly action: 'ack' | 'release' | 'ackAndReceive',
  ) {}
  check(model: Model): boolean {
    return model.held[this.client]!.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const held = model.held[this.client]!;
    const receipt = held.splice(this.pick % held.length, 1)[0]!;
    const message = model.messages.get(receipt.id)!;
    const valid = message.state === 'pending' && message.leaseToken === receipt.leaseToken;
    const client = real.clients[this.client]!;
    try {
      if (this.action === 'ack') {
        await client.ack(receipt);
      } else if (this.action === 'release') {
        await client.release(receipt);
      } else {
        const now = real.queue.clock.now();
        // The ack happens first, then the receive part of the same cycle.
        const wouldBe = valid ? receipt.id : undefined;
        if (wouldBe !== undefined) message.state = 'gone';
        model.reclaim(now);
        const expected = model.ready(now)[0];
        if (wouldBe !== undefined) message.state = 'pending';
        const delivery = await client.ackAndReceive(receipt, { leaseMs });
        expect(valid).toBe(true);
        message.state = 'gone';
        model.acked.add(message.id);
        expect(delivery?.id).toBe(expected?.id);
        if (delivery !== null) expectDelivery(model, delivery, expected!, this.client);
        checkKernel(real);
        return;
      }
      expect(valid).toBe(true);
      if (this.action === 'ack') {
        expect(model.acked.has(message.id)).toBe(false);
        message.state = 'gone';
        model.acked.add(message.id);
      } else {
        message.state = 'unread';
      }
    } catch (error) {
      if (!isNasqError(error, 'LEASE_LOST')) throw error;
      expect(valid).toBe(false);
    }
    checkKernel(real);
  }
  toString(): string {
    return `${this.action}(c${this.client}, #${this.pick})`;
  }
}

class AdvanceCommand implements Command {
  constructor(readonly durationMs: number) {}
  check(): boolean {
    return true;
  }
  async run(_model: Model, real: Real): Promise<void> {
    await real.queue.clock.advance(this.durationMs);
  }
  toString(): string {
    return `advance(${this.durationMs})`;
  }
}

const client = fc.integer({ min: 0, max: clientCount - 1 });
const commands = [
  fc.tuple(client, fc.string({ maxLength: 8 }), fc.constantFrom(0, 0, 0, 300, 1500)).map(([c, body, delay]) => new SendCommand(c, body, delay)),
  fc.tuple(client, fc.integer({ min: 2, max: 4 })).map(([c, count]) => new SendBatchCommand(c, count)),
  fc.tuple(client, fc.constantFrom(1, 1, 1, 3)).map(([c, maximum]) => new ReceiveCommand(c, maximum)),
  fc.tuple(client, fc.nat(), fc.constantFrom<'ack' | 'release' | 'ackAndReceive'>('ack', 'ack', 'release', 'ackAndReceive')).map(
    ([c, pick, action]) => new SettleCommand(c, pick, action),
  ),
  fc.constantFrom(100, 400, 1_200).map((duration) => new AdvanceCommand(duration)),
];

function modelProperty(clientClass: typeof QueueClient) {
  return fc.asyncProperty(fc.commands(commands, { maxCommands: 60 }), fc.integer({ min: 1, max: 8 }), async (script, journalSoftLimit) => {
    const queue = await memoryQueue({ slots, maximumDeliveries });
    const clients: QueueClient[] = [];
    for (let index = 0; index < clientCount; index += 1) {
      clients.push(await clientClass.open(queue.ports, queue.directory, { leaseMs, journalSoftLimit, reclaimPerCycle }));
    }
    await fc.asyncModelRun(() => ({ model: new Model(), real: { queue, clients } }), script);
  });
}

/** Planted bug: ack and release without the fencing check. */
class UnfencedClient extends QueueClient {
  protected override leaseHolds(_slot: Slot, _receipt: Receipt): boolean {
    return true;
  }
}

/** Planted bug: delivering without checking the delivery time. */
class EagerClient extends QueueClient {
  protected override isDue(): boolean {
    return true;
  }
}

describe('queue engine against a model (MemoryFileSystem)', () => {
  it('keeps every kernel invariant and agrees with the model', async () => {
    await fc.assert(modelProperty(QueueClient), { numRuns: 300 });
  });

  it('finds a planted bug: ack without the fencing check', async () => {
    const result = await fc.check(modelProperty(UnfencedClient), { numRuns: 500, seed: 7 });
    expect(result.failed).toBe(true);
  });

  it('finds a planted bug: delivery before its time', async () => {
    const result = await fc.check(modelProperty(EagerClient), { numRuns: 500, seed: 7 });
    expect(result.failed).toBe(true);
  });
});

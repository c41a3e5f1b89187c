/**
 * Child process of the real-disk tests (engine/real-disk.test.ts): one queue client on
 * NodeFileSystem and SystemClock, driven by a JSON plan given as the only argument, reporting
 * its history as JSON lines on stdout:
 *
 *   {"event":"sent","messages":[[id, body], ...]}      a send or sendBatch returned (sender: [id, body, sentAtMs])
 *   {"event":"received","messages":[[id, body, deliveryCount, leaseExpiry], ...]}
 *   {"event":"acking","messages":[[id, body], ...]}    an ack or ackBatch is about to start
 *   {"event":"acked","messages":[[id, body], ...]}     an ack or ackBatch returned 'acked'
 *   {"event":"stopped","point":"after-lock"}           the process stopped, waiting to be killed
 *   {"event":"done","counters":{...}}
 *   {"event":"error","message":"..."}                  then exit code 1
 *
 * Run as `node --import tsx engine/test-support/disk-worker.ts '<plan JSON>'`.
 */

import { existsSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import seedrandom from 'seedrandom';
import { NodeFileSystem } from '../../adapters/node-file-system.js';
import { SystemClock } from '../../adapters/system-clock.js';
import { isNasqError } from '../errors.js';
import type { FileSystem } from '../ports.js';
import { QueueClient, type Delivery, type Receipt } from '../queue.js';
import { pausingFileSystem, type StopPoint } from './pausing-file-system.js';

/**
 * Many clients sending and receiving at random until every worker's messages are acked: send,
 * sendBatch, reserve + fill, receive, receiveBatch, ack, ackBatch, ackAndReceive, release.
 */
export interface MixedPlan {
  readonly mode: 'mixed';
  readonly root: string;
  readonly directory: string;
  readonly worker: number;
  readonly workers: number;
  /** Messages this worker sends. */
  readonly messages: number;
  readonly seed: number;
  readonly leaseMs: number;
  /** Where each worker leaves `done-N` once all its sends returned. */
  readonly doneDirectory: string;
  /** Give up (exit 1) after this long. */
  readonly deadlineMs: number;
  /** 'no-lock': lock and unlock do nothing (shows that the test catches a missing lock). */
  readonly plantedBug?: 'no-lock';
  /** Bodies already sent by an earlier (killed) worker of this number: start after them. Default 0. */
  readonly firstBody?: number;
}

/**
 * One client that does a little work, then stops at a point of a lock cycle and waits for SIGKILL.
 * - 'hold-lock': receives `count`, then stops holding the header lock in its ack's cycle.
 * - 'torn-header': receives `count`, then its ack's commit lands a torn header copy.
 * - 'slot-area': journal soft limit 1; sends `count` (at least 2), then receives one: stops after
 *   the journal flush to the slot area, before the header write that commits the receive.
 * - 'mid-send': sends `count` (returned), then one more whose body is written but never linked.
 * - 'between-receive-and-ack': receives `count` and stops, holding their leases.
 * - 'mid-ack': receives `count`; its ackBatch deletes the first body under the lock and stops.
 */
export interface VictimPlan {
  readonly mode: 'victim';
  readonly root: string;
  readonly directory: string;
  readonly scenario: 'hold-lock' | 'torn-header' | 'slot-area' | 'mid-send' | 'between-receive-and-ack' | 'mid-ack';
  readonly count: number;
  readonly leaseMs: number;
}

/** Sends `count` messages, one by one, `gapMs` apart, then exits. */
export interface SenderPlan {
  readonly mode: 'sender';
  readonly root: string;
  readonly directory: string;
  readonly count: number;
  readonly gapMs: number;
}

export type WorkerPlan = MixedPlan | VictimPlan | SenderPlan;

const decoder = new TextDecoder();

function report(line: Record<string, unknown>): void {
  writeFileSync(1, `${JSON.stringify(line)}\n`);
}

function pairs(deliveries: readonly Delivery[]): Array<[string, string, number, number]> {
  return deliveries.map((delivery) => [delivery.id, decoder.decode(delivery.body), delivery.deliveryCount, delivery.receipt.leaseExpiry]);
}

/** A planted bug: a file system whose lock and unlock do nothing. */
function withoutLocks(inner: FileSystem): FileSystem {
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'lock' || property === 'unlock') return async () => undefined;
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function runMixed(plan: MixedPlan): Promise<void> {
  const real = new NodeFileSystem(plan.root);
  const ports = { fs: plan.plantedBug === 'no-lock' ? withoutLocks(real) : real, clock: new SystemClock() };
  const client = await QueueClient.open(ports, plan.directory, { leaseMs: plan.leaseMs, lockWaitMs: 30_000, pollIntervalMs: 200 });
  const random = seedrandom(String(plan.seed));
  const integer = (minimum: number, maximum: number): number => minimum + Math.floor(random() * (maximum - minimum + 1));
  const deadline = Date.now() + plan.deadlineMs;
  let nextBody = plan.firstBody ?? 0;
  let announced = false;
  const doneFile = (worker: number): string => nodePath.join(plan.doneDirectory, `done-${worker}`);

  const acknowledge = async (deliveries: readonly Delivery[]): Promise<void> => {
    if (deliveries.length === 0) return;
    // Said before the ack: if this process is killed during it, the ack's outcome is unknown.
    report({ event: 'acking', messages: deliveries.map((delivery) => [delivery.id, decoder.decode(delivery.body)]) });
    if (deliveries.length === 1 && random() < 0.5) {
      try {
        await client.ack(deliveries[0]!.receipt);
        report({ event: 'acked', messages: [[deliveries[0]!.id, decoder.decode(deliveries[0]!.body)]] });
      } catch (error) {
        // A lease that ran out (short leases, a slow machine): someone else gets the message.
        if (!isNasqError(error, 'LEASE_LOST')) throw error;
      }
      return;
    }
    const outcomes = await client.ackBatch(deliveries.map((delivery) => delivery.receipt));
    report({
      event: 'acked',
      messages: deliveries.filter((_, index) => outcomes[index] === 'acked').map((delivery) => [delivery.id, decoder.decode(delivery.body)]),
    });
  };

  /** Acks a message and receives the next in the same lock cycle; returns the next, if any. */
  const ackAndTakeNext = async (delivery: Delivery): Promise<Delivery | null> => {
    report({ event: 'acking', messages: [[delivery.id, decoder.decode(delivery.body)]] });
    try {
      const next = await client.ackAndReceive(delivery.receipt);
      report({ event: 'acked', messages: [[delivery.id, decoder.decode(delivery.body)]] });
      if (next !== null) report({ event: 'received', messages: pairs([next]) });
      return next;
    } catch (error) {
      if (!isNasqError(error, 'LEASE_LOST')) throw error;
      return null;
    }
  };

  // Bounded by the deadline: every round sends, receives or waits for a message.
  for (;;) {
    if (Date.now() > deadline) throw new Error(`worker ${plan.worker}: deadline passed with ${plan.messages - nextBody} messages unsent`);
    const unsent = plan.messages - nextBody;
    if (unsent > 0 && random() < 0.5) {
      const size = Math.min(unsent, random() < 0.5 ? 1 : integer(2, 8));
      const bodies = Array.from({ length: size }, (_, index) => `w${plan.worker}-m${nextBody + index}`);
      let ids: string[];
      const way = random();
      try {
        if (size === 1 && way < 0.2) {
          // Two-phase: reserve a slot, then write the body and make it visible.
          const receipt = await client.reserve();
          await client.fill(receipt, bodies[0]!);
          ids = [receipt.id];
        } else if (size === 1 && way < 0.6) {
          ids = [await client.send(bodies[0]!)];
        } else {
          ids = await client.sendBatch(bodies.map((body) => ({ body })));
        }
      } catch (error) {
        // A reservation whose lease ran out before its fill: not sent (fill removed the body).
        if (isNasqError(error, 'LEASE_LOST')) ids = [];
        else if (isNasqError(error, 'QUEUE_FULL')) ids = (error.details.sent as string[] | undefined) ?? [];
        else throw error;
      }
      report({ event: 'sent', messages: ids.map((id, index) => [id, bodies[index]]) });
      nextBody += ids.length;
      continue;
    }
    if (!announced && nextBody === plan.messages) {
      writeFileSync(doneFile(plan.worker), '');
      announced = true;
    }
    const choice = random();
    let deliveries: Delivery[];
    if (choice < 0.4) {
      const delivery = await client.receive({ waitMs: integer(0, 50) });
      deliveries = delivery === null ? [] : [delivery];
    } else {
      deliveries = await client.receiveBatch(integer(2, 8), { waitMs: integer(0, 50) });
    }
    if (deliveries.length > 0) report({ event: 'received', messages: pairs(deliveries) });
    // Now and then give one back (it must still be acked exactly once, by someone).
    if (deliveries.length > 0 && random() < 0.1) {
      await client.release(deliveries.pop()!.receipt).catch((error: unknown) => {
        if (!isNasqError(error, 'LEASE_LOST')) throw error;
      });
    }
    // Now and then ack and take the next in one lock cycle (a few times in a row at most).
    let unacked = deliveries;
    for (let chained = 0; chained < 8 && unacked.length === 1 && random() < 0.3; chained += 1) {
      const next = await ackAndTakeNext(unacked[0]!);
      unacked = next === null ? [] : [next];
    }
    await acknowledge(unacked);
    if (announced && deliveries.length === 0) {
      const everyoneDone = Array.from({ length: plan.workers }, (_, worker) => existsSync(doneFile(worker))).every(Boolean);
      if (everyoneDone) {
        // Every send returned: an empty queue with nothing pending means every message is acked.
        const stat = await client.stat();
        if (stat.unreadCount === 0 && stat.pendingCount === 0) break;
      }
    }
  }
  report({ event: 'done', counters: client.counters });
  await client.close();
}

async function runVictim(plan: VictimPlan): Promise<never> {
  const pausing = pausingFileSystem(new NodeFileSystem(plan.root), (point: StopPoint) => report({ event: 'stopped', point }));
  const ports = { fs: pausing.fs, clock: new SystemClock() };
  const journalSoftLimit = plan.scenario === 'slot-area' ? 1 : 8;
  const client = await QueueClient.open(ports, plan.directory, { leaseMs: plan.leaseMs, journalSoftLimit, lockWaitMs: 30_000 });
  const receive = async (): Promise<Receipt[]> => {
    const deliveries = await client.receiveBatch(plan.count);
    report({ event: 'received', messages: pairs(deliveries) });
    return deliveries.map((delivery) => delivery.receipt);
  };
  const send = async (label: string, count: number): Promise<void> => {
    const bodies = Array.from({ length: count }, (_, index) => `victim-${label}-${index}`);
    const ids = await client.sendBatch(bodies.map((body) => ({ body })));
    report({ event: 'sent', messages: ids.map((id, index) => [id, bodies[index]]) });
  };
  switch (plan.scenario) {
    case 'hold-lock': {
      const receipts = await receive();
      pausing.arm('after-lock');
      await client.ackBatch(receipts);
      break;
    }
    case 'torn-header': {
      const receipts = await receive();
      pausing.arm('torn-header-write');
      await client.ackBatch(receipts);
      break;
    }
    case 'slot-area': {
      // The send's images stay in the journal; taking one of them changes one slot, so the
      // commit of the receive flushes the other images to the slot area first.
      await send('flush', plan.count);
      pausing.arm('after-slot-area-write');
      await client.receiveBatch(1);
      break;
    }
    case 'mid-send': {
      await send('returned', plan.count);
      pausing.arm('before-lock');
      await send('interrupted', 1);
      break;
    }
    case 'between-receive-and-ack': {
      await receive();
      report({ event: 'stopped', point: 'between-receive-and-ack' });
      setInterval(() => undefined, 60_000);
      await new Promise<never>(() => undefined);
      break;
    }
    case 'mid-ack': {
      const receipts = await receive();
      pausing.arm('after-body-unlink');
      await client.ackBatch(receipts);
      break;
    }
  }
  throw new Error(`victim ${plan.scenario}: finished without reaching its stop point`);
}

async function runSender(plan: SenderPlan): Promise<void> {
  const ports = { fs: new NodeFileSystem(plan.root), clock: new SystemClock() };
  const client = await QueueClient.open(ports, plan.directory);
  for (let index = 0; index < plan.count; index += 1) {
    if (index > 0) await new Promise((resolve) => setTimeout(resolve, plan.gapMs));
    const body = `sender-${index}`;
    const id = await client.send(body);
    report({ event: 'sent', messages: [[id, body, Date.now()]] });
  }
  report({ event: 'done', counters: client.counters });
  await client.close();
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? '{}') as WorkerPlan;
  if (plan.mode === 'mixed') await runMixed(plan);
  else if (plan.mode === 'victim') await runVictim(plan);
  else if (plan.mode === 'sender') await runSender(plan);
  else throw new Error(`disk-worker: unknown plan ${process.argv[2]}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    report({ event: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  },
);

/**
 * One process of `nasq torture`: a queue client on NodeFileSystem and the system clock that sends
 * and receives at random (send, sendBatch, reserve + fill, receive, receiveBatch, ack, ackBatch,
 * ackAndReceive, release, now and then an ack after the lease ran out) until the heal time, then
 * only receives and acks until every process has stopped sending and the queue is empty. Every
 * call goes into the process's history file (history-log.ts) before it starts and after it ends.
 *
 * The runner (runner.ts) starts it as `node worker-main.js PLAN_JSON` and SIGKILLs it at random;
 * a replacement is a new incarnation with a history file of its own.
 */

import { existsSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import seedrandom from 'seedrandom';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import { NasqError, isNasqError } from '../engine/errors.js';
import { QueueClient, type Delivery, type Receipt } from '../engine/queue.js';
import { classifyError, type DeliveredMessage, type OperationKind, type Outcome, type SentMessage } from '../properties/history.js';
import { HistoryLog, type LogEvent } from './history-log.js';

/** What the workload does; every field has a default (`defaultWorkload`). */
export interface WorkloadOptions {
  /** Share of rounds that send; the others receive and settle what they got. Default 0.5. */
  readonly sendShare: number;
  /** Most messages per sendBatch or receiveBatch. Default 8. */
  readonly batchMaximum: number;
  /** Share of messages sent with a later delivery time. Default 0.1. */
  readonly delayedFraction: number;
  /** Longest delay of a delayed message, ms. Default 1,000. */
  readonly delayMsMaximum: number;
  /** Share of deliveries given back (release) instead of acked. Default 0.05. */
  readonly releaseFraction: number;
  /**
   * Share of receive rounds whose first delivery is held until its lease has run out before the
   * ack: if another process took the message meanwhile, the fence must refuse the ack. Default 0.01.
   */
  readonly overstayFraction: number;
  /** Longest filler after a body's key, bytes (bodies are `key:filler`). Default 512. */
  readonly fillerBytesMaximum: number;
  /** Longest wait of a receive during the chaos, ms (drawn from 0 to it). Default 100. */
  readonly receiveWaitMsMaximum: number;
  /** Longest time a receiver works on what it got before settling it, ms (drawn from 0 to it). Default 0. */
  readonly processMsMaximum: number;
}

export const defaultWorkload: WorkloadOptions = {
  sendShare: 0.5,
  batchMaximum: 8,
  delayedFraction: 0.1,
  delayMsMaximum: 1_000,
  releaseFraction: 0.05,
  overstayFraction: 0.01,
  fillerBytesMaximum: 512,
  receiveWaitMsMaximum: 100,
  processMsMaximum: 0,
};

/** What one worker process is told (as JSON, the only argument). */
export interface WorkerPlan {
  /** The queue directory (absolute). */
  readonly queueDirectory: string;
  /** Which of the run's processes this is (0 to processes - 1), and its incarnation (0 first). */
  readonly slot: number;
  readonly incarnation: number;
  readonly processes: number;
  readonly seed: number;
  /** This incarnation's history file. */
  readonly historyPath: string;
  /** Where each process leaves `done-SLOT` once it has stopped sending. */
  readonly controlDirectory: string;
  /** Stop sending at this wall-clock time (ms since the epoch): the heal. */
  readonly healAtMs: number;
  /** Give up draining at this wall-clock time. */
  readonly drainUntilMs: number;
  readonly leaseMs: number;
  /** fdatasync every history append. Default true. */
  readonly historySync?: boolean;
  readonly workload?: Partial<WorkloadOptions>;
}

/** The queue client class a worker runs (a test-support entry passes one with a planted bug). */
export type ClientClass = typeof QueueClient;

/** Most NasqErrors in a row before the worker gives up (a queue directory that went away). */
const consecutiveErrorsMaximum = 1_000;
/** Pause after a failed call, ms. */
const errorPauseMs = 20;
/** Most operations one chain of ackAndReceive takes in a row. */
const chainMaximum = 8;
/** Wait of a receive while draining, ms. */
const drainWaitMs = 250;
/** Errors of an open that a retry cannot cure. */
const permanentOpenErrors = ['NOT_A_QUEUE', 'CORRUPT', 'INVALID_ARGUMENT'] as const;
/** Longest wait for the header lock, ms: far longer than any lock hold of a live process. */
const lockWaitMs = 30_000;

const decoder = new TextDecoder();

/** The filler length of a key: a hash of it, so the receiver can rebuild the body from the key. */
function fillerLength(key: string, maximum: number): number {
  let hash = 2_166_136_261;
  for (let index = 0; index < key.length; index += 1) hash = Math.imul(hash ^ key.charCodeAt(index), 16_777_619) >>> 0;
  return maximum <= 0 ? 0 : hash % (maximum + 1);
}

/** The body sent for a key: `key:` and a filler of a length and content derived from the key. */
export function bodyOfKey(key: string, fillerBytesMaximum: number): string {
  const length = fillerLength(key, fillerBytesMaximum);
  return `${key}:${`${key}.`.repeat(Math.ceil(length / (key.length + 1))).slice(0, length)}`;
}

/**
 * What the history records for a body received: its key when the body is exactly what that key's
 * sender sent, else the body itself (which then matches no send, and the checkers say so).
 */
export function recordedBody(body: string, fillerBytesMaximum: number): string {
  const separator = body.indexOf(':');
  if (separator <= 0) return body;
  const key = body.slice(0, separator);
  return bodyOfKey(key, fillerBytesMaximum) === body ? key : body;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

class Worker {
  readonly #log: HistoryLog;
  readonly #random: () => number;
  readonly #workload: WorkloadOptions;
  #client: QueueClient | undefined;
  #nextOperation = 0;
  #nextMessage = 0;
  #consecutiveErrors = 0;

  constructor(
    readonly plan: WorkerPlan,
    log: HistoryLog,
  ) {
    this.#log = log;
    this.#random = seedrandom(`${plan.seed}/${plan.slot}/${plan.incarnation}`);
    this.#workload = { ...defaultWorkload, ...plan.workload };
  }

  get client(): QueueClient {
    if (this.#client === undefined) throw new Error('torture worker: the client is not open');
    return this.#client;
  }

  /** Opens the client, retrying operating errors (each attempt an open operation) until the drain ends. */
  async open(clientClass: ClientClass): Promise<void> {
    const ports = { fs: new NodeFileSystem(this.plan.queueDirectory, { lockPollIntervalMsMax: 20 }), clock: new SystemClock() };
    for (let attempt = 0; ; attempt += 1) {
      const invoke = this.#invoke('open');
      this.#log.append(invoke);
      try {
        this.#client = await clientClass.open(ports, '.', { leaseMs: this.plan.leaseMs, lockWaitMs, pollIntervalMs: 250 });
      } catch (error) {
        this.#log.append(this.#failure(invoke.operation, 'open', error));
        // Not a queue, a damaged one, or one of another format: no retry makes it open.
        if (isNasqError(error, ...permanentOpenErrors) || Date.now() >= this.plan.drainUntilMs) throw error;
        await this.#afterError();
        continue;
      }
      this.#log.append({ event: 'ok', operation: invoke.operation, timeMs: Date.now() });
      this.#succeeded();
      return;
    }
  }

  #integer(minimum: number, maximum: number): number {
    return minimum + Math.floor(this.#random() * (maximum - minimum + 1));
  }

  #invoke(kind: OperationKind, details: { sends?: SentMessage[]; target?: { id: string; leaseToken: number } } = {}): LogEvent & { event: 'invoke' } {
    return { event: 'invoke', operation: this.#nextOperation++, kind, timeMs: Date.now(), ...details };
  }

  /** A completion after an error: fail or info by `classify`; a programmer error is thrown on. */
  #failure(operation: number, kind: OperationKind, error: unknown, classify: (error: unknown, kind: OperationKind) => Outcome = classifyError): LogEvent {
    // Thrown on: the process records the error and exits; the runner makes the call info.
    if (!(error instanceof NasqError)) throw error;
    const outcome = classify(error, kind);
    return { event: outcome === 'ok' ? 'info' : outcome, operation, timeMs: Date.now(), error: error.code };
  }

  async #afterError(): Promise<void> {
    this.#consecutiveErrors += 1;
    if (this.#consecutiveErrors >= consecutiveErrorsMaximum) {
      throw new Error(`worker ${this.plan.slot}.${this.plan.incarnation}: ${consecutiveErrorsMaximum} failed calls in a row`);
    }
    await sleep(errorPauseMs);
  }

  #succeeded(): void {
    this.#consecutiveErrors = 0;
  }

  #delivered(deliveries: readonly Delivery[]): DeliveredMessage[] {
    return deliveries.map((delivery) => ({
      id: delivery.id,
      body: recordedBody(decoder.decode(delivery.body), this.#workload.fillerBytesMaximum),
      deliverAt: delivery.deliverAt,
      deliveryCount: delivery.deliveryCount,
      leaseToken: delivery.receipt.leaseToken,
      leaseExpiry: delivery.receipt.leaseExpiry,
    }));
  }

  async send(): Promise<void> {
    const count = this.#random() < 0.5 ? 1 : this.#integer(2, this.#workload.batchMaximum);
    const now = Date.now();
    const sends: SentMessage[] = Array.from({ length: count }, () => {
      const key = `p${this.plan.slot}.${this.plan.incarnation}-m${this.#nextMessage++}`;
      const delayed = this.#random() < this.#workload.delayedFraction;
      const deliverAt = delayed ? now + this.#integer(1, this.#workload.delayMsMaximum) : now;
      return { id: undefined, body: key, deliverAt };
    });
    const items = sends.map((sent) => ({ body: bodyOfKey(sent.body, this.#workload.fillerBytesMaximum), deliverAt: sent.deliverAt }));
    const way = this.#random();
    const invoke = this.#invoke('send', { sends });
    this.#log.append(invoke);
    let ids: string[];
    try {
      if (count === 1 && way < 0.2) {
        // Two-phase: reserve a slot, then write the body and make the message visible.
        const receipt = await this.client.reserve({ deliverAt: items[0]!.deliverAt });
        await this.client.fill(receipt, items[0]!.body);
        ids = [receipt.id];
      } else if (count === 1 && way < 0.6) {
        ids = [await this.client.send(items[0]!.body, { deliverAt: items[0]!.deliverAt })];
      } else {
        ids = await this.client.sendBatch(items);
      }
    } catch (error) {
      const sent = isNasqError(error, 'QUEUE_FULL') ? error.details['sent'] : undefined;
      if (Array.isArray(sent) && sent.length > 0) {
        // Part of the batch went in: those are sent (the completion lists them), the rest is not.
        this.#log.append({ event: 'ok', operation: invoke.operation, timeMs: Date.now(), ids: sent as string[] });
        this.#succeeded();
        return;
      }
      this.#log.append(this.#failure(invoke.operation, 'send', error));
      await this.#afterError();
      return;
    }
    this.#log.append({ event: 'ok', operation: invoke.operation, timeMs: Date.now(), ids });
    this.#succeeded();
  }

  /** Receives (one or a batch) and settles what arrived: ack, ackBatch, ackAndReceive chains, release, overstay. */
  async receiveAndSettle(draining: boolean): Promise<number> {
    const batch = this.#random() < 0.4 ? 1 : this.#integer(2, this.#workload.batchMaximum);
    const waitMs = draining ? drainWaitMs : this.#integer(0, this.#workload.receiveWaitMsMaximum);
    const invoke = this.#invoke('receive');
    this.#log.append(invoke);
    let deliveries: Delivery[];
    try {
      deliveries = await this.client.receiveBatch(batch, { waitMs });
    } catch (error) {
      this.#log.append(this.#failure(invoke.operation, 'receive', error));
      await this.#afterError();
      return 0;
    }
    this.#log.append({ event: 'ok', operation: invoke.operation, timeMs: Date.now(), deliveries: this.#delivered(deliveries) });
    this.#succeeded();
    const received = deliveries.length;
    if (received === 0) return 0;

    let unsettled = [...deliveries];
    if (!draining && this.#workload.processMsMaximum > 0) await sleep(this.#integer(0, this.#workload.processMsMaximum));
    if (!draining) {
      // Now and then give one back: it must still be acked exactly once, by someone.
      const released = unsettled.filter(() => this.#random() < this.#workload.releaseFraction);
      unsettled = unsettled.filter((delivery) => !released.includes(delivery));
      for (const delivery of released) await this.release(delivery.receipt);
      // Now and then hold one past its lease: another process may take it meanwhile, and then
      // this ack must be fenced out (LEASE_LOST), or it would be a second ack of one message.
      if (unsettled.length > 0 && this.#random() < this.#workload.overstayFraction) {
        const overstayed = unsettled.shift()!;
        await sleep(overstayed.receipt.leaseExpiry + this.#integer(50, 300) - Date.now());
        await this.ack([overstayed]);
      }
    }
    // Now and then ack one and take the next in one lock cycle, a few times in a row at most.
    for (let chained = 0; chained < chainMaximum && unsettled.length === 1 && this.#random() < 0.3; chained += 1) {
      const next = await this.ackAndReceive(unsettled[0]!);
      unsettled = next === null ? [] : [next];
    }
    if (unsettled.length > 0) await this.ack(unsettled);
    return received;
  }

  async ack(deliveries: readonly Delivery[]): Promise<void> {
    const invokes = deliveries.map((delivery) => this.#invoke('ack', { target: { id: delivery.id, leaseToken: delivery.receipt.leaseToken } }));
    this.#log.append(...invokes);
    try {
      if (deliveries.length === 1 && this.#random() < 0.5) {
        await this.client.ack(deliveries[0]!.receipt);
        this.#log.append({ event: 'ok', operation: invokes[0]!.operation, timeMs: Date.now() });
      } else {
        const outcomes = await this.client.ackBatch(deliveries.map((delivery) => delivery.receipt));
        const timeMs = Date.now();
        this.#log.append(
          ...outcomes.map((outcome, index): LogEvent =>
            outcome === 'acked'
              ? { event: 'ok', operation: invokes[index]!.operation, timeMs }
              : { event: 'fail', operation: invokes[index]!.operation, timeMs, error: 'LEASE_LOST' },
          ),
        );
      }
    } catch (error) {
      this.#log.append(...invokes.map((invoke) => this.#failure(invoke.operation, 'ack', error)));
      if (!isNasqError(error, 'LEASE_LOST')) await this.#afterError();
      return;
    }
    this.#succeeded();
  }

  async release(receipt: Receipt): Promise<void> {
    const invoke = this.#invoke('release', { target: { id: receipt.id, leaseToken: receipt.leaseToken } });
    this.#log.append(invoke);
    try {
      await this.client.release(receipt, this.#random() < 0.5 ? {} : { delayMs: this.#integer(1, 200) });
    } catch (error) {
      this.#log.append(this.#failure(invoke.operation, 'release', error));
      if (!isNasqError(error, 'LEASE_LOST')) await this.#afterError();
      return;
    }
    this.#log.append({ event: 'ok', operation: invoke.operation, timeMs: Date.now() });
    this.#succeeded();
  }

  /** ackAndReceive: an ack and a receive in one lock cycle, recorded as two operations. */
  async ackAndReceive(delivery: Delivery): Promise<Delivery | null> {
    const ack = this.#invoke('ack', { target: { id: delivery.id, leaseToken: delivery.receipt.leaseToken } });
    const receive = this.#invoke('receive');
    this.#log.append(ack, receive);
    let next: Delivery | null;
    try {
      next = await this.client.ackAndReceive(delivery.receipt);
    } catch (error) {
      // The ack may have committed in an earlier round of the receive loop than the one that
      // failed: only a refused fence says for sure that it did not happen.
      const ackOutcome = (failure: unknown): Outcome => (isNasqError(failure, 'LEASE_LOST', 'INVALID_ARGUMENT') ? 'fail' : 'info');
      this.#log.append(this.#failure(ack.operation, 'ack', error, ackOutcome), this.#failure(receive.operation, 'receive', error));
      if (!isNasqError(error, 'LEASE_LOST')) await this.#afterError();
      return null;
    }
    const timeMs = Date.now();
    this.#log.append(
      { event: 'ok', operation: ack.operation, timeMs },
      { event: 'ok', operation: receive.operation, timeMs, deliveries: this.#delivered(next === null ? [] : [next]) },
    );
    this.#succeeded();
    return next;
  }

  /** Every process has stopped sending and nothing is unread or pending: the drain is over. */
  async drained(): Promise<boolean> {
    for (let slot = 0; slot < this.plan.processes; slot += 1) {
      if (!existsSync(doneFile(this.plan.controlDirectory, slot))) return false;
    }
    try {
      const stat = await this.client.stat();
      return stat.unreadCount === 0 && stat.pendingCount === 0;
    } catch (error) {
      if (!isNasqError(error)) throw error;
      return false;
    }
  }

  async run(): Promise<boolean> {
    while (Date.now() < this.plan.healAtMs) {
      if (this.#random() < this.#workload.sendShare) await this.send();
      else await this.receiveAndSettle(false);
    }
    this.#log.append({ event: 'done-sending', timeMs: Date.now() });
    writeFileSync(doneFile(this.plan.controlDirectory, this.plan.slot), '');
    while (Date.now() < this.plan.drainUntilMs) {
      const received = await this.receiveAndSettle(true);
      if (received === 0 && (await this.drained())) return true;
    }
    return false;
  }
}

/** Where a process says it has stopped sending. */
export function doneFile(controlDirectory: string, slot: number): string {
  return nodePath.join(controlDirectory, `done-${slot}`);
}

/**
 * Runs one worker process to its end: the plan is the process's only argument (JSON). Exit code 0
 * when it drained (or ran out of drain time: the runner judges what is left), 1 on an error, which
 * the history file also records.
 */
export async function workerMain(clientClass: ClientClass): Promise<never> {
  const plan = JSON.parse(process.argv[2] ?? 'null') as WorkerPlan | null;
  if (plan === null || typeof plan.historyPath !== 'string' || typeof plan.queueDirectory !== 'string') {
    process.stderr.write(`torture worker: expected a plan (JSON) as the only argument, got ${JSON.stringify(process.argv[2])}\n`);
    process.exit(2);
  }
  const log = new HistoryLog(plan.historyPath, { sync: plan.historySync ?? true });
  const fail = (error: unknown): never => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    try {
      log.append({ event: 'error', timeMs: Date.now(), message });
    } finally {
      process.stderr.write(`torture worker ${plan.slot}.${plan.incarnation}: ${message}\n`);
      process.exit(1);
    }
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  try {
    log.append({ event: 'start', timeMs: Date.now(), pid: process.pid });
    const worker = new Worker(plan, log);
    await worker.open(clientClass);
    const drained = await worker.run();
    await worker.client.close().catch(() => undefined);
    log.append({ event: 'exit', timeMs: Date.now(), drained });
    log.close();
    process.exit(0);
  } catch (error) {
    return fail(error);
  }
}

/**
 * The workload of a simulated run: sender and receiver programs that run the engine's own
 * QueueClient on the ports the simulator gives them, and record every call in the history.
 *
 * The programs survive crashes: their progress (how many messages a sender has sent) lives in
 * the workload, outside the client, so a restarted incarnation carries on where the last stopped.
 */

import { isNasqError } from '../engine/errors.js';
import type { Ports } from '../engine/ports.js';
import { QueueClient, type Delivery, type QueueOptions } from '../engine/queue.js';
import type { ClientContext, ClientMain } from '../sim/client.js';
import type { History, Operation } from './history.js';
import { labelOfBody, workloadBody } from './workload-body.js';

export interface WorkloadConfig {
  readonly directory: string;
  /** Messages each sender sends in all. */
  readonly messagesPerSender: readonly number[];
  /** Messages per send call (1 = unbatched). */
  readonly batch: number;
  /** Mean pause between two sends of one sender, ms (exponentially distributed). */
  readonly sendIntervalMs: number;
  /** Share of messages sent with a later delivery time. */
  readonly delayedFraction: number;
  /** Longest delay of a delayed message, ms. */
  readonly maxDelayMs: number;
  /** Mean time a receiver spends on a message before acking it, ms. */
  readonly processMs: number;
  /** Share of deliveries given back (release) instead of acked. */
  readonly releaseFraction: number;
  /** Messages per receive call. */
  readonly receiveBatch: number;
  /** How long a receive waits for a message, ms. */
  readonly waitMs: number;
  /** Bytes of each body: its label, then filler up to this length (0 or less than the label: the label alone). */
  readonly bodyBytes: number;
  readonly queueOptions: QueueOptions;
  /** Pause before a client retries after a failed call, ms. */
  readonly retryPauseMs: number;
  /** The queue client class (a test passes one with a planted bug). Default QueueClient. */
  readonly clientClass?: typeof QueueClient;
}

/** What receivers ask before each receive: should they stop? */
export interface WorkloadControl {
  /** True once no more messages will come and the queue is empty, or the run's time is up. */
  shouldStop(serverTimeMs: number): boolean;
  /** Server time now (the virtual clock), for the history. */
  serverTimeMs(): number;
}

/** An exponentially distributed draw with the given mean (0 for a mean of 0). */
function exponential(context: ClientContext, meanMs: number): number {
  if (meanMs <= 0) return 0;
  return -meanMs * Math.log(1 - context.random.next());
}

/** Limits on every loop of a program (TigerBeetle style: everything has a bound). */
const maximumRounds = 1_000_000;

export class Workload {
  /** Messages each sender has attempted (ok or info), across incarnations. */
  readonly attempted: number[];

  constructor(
    readonly config: WorkloadConfig,
    readonly history: History,
    readonly control: WorkloadControl,
  ) {
    this.attempted = config.messagesPerSender.map(() => 0);
  }

  /** True when every sender has attempted all its messages. */
  sendersDone(): boolean {
    return this.attempted.every((count, index) => count >= this.config.messagesPerSender[index]!);
  }

  sender(senderIndex: number): ClientMain {
    return async (ports: Ports, context: ClientContext) => {
      const client = await this.open(ports, context);
      if (client === undefined) return;
      const quota = this.config.messagesPerSender[senderIndex]!;
      for (let round = 0; round < maximumRounds && this.attempted[senderIndex]! < quota; round += 1) {
        const gapMs = exponential(context, this.config.sendIntervalMs);
        if (gapMs > 0) await ports.clock.sleepUntil(ports.clock.now() + gapMs);
        const now = ports.clock.now();
        const count = Math.min(this.config.batch, quota - this.attempted[senderIndex]!);
        const items = Array.from({ length: count }, (_, offset) => {
          const delayed = this.config.delayedFraction > 0 && context.random.next() < this.config.delayedFraction;
          const deliverAt = delayed ? Math.round(now + context.random.next() * this.config.maxDelayMs) : Math.round(now);
          return { body: `${context.name}/${this.attempted[senderIndex]! + offset}`, deliverAt };
        });
        const operation = this.history.invoke(context.name, context.incarnation, 'send', now, {
          sends: items.map((item) => ({ id: undefined, body: item.body, deliverAt: item.deliverAt })),
        });
        try {
          const ids = await client.sendBatch(items.map((item) => ({ body: workloadBody(item.body, this.config.bodyBytes), deliverAt: item.deliverAt })));
          ids.forEach((id, index) => (operation.sends![index]!.id = id));
          this.history.complete(operation, 'ok', ports.clock.now());
          this.attempted[senderIndex]! += count;
        } catch (error) {
          if (isNasqError(error, 'QUEUE_FULL') && Array.isArray(error.details['sent']) && error.details['sent'].length > 0) {
            // Part of the batch went in: record those as sent, try the rest again later.
            const sent = error.details['sent'] as string[];
            operation.sends = operation.sends!.slice(0, sent.length);
            sent.forEach((id, index) => (operation.sends![index]!.id = id));
            this.history.complete(operation, 'ok', ports.clock.now());
            this.attempted[senderIndex]! += sent.length;
          } else {
            const outcome = this.history.completeWithError(operation, error, ports.clock.now());
            // After an unknown outcome the bodies may be in the queue: never reuse them.
            if (outcome === 'info') this.attempted[senderIndex]! += count;
          }
          await ports.clock.sleepUntil(ports.clock.now() + this.config.retryPauseMs);
        }
      }
      await this.close(client);
    };
  }

  receiver(): ClientMain {
    return async (ports: Ports, context: ClientContext) => {
      const client = await this.open(ports, context);
      if (client === undefined) return;
      for (let round = 0; round < maximumRounds && !this.control.shouldStop(this.control.serverTimeMs()); round += 1) {
        const operation = this.history.invoke(context.name, context.incarnation, 'receive', ports.clock.now());
        let deliveries: Delivery[];
        try {
          deliveries = await client.receiveBatch(this.config.receiveBatch, { waitMs: this.config.waitMs });
        } catch (error) {
          this.history.completeWithError(operation, error, ports.clock.now());
          await ports.clock.sleepUntil(ports.clock.now() + this.config.retryPauseMs);
          continue;
        }
        this.history.complete(operation, 'ok', ports.clock.now(), {
          deliveries: deliveries.map((delivery) => ({
            id: delivery.id,
            body: labelOfBody(delivery.body, this.config.bodyBytes),
            deliverAt: delivery.deliverAt,
            deliveryCount: delivery.deliveryCount,
            leaseToken: delivery.receipt.leaseToken,
            leaseExpiry: delivery.receipt.leaseExpiry,
          })),
        });
        for (const delivery of deliveries) {
          const workMs = exponential(context, this.config.processMs);
          if (workMs > 0) await ports.clock.sleepUntil(ports.clock.now() + workMs);
          const release = this.config.releaseFraction > 0 && context.random.next() < this.config.releaseFraction;
          await this.settle(client, ports, context, delivery, release ? 'release' : 'ack');
        }
      }
      await this.close(client);
    };
  }

  private async settle(client: QueueClient, ports: Ports, context: ClientContext, delivery: Delivery, kind: 'ack' | 'release'): Promise<void> {
    const operation: Operation = this.history.invoke(context.name, context.incarnation, kind, ports.clock.now(), {
      target: { id: delivery.id, leaseToken: delivery.receipt.leaseToken },
    });
    try {
      if (kind === 'ack') await client.ack(delivery.receipt);
      else await client.release(delivery.receipt);
      this.history.complete(operation, 'ok', ports.clock.now());
    } catch (error) {
      this.history.completeWithError(operation, error, ports.clock.now());
    }
  }

  /** Opens the queue, retrying while the share is away; undefined if the run ends first. */
  private async open(ports: Ports, context: ClientContext): Promise<QueueClient | undefined> {
    for (let attempt = 0; attempt < maximumRounds; attempt += 1) {
      const operation = this.history.invoke(context.name, context.incarnation, 'open', ports.clock.now());
      try {
        const client = await (this.config.clientClass ?? QueueClient).open(ports, this.config.directory, this.config.queueOptions);
        this.history.complete(operation, 'ok', ports.clock.now());
        return client;
      } catch (error) {
        this.history.completeWithError(operation, error, ports.clock.now());
        if (this.control.shouldStop(this.control.serverTimeMs())) return undefined;
        await ports.clock.sleepUntil(ports.clock.now() + this.config.retryPauseMs);
      }
    }
    return undefined;
  }

  private async close(client: QueueClient): Promise<void> {
    try {
      await client.close();
    } catch (error) {
      if (!isNasqError(error)) throw error;
    }
  }
}

/**
 * A small harness over tinybench: each metric is measured by running a task for a time budget
 * and taking the median of its samples, and a suite returns named figures. `bench/main.ts`
 * collects the suites into one JSON object.
 */

import { Bench } from 'tinybench';
import type { QueueClient } from '../engine/queue.js';

export type Figures = Record<string, number>;

export interface Suite {
  readonly name: string;
  run(options: SuiteOptions): Promise<Figures>;
}

export interface SuiteOptions {
  /** Wall time per measured task, in milliseconds. */
  readonly timeMs: number;
  /** Print progress lines to stderr. */
  readonly verbose: boolean;
}

/**
 * Runs `iteration` repeatedly for about `timeMs` and returns the median rate of items per second
 * (`itemsPerIteration` items each iteration), from tinybench's median latency.
 */
export async function medianRate(
  name: string,
  iteration: () => Promise<void>,
  options: { timeMs: number; itemsPerIteration?: number; warmupMs?: number },
): Promise<number> {
  const bench = new Bench({ name, time: options.timeMs, warmupTime: options.warmupMs ?? Math.min(500, options.timeMs / 2), iterations: 5 });
  bench.add(name, iteration);
  await bench.run();
  const task = bench.tasks[0]!;
  const result = task.result;
  if (result.state !== 'completed') {
    throw new Error(`benchmark ${name} did not complete: ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
  }
  const medianMs = result.latency.p50;
  return ((options.itemsPerIteration ?? 1) * 1000) / medianMs;
}

/** Median of several numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** The body every engine benchmark sends. */
export const benchmarkBody = new Uint8Array(256).fill(7);

/** One message end to end, unbatched: send, receive, ack. */
export async function oneMessage(client: QueueClient): Promise<void> {
  await client.send(benchmarkBody);
  const delivery = await client.receive();
  if (delivery === null) throw new Error('benchmark: the message did not arrive');
  await client.ack(delivery.receipt);
}

/** `size` messages end to end in batches: sendBatch, receiveBatch, ackBatch. */
export async function batchOf(client: QueueClient, size: number): Promise<void> {
  await client.sendBatch(Array.from({ length: size }, () => ({ body: benchmarkBody })));
  const deliveries = await client.receiveBatch(size);
  if (deliveries.length !== size) throw new Error(`benchmark: ${deliveries.length} of ${size} messages arrived`);
  const outcomes = await client.ackBatch(deliveries.map((delivery) => delivery.receipt));
  if (outcomes.some((outcome) => outcome !== 'acked')) throw new Error('benchmark: an ack lost its lease');
}

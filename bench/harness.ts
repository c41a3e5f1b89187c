/**
 * A small harness over tinybench: each metric is measured by running a task for a time budget
 * and taking the median of its samples, and a suite returns named figures. `bench/main.ts`
 * collects the suites into one JSON object.
 */

import { Bench } from 'tinybench';

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

/**
 * Which runs a check makes, and the configuration of each, independently of how many threads or
 * machines make them.
 *
 * Run `i` of a scenario (0-based) under fast-check seed `S` is the value fast-check's own
 * `fc.check(property, { seed: S })` would test as its run `i`; we draw it with
 * `fc.sample(arbitrary, { seed: S, path: String(i) })`, fast-check's documented way of getting
 * those values. So a run's configuration depends on (S, scenario, i) only, a failure's shrink path
 * starts with its run index (`i:shrink:steps`) exactly as in a sequential `fc.check`, and
 * `--seed S --path P` replays it through fast-check itself.
 */

import fc from 'fast-check';
import type { Scenario } from '../scenarios/schema.js';
import { configArbitrary, type RunConfig } from './config.js';

/** A deterministic part of the runs: run indexes i with i mod count == index - 1. */
export interface Shard {
  /** 1-based. */
  readonly index: number;
  readonly count: number;
}

/** Most shards: a bound on everything (GitHub Actions allows 256 jobs in a matrix). */
export const shardCountMax = 10_000;

export function validateShard(shard: Shard): void {
  if (!Number.isSafeInteger(shard.count) || shard.count < 1 || shard.count > shardCountMax) {
    throw new RangeError(`shard count: expected an integer from 1 to ${shardCountMax}, got ${shard.count}`);
  }
  if (!Number.isSafeInteger(shard.index) || shard.index < 1 || shard.index > shard.count) {
    throw new RangeError(`shard index: expected an integer from 1 to ${shard.count}, got ${shard.index}`);
  }
}

/** Parses `I/N` (1-based), e.g. `2/4`. Throws a RangeError that says what was expected. */
export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (match === null) throw new RangeError(`expected I/N like 2/4 (shard I of N, 1-based), got ${JSON.stringify(text)}`);
  const shard = { index: Number(match[1]), count: Number(match[2]) };
  validateShard(shard);
  return shard;
}

/** The run indexes of a scenario a shard makes, in increasing order. */
export function* shardRunIndexes(seeds: number, shard: Shard | undefined): Generator<number> {
  const step = shard?.count ?? 1;
  for (let index = (shard?.index ?? 1) - 1; index < seeds; index += step) yield index;
}

/** How many runs of a scenario a shard makes. */
export function shardRunCount(seeds: number, shard: Shard | undefined): number {
  if (shard === undefined) return seeds;
  return Math.max(0, Math.ceil((seeds - (shard.index - 1)) / shard.count));
}

/** Configurations drawn per chunk: fast-check walks to a path's start one jump per run. */
const chunkSize = 64;

/**
 * The configurations of one scenario's runs under one fast-check seed, drawn on demand in
 * chunks. Asking in increasing order (as the scheduler does) draws each chunk once.
 */
export class RunConfigSource {
  private readonly arbitrary: fc.Arbitrary<RunConfig>;
  private chunkStart = -1;
  private chunk: RunConfig[] = [];

  /** `runsMax`: the scenario's seeds; no configuration past it is drawn. */
  constructor(
    scenario: Scenario,
    private readonly seed: number,
    private readonly runsMax: number,
  ) {
    this.arbitrary = configArbitrary(scenario);
  }

  configOf(runIndex: number): RunConfig {
    if (!Number.isSafeInteger(runIndex) || runIndex < 0 || runIndex >= this.runsMax) {
      throw new RangeError(`run index: expected an integer from 0 to ${this.runsMax - 1}, got ${runIndex}`);
    }
    if (runIndex < this.chunkStart || runIndex >= this.chunkStart + this.chunk.length) {
      this.chunkStart = runIndex - (runIndex % chunkSize);
      this.chunk = fc.sample(this.arbitrary, { seed: this.seed, path: String(this.chunkStart), numRuns: Math.min(chunkSize, this.runsMax - this.chunkStart) });
    }
    const config = this.chunk[runIndex - this.chunkStart];
    if (config === undefined) throw new Error(`run ${runIndex}: fast-check drew no configuration`);
    return config;
  }
}

/** The run index a counterexample path starts from (`12:0:3` is run 12). */
export function runIndexOfPath(path: string): number {
  const first = Number(path.split(':')[0]);
  if (!Number.isSafeInteger(first) || first < 0) throw new RangeError(`expected a fast-check path like 12:0:3, got ${JSON.stringify(path)}`);
  return first;
}

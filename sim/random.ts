/**
 * Seeded randomness for the simulator, split into independent named streams.
 *
 * Every component that draws random numbers (each client, the server, each fault source) owns its
 * own stream, seeded from the run seed and the stream's name. Adding a stream, or drawing more
 * numbers from one, therefore never changes what another stream draws: a new fault knob does not
 * reshuffle the latencies of every client (turmoil does the same per host).
 *
 * The generator is seedrandom's Alea: fast (a few nanoseconds a draw) and of ample quality for
 * scheduling. Nothing here reads ambient randomness.
 */

import seedrandom from 'seedrandom';
import { assert } from '../engine/errors.js';

/** The seed of a whole run: a non-negative safe integer or a non-empty string. */
export type RunSeed = number | string;

export function validateRunSeed(seed: unknown): asserts seed is RunSeed {
  const valid =
    (typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0) ||
    (typeof seed === 'string' && seed.length > 0);
  if (!valid) {
    throw new TypeError(`seed: expected a non-negative safe integer or a non-empty string, got ${describeValue(seed)}`);
  }
}

/** The seed string of one named stream: the run seed and the name, so streams never share one. */
export function streamSeed(runSeed: RunSeed, name: string): string {
  return `nasq-sim/${String(runSeed)}/${name}`;
}

/** One independent stream of random numbers. */
export class RandomStream {
  readonly name: string;
  // Alea's state (seedrandom's algorithm, stepped here without a closure call per draw; seeded by
  // seedrandom itself, so the numbers are exactly seedrandom.alea's).
  private c: number;
  private s0: number;
  private s1: number;
  private s2: number;
  /** How many numbers this stream has handed out (for diagnostics). */
  draws = 0;

  constructor(runSeed: RunSeed, name: string) {
    assert(name.length > 0, 'RandomStream: a stream needs a name');
    this.name = name;
    const state = seedrandom.alea(streamSeed(runSeed, name), { state: true }).state() as unknown as { c: number; s0: number; s1: number; s2: number };
    this.c = state.c;
    this.s0 = state.s0;
    this.s1 = state.s1;
    this.s2 = state.s2;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  next(): number {
    this.draws += 1;
    return this.step();
  }

  /** One step of Alea (Baagoe), as seedrandom's `next`: a float in [0, 1). */
  private step(): number {
    const t = 2091639 * this.s0 + this.c * 2.3283064365386963e-10; // 2^-32
    this.s0 = this.s1;
    this.s1 = this.s2;
    this.c = t | 0;
    this.s2 = t - this.c;
    return this.s2;
  }

  /** A float in [minimum, maximum). */
  uniform(minimum: number, maximum: number): number {
    return minimum + (maximum - minimum) * this.next();
  }

  /** An integer in [0, bound). `bound` must be a positive integer of at most 2^32. */
  integer(bound: number): number {
    assert(Number.isInteger(bound) && bound > 0 && bound <= 2 ** 32, () => `integer: bad bound ${bound}`);
    return Math.floor(this.next() * bound);
  }

  /** An unsigned 32-bit integer. */
  uint32(): number {
    this.draws += 1;
    return ((this.step() * 0x100000000) | 0) >>> 0;
  }

  /** True with probability `probability`. */
  chance(probability: number): boolean {
    return this.next() < probability;
  }

  /**
   * A lognormal draw with the given median and shape sigma (heavy right tail): median * e^(sigma Z),
   * Z standard normal by Box-Muller. Math.log/exp/cos are deterministic on one Node build.
   */
  lognormal(median: number, sigma: number): number {
    const u1 = 1 - this.next(); // (0, 1]: log is finite
    const u2 = this.next();
    const normal = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return median * Math.exp(sigma * normal);
  }

  /** Picks one element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'pick: empty array');
    return items[this.integer(items.length)]!;
  }
}

/**
 * Hands out one stream per name and remembers it, so a component asking twice gets the same one.
 * Streams are kept in insertion order for listing.
 */
export class RandomStreams {
  readonly runSeed: RunSeed;
  private readonly streams = new Map<string, RandomStream>();

  constructor(runSeed: RunSeed) {
    validateRunSeed(runSeed);
    this.runSeed = runSeed;
  }

  stream(name: string): RandomStream {
    let stream = this.streams.get(name);
    if (stream === undefined) {
      stream = new RandomStream(this.runSeed, name);
      this.streams.set(name, stream);
    }
    return stream;
  }

  names(): string[] {
    return [...this.streams.keys()];
  }
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'function') return 'a function';
  return `an object (${Object.prototype.toString.call(value)})`;
}

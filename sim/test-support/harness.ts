/**
 * Helpers for the simulator's tests: a simulation with fixed latencies (so times in assertions
 * are exact), scripted clients aligned on virtual time, and error assertions.
 */

import { expect } from 'vitest';
import { type ErrorCode, NasqError } from '../../engine/errors.js';
import type { Clock } from '../../engine/ports.js';
import { defaultEpochMs } from '../server.js';
import { Simulation, type SimulationOptions } from '../simulation.js';

/** One-way latency of test simulations: a round trip is 0.2 ms plus the service time. */
export const oneWayMs = 0.1;

/** A simulation with fixed latencies and an exact client clock (sub-millisecond assertions). */
export function testSimulation(overrides: Partial<SimulationOptions> = {}): Simulation {
  return new Simulation({
    seed: 1,
    latency: { oneWayMs, jitterMs: 0, serviceMs: {} },
    clockResolutionMs: 0,
    ...overrides,
  });
}

/** Sleeps until `ms` after the start of the run (clients with no clock offset). */
export function at(clock: Clock, ms: number): Promise<void> {
  return clock.sleepUntil(defaultEpochMs + ms);
}

/** Milliseconds since the start of the run on this client's clock. */
export function elapsed(clock: Clock): number {
  return clock.now() - defaultEpochMs;
}

/** Awaits `promise` and checks that it fails with a NasqError of `code`. */
export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<NasqError> {
  let outcome: unknown;
  try {
    await promise;
    outcome = 'no error';
  } catch (error) {
    outcome = error;
  }
  if (!(outcome instanceof NasqError)) {
    expect.fail(`expected ${code}, got ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : String(outcome)}`);
  }
  expect(outcome.code).toBe(code);
  return outcome;
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function text(data: Uint8Array | undefined): string {
  return data === undefined ? '<missing>' : new TextDecoder().decode(data);
}

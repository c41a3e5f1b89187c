import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScenarioNotExercised, ScenarioViolation, expectScenarioHolds } from './testing.js';
import { EagerQueueClient } from './test-support/planted-bugs.js';
import type { ScenarioInput } from '../scenarios/schema.js';

let failureDirectory: string;
beforeAll(async () => {
  failureDirectory = await mkdtemp(join(tmpdir(), 'nasq-testing-'));
});
afterAll(async () => {
  await rm(failureDirectory, { recursive: true, force: true });
});

const scenario: ScenarioInput = {
  name: 'delayed-orders',
  description: 'orders with delivery times, two workers',
  clients: { senders: 1, receivers: 2 },
  workload: { messages: { min: 5, max: 30 }, delayedFraction: 0.5, maxDelayMs: 3_000 },
};

describe('expectScenarioHolds (the API for test authors)', () => {
  it('passes a scenario the engine keeps', async () => {
    const report = await expectScenarioHolds(scenario, { seeds: 10, seed: 3, failureDirectory });
    expect(report.failures).toBe(0);
    expect(report.seeds).toBe(10);
  });

  it('throws a violation with the shrunk run and a replay line when the engine breaks', async () => {
    const error = await expectScenarioHolds(scenario, { seeds: 50, seed: 3, failureDirectory, runOptions: { clientClass: EagerQueueClient } }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ScenarioViolation);
    const message = (error as ScenarioViolation).message;
    expect(message).toMatch(/time-order:/);
    expect(message).toMatch(/replay: npx nasq replay .*delayed-orders-3-\d+\.json/);
    expect(message).toMatch(/expectScenarioHolds\(scenario, \{ seed: 3, path: '[\d:]+' \}\)/);
  });

  it('holds the runs to what they must exercise, and to the faults the scenario schedules', async () => {
    const crashing: ScenarioInput = {
      ...scenario,
      nemesis: { faults: [{ kind: 'crash', atMs: { min: 0, max: 300 }, target: 'lock-holder' }] },
    };
    const report = await expectScenarioHolds(crashing, { seeds: 10, seed: 3, failureDirectory, requireExercised: { 'fault:crash': 10, 'header-lock:lost': 5 } });
    expect(report.scenarios[0]!.exercised['header-lock:lost']!.runs).toBeGreaterThanOrEqual(5);

    const asking = await expectScenarioHolds(crashing, { seeds: 10, seed: 3, failureDirectory, requireExercised: { 'fault:failover': 1, 'fault:crash': 10 } }).catch(
      (caught: unknown) => caught,
    );
    expect(asking).toBeInstanceOf(ScenarioNotExercised);
    expect((asking as Error).message).toBe(
      'scenario delayed-orders held, but its runs did not exercise what the test needs:\n  fault:failover: expected in at least 1 runs, seen in 0 of 10',
    );

    // A crash of a sender that is done long before it is due: scheduled, never started.
    const late: ScenarioInput = { ...scenario, workload: { messages: 1 }, nemesis: { faults: [{ kind: 'crash', atMs: 1_900, target: 'any-sender' }] }, options: { faultPhaseMs: 2_000 } };
    await expect(expectScenarioHolds(late, { seeds: 3, seed: 3, failureDirectory })).rejects.toThrow(/fault:crash: scheduled, but started in none of the 3 runs/);
  });

  it('rejects a malformed scenario, naming the field', async () => {
    await expect(expectScenarioHolds({ ...scenario, clients: { senders: 'two' as unknown as number, receivers: 1 } })).rejects.toThrow(/clients\.senders/);
  });
});

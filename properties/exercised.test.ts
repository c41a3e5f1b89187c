/**
 * What the runs exercised (exercised.ts): counted from what really happened, summed per scenario
 * over its runs and over shards, and a scheduled fault that never started is reported, so a check
 * that tested nothing of what its scenario asks for does not pass unnoticed.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinScenarioList } from '../scenarios/index.js';
import { parseScenario } from '../scenarios/schema.js';
import { check } from './check.js';
import { nominalConfig } from './config.js';
import { ExercisedTally, formatExercised, neverExercised } from './exercised.js';
import { mergeExercised } from './merge.js';
import { runScenario } from './run.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'nasq-exercised-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const builtin = (name: string) => builtinScenarioList().find((loaded) => loaded.scenario.name === name)!.scenario;

describe('what a run exercised', () => {
  it('counts the faults that started, what clients lived through and the header lock lost with its holder', async () => {
    const outcome = await runScenario(nominalConfig(builtin('crash-while-locked'), 3));
    const starts = outcome.nemesis.injected.filter((fault) => fault.phase === 'start');
    expect(starts.length).toBeGreaterThan(0);
    expect(outcome.exercised['fault:crash']).toBe(starts.length);
    expect(outcome.exercised['crash']).toBe(starts.length);
    expect(outcome.exercised['header-lock:contended']).toBeGreaterThan(0);
    // Every count is of something that happened: the unknown outcomes are those of the history.
    const unknown = outcome.history.operations.filter((operation) => operation.outcome === 'info').length;
    expect(outcome.exercised['outcome:unknown'] ?? 0).toBe(unknown);
    expect(outcome.exercised['redelivery'] ?? 0).toBe(outcome.summary.redeliveries);
    expect(Object.keys(outcome.exercised)).toEqual([...Object.keys(outcome.exercised)].sort());
  });

  it('a run without faults exercises no fault and loses no lock', async () => {
    const outcome = await runScenario(nominalConfig(builtin('smoke'), 1));
    expect(Object.keys(outcome.exercised).filter((name) => name.startsWith('fault:') || name === 'header-lock:lost' || name === 'crash')).toEqual([]);
  });
});

describe('what a check exercised', () => {
  it('sums the runs of a scenario and counts the runs that saw each event', async () => {
    const report = await check({ scenarios: [{ scenario: builtin('crash-while-locked'), source: 'builtin' }], seeds: 12, seed: 5, failureDirectory: directory }, () => 0);
    const result = report.scenarios[0]!;
    expect(result.failures).toBe(0);
    const crashes = result.exercised['fault:crash']!;
    expect(crashes.runs).toBe(12); // every run crashes someone (four crashes are scheduled in the fault phase)
    expect(crashes.count).toBeGreaterThanOrEqual(12);
    expect(result.neverExercised).toEqual([]);
    expect(formatExercised(result.exercised, result.seeds).find((line) => line.startsWith('fault:crash'))).toMatch(new RegExp(`fault:crash +${crashes.count} in 12/12 runs`));
  });

  it('reports a scheduled fault that never started (here: a crash of a sender that has already finished)', async () => {
    const late = parseScenario(
      {
        name: 'crash-too-late',
        description: 'the sender sends one message and is done long before its crash is due: the runs test nothing of it',
        clients: { senders: 1, receivers: 1 },
        workload: { messages: 1 },
        nemesis: {
          faults: [
            { kind: 'crash', atMs: 1_900, target: 'any-sender' },
            { kind: 'session-drop', atMs: 0, target: 'any-receiver' },
          ],
        },
        options: { faultPhaseMs: 2_000, settleMs: 30_000 },
      },
      'test',
    );
    const report = await check({ scenarios: [{ scenario: late, source: 'test' }], seeds: 5, seed: 1, failureDirectory: directory }, () => 0);
    const result = report.scenarios[0]!;
    expect(result.failures).toBe(0);
    expect(result.neverExercised).toEqual(['crash']);
    expect(result.exercised['fault:crash']).toBeUndefined();
    expect(result.exercised['fault:session-drop']!.runs).toBe(5);
  });

  it('merges shards: counts add up, and a fault is missing only if no shard saw it', () => {
    const one = new ExercisedTally();
    one.addRun({ 'fault:crash': 2, redelivery: 1 });
    one.addRun({ 'fault:crash': 1 });
    const two = new ExercisedTally();
    two.addRun({ 'fault:failover': 1 });
    const merged = mergeExercised([
      { exercised: one.totalsSorted(), neverExercised: ['failover'] },
      { exercised: two.totalsSorted(), neverExercised: ['partition'] },
    ]);
    expect(merged.exercised).toEqual({ 'fault:crash': { count: 3, runs: 2 }, 'fault:failover': { count: 1, runs: 1 }, redelivery: { count: 1, runs: 1 } });
    expect(merged.neverExercised).toEqual(['partition']);
    expect(neverExercised(['crash', 'pause', 'pause'], merged.exercised)).toEqual(['pause']);
  });
});

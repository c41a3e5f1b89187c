/**
 * Every checker fires on a deliberately broken engine, and `nasq check` finds each planted bug
 * within 200 seeds of a built-in scenario, shrinking it to a small counterexample that replays.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveScenarios } from '../scenarios/index.js';
import { check, replay } from './check.js';
import type { CheckerName } from './checkers.js';
import { plantedBugs } from './test-support/planted-bugs.js';

let failureDirectory: string;
beforeAll(async () => {
  failureDirectory = await mkdtemp(join(tmpdir(), 'nasq-planted-'));
});
afterAll(async () => {
  await rm(failureDirectory, { recursive: true, force: true });
});

const cases: Array<{ bug: keyof typeof plantedBugs; scenario: string; fires: CheckerName[] }> = [
  { bug: 'no-header-lock', scenario: 'smoke', fires: ['mutual-exclusion', 'header-invariants'] },
  { bug: 'unlock-before-write', scenario: 'smoke', fires: ['mutual-exclusion'] },
  { bug: 'no-fencing', scenario: 'lease-expiry', fires: ['exactly-once'] },
  { bug: 'carry-on-after-session-loss', scenario: 'session-drop', fires: ['mutual-exclusion'] },
  { bug: 'no-delivery-time-check', scenario: 'smoke', fires: ['time-order'] },
  { bug: 'free-before-body-delete', scenario: 'crash-while-locked', fires: ['exactly-once'] },
];

describe('planted bugs', () => {
  for (const { bug, scenario, fires } of cases) {
    it(`finds "${plantedBugs[bug]!.description}" in ${scenario} within 200 seeds, shrunk and replayable`, async () => {
      const runOptions = plantedBugs[bug]!.runOptions;
      const report = await check(
        { scenarios: await resolveScenarios(scenario), seeds: 200, seed: 1, runOptions, failureDirectory, shrinkRunsMax: 100 },
        () => performance.now(),
      );
      const result = report.scenarios[0]!;
      expect(result.failures, `${bug} not found in ${result.seeds} runs`).toBe(1);
      expect(report.exitCode).toBe(1);
      const failure = result.failure!;
      const fired = failure.results.filter((check) => check.validity === 'invalid').map((check) => check.checker);
      for (const checker of fires) expect(fired).toContain(checker);
      // Small: the shrunk run has few clients and messages.
      expect(failure.config.senders + failure.config.receivers).toBeLessThanOrEqual(8);
      expect(failure.replay[0]).toMatch(/^npx nasq replay .*\.json$/);
      // The failure file replays to the same trace hash (with the same broken engine).
      const replayed = await replay(failure, runOptions);
      expect(replayed.sameHash).toBe(true);
      expect(replayed.outcome.verdict).toBe('invalid');
    });
  }

  it('the same scenarios pass on the real engine', async () => {
    const report = await check(
      { scenarios: await resolveScenarios('smoke,session-drop,crash-while-locked'), seeds: 40, seed: 1, failureDirectory },
      () => performance.now(),
    );
    expect(report.failures).toBe(0);
    expect(report.exitCode).toBe(0);
  });
});

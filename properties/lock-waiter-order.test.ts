/**
 * The order in which the share grants header-lock waiters, as a scenario sets it
 * (options.randomLockWaiterOrder): first in, first out by default, or a random order drawn from the
 * seed, as Samba's racing waiters may give (docs/conformance.md). The engine must not need
 * fairness from the share: every property holds either way, and the runs count how often a
 * waiter went ahead of earlier ones (exercised event header-lock:queued-ahead).
 */

import { describe, expect, it } from 'vitest';
import { parseScenario } from '../scenarios/schema.js';
import type { FailureRecord } from './check.js';
import { nominalConfig, shareRulesOf } from './config.js';
import { describeShrunk } from './report-json.js';
import { runScenario } from './run.js';

function scenario(randomLockWaiterOrder: boolean | boolean[]) {
  return parseScenario(
    {
      name: 'waiter-order',
      description: 'eight clients queue for the header lock',
      clients: { senders: 4, receivers: 4 },
      workload: { messages: 60 },
      options: { faultPhaseMs: 2_000, randomLockWaiterOrder },
    },
    'lock-waiter-order.test.ts',
  );
}

describe("the share's order of lock waiters in a scenario", () => {
  it('queues no waiter ahead by default, many in a random order; every property holds', async () => {
    const queuedAhead = { fifo: 0, random: 0 };
    const contended = { fifo: 0, random: 0 };
    for (let seed = 1; seed <= 4; seed += 1) {
      for (const [random, key] of [[false, 'fifo'], [true, 'random']] as const) {
        const config = nominalConfig(scenario(random), seed);
        expect(config.randomLockWaiterOrder).toBe(random);
        const outcome = await runScenario(config);
        expect(outcome.verdict, `seed ${seed}, ${key}: ${outcome.results.filter((result) => result.validity !== 'valid').map((result) => result.explanation).join('; ')}`).toBe('valid');
        queuedAhead[key] += outcome.exercised['header-lock:queued-ahead'] ?? 0;
        contended[key] += outcome.exercised['header-lock:contended'] ?? 0;
      }
    }
    expect(contended.fifo).toBeGreaterThan(50);
    expect(queuedAhead.fifo).toBe(0);
    // Roughly half of the waiters that found others queued go somewhere ahead of the last place.
    expect(queuedAhead.random).toBeGreaterThan(contended.random / 10);
  });

  it('names the share\'s rules a run chose (nasq run and the smallest failing run say them), none by default', () => {
    expect(shareRulesOf(nominalConfig(scenario(false), 1))).toEqual([]);
    const racing = nominalConfig(scenario(true), 1);
    expect(shareRulesOf(racing)).toEqual(['lock waiters granted in a random order']);
    expect(shareRulesOf({ ...racing, durableLocksNeedSoleOpen: true })).toEqual(['lock waiters granted in a random order', "durable locks kept only for a sole opener (Samba's rule)"]);
    const failure = { config: racing, operations: [], shrinkSteps: 3, summary: { sendsOk: 5, acksOk: 4 } } as unknown as FailureRecord;
    expect(describeShrunk(failure)).toMatch(/0 faults \(none\), share: lock waiters granted in a random order, after 3 shrink runs/);
    expect(describeShrunk({ ...failure, config: nominalConfig(scenario(false), 1) })).not.toMatch(/share:/);
  });

  it('refuses an order that is not a boolean, saying what was expected', () => {
    expect(() => parseScenario({ ...scenario(false), options: { randomLockWaiterOrder: 'samba' } }, 'bad.json')).toThrow(
      /options\.randomLockWaiterOrder: expected true, false, or a non-empty list of them .*found "samba"/,
    );
  });
});

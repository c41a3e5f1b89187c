/**
 * The share's rule for durable handles, as a scenario sets it (options.durableLocksNeedSoleOpen):
 * clients that ask for durable handles keep the header lock across a dropped session on a share
 * that keeps durable locks (the default), and lose it at once on one with Samba's rule, where the
 * kernel file, open on every client, never has a sole opener (docs/conformance.md). Every
 * property holds either way.
 */

import { describe, expect, it } from 'vitest';
import { parseScenario } from '../scenarios/schema.js';
import { nominalConfig } from './config.js';
import { runScenario } from './run.js';

function scenario(durableLocksNeedSoleOpen: boolean) {
  return parseScenario({
    name: 'durable-rule',
    description: 'the holder of the header lock loses its session; its clients ask for durable handles',
    clients: { senders: 2, receivers: 2 },
    workload: { messages: 30 },
    queue: { leaseMs: 1_000, durableHandles: true },
    nemesis: { faults: [{ kind: 'session-drop', atMs: { min: 0, max: 1_200 }, target: 'lock-holder' }] },
    options: { faultPhaseMs: 2_000, settleMs: 60_000, durableLocksNeedSoleOpen },
  }, 'durable-rule.test.ts');
}

describe("the share's durable-handle rule in a scenario", () => {
  it('keeps the header lock of a dropped durable holder by default, loses it under Samba\'s rule; every property holds', async () => {
    const lost = { kept: 0, samba: 0 };
    for (let seed = 1; seed <= 6; seed += 1) {
      for (const [rule, key] of [[false, 'kept'], [true, 'samba']] as const) {
        const config = nominalConfig(scenario(rule), seed);
        expect(config.durableLocksNeedSoleOpen).toBe(rule);
        const outcome = await runScenario(config);
        expect(outcome.verdict, `seed ${seed}, rule ${key}: ${outcome.results.filter((result) => result.validity !== 'valid').map((result) => result.explanation).join('; ')}`).toBe('valid');
        lost[key] += outcome.exercised['header-lock:lost'] ?? 0;
      }
    }
    expect(lost.kept).toBe(0);
    expect(lost.samba).toBeGreaterThanOrEqual(5);
  });

  it('refuses a rule that is not a boolean, saying what was expected', () => {
    expect(() => parseScenario({ ...scenario(false), options: { durableLocksNeedSoleOpen: 'samba' } }, 'bad.json')).toThrow(/options\.durableLocksNeedSoleOpen: expected true, false, or a non-empty list of them .*found "samba"/);
  });
});

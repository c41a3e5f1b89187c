/**
 * For test authors: check a scenario of your own from any test runner (vitest, node:test, jest)
 * and get the same shrinking, failure file and one-line replay as `nasq check`.
 *
 * ```ts
 * import { it } from 'vitest';
 * import { expectScenarioHolds } from 'nasq/testing';
 *
 * it('our queue settings survive a failover', async () => {
 *   await expectScenarioHolds({
 *     name: 'orders-failover',
 *     description: 'four order workers through a controller failover',
 *     clients: { senders: 2, receivers: 2 },
 *     workload: { messages: 40 },
 *     queue: { leaseMs: 10_000, durable: true },
 *     nemesis: { faults: [{ kind: 'failover', atMs: { min: 0, max: 2_000 }, durationMs: 5_000, target: 'server' }] },
 *   }, { seeds: 50, seed: 42 });
 * });
 * ```
 *
 * On a violation it throws a `ScenarioViolation` whose message names the broken properties, the
 * smallest failing run and the replay command.
 */

import { parseScenario, type ScenarioInput } from '../scenarios/schema.js';
import { check, type CheckReport, type FailureRecord } from './check.js';
import type { RunOptions } from './run.js';

export interface ExpectScenarioOptions {
  /** Runs (seeds) to try. Default 50. */
  readonly seeds?: number;
  /** fast-check seed; pin it for a reproducible test. Default 1. */
  readonly seed?: number;
  /** Replay one counterexample path printed by an earlier failure. */
  readonly path?: string;
  /** Where the failure file goes. Default '.nasq/failures'. */
  readonly failureDirectory?: string;
  /** Most runs spent shrinking. Default 300. */
  readonly shrinkRunsMax?: number;
  /** For nasq's own tests: a deliberately broken engine. */
  readonly runOptions?: RunOptions;
  /** Wall clock for the report's times (ms). Default: none (times reported as 0). */
  readonly wallClock?: () => number;
}

export class ScenarioViolation extends Error {
  constructor(readonly failure: FailureRecord) {
    const violations = failure.results
      .filter((result) => result.validity === 'invalid')
      .map((result) => `  ${result.checker}: ${result.explanation}`)
      .join('\n');
    const { config } = failure;
    super(
      [
        `scenario ${failure.scenario} broke a ${failure.failedKind} property:`,
        violations,
        `smallest failing run: ${config.senders} senders, ${config.receivers} receivers, ${config.messages} messages, faults: ${config.faults.map((fault) => fault.kind).join(', ') || 'none'} (simulation seed ${config.simulationSeed})`,
        `failure file: ${failure.file}`,
        `replay: ${failure.replay[0]}`,
        `or: ${failure.replay[1]}`,
      ].join('\n'),
    );
    this.name = 'ScenarioViolation';
  }
}

/** Runs a scenario for `seeds` seeds; throws a ScenarioViolation on the first (shrunk) failure. */
export async function expectScenarioHolds(input: ScenarioInput, options: ExpectScenarioOptions = {}): Promise<CheckReport> {
  const scenario = parseScenario(input, `test scenario ${JSON.stringify(input.name)}`);
  const report = await check(
    {
      scenarios: [{ scenario, source: 'test' }],
      seeds: options.seeds ?? 50,
      seed: options.seed ?? 1,
      ...(options.path === undefined ? {} : { path: options.path }),
      ...(options.failureDirectory === undefined ? {} : { failureDirectory: options.failureDirectory }),
      ...(options.shrinkRunsMax === undefined ? {} : { shrinkRunsMax: options.shrinkRunsMax }),
      ...(options.runOptions === undefined ? {} : { runOptions: options.runOptions }),
    },
    options.wallClock ?? (() => 0),
  );
  const failure = report.scenarios[0]?.failure;
  if (failure !== undefined) throw new ScenarioViolation(failure);
  return report;
}

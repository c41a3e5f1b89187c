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
  /**
   * Events the runs must have exercised (properties/exercised.ts names them): event -> the least
   * number of runs that saw it, e.g. `{ 'header-lock:lost': 5, 'fault:failover': 40 }`. Short of
   * it, a `ScenarioNotExercised` is thrown. Whatever this says, a fault the scenario schedules that
   * started in none of the runs throws too: the test would prove nothing about it.
   */
  readonly requireExercised?: Readonly<Record<string, number>>;
}

/** The scenario held, but its runs did not exercise what the test asks (or what it schedules). */
export class ScenarioNotExercised extends Error {
  constructor(
    readonly scenario: string,
    readonly shortfalls: readonly string[],
  ) {
    super([`scenario ${scenario} held, but its runs did not exercise what the test needs:`, ...shortfalls.map((line) => `  ${line}`)].join('\n'));
    this.name = 'ScenarioNotExercised';
  }
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
  const result = report.scenarios[0];
  if (result?.failure !== undefined) throw new ScenarioViolation(result.failure);
  if (result !== undefined) {
    const shortfalls = result.neverExercised.map((kind) => `fault:${kind}: scheduled, but started in none of the ${result.seeds} runs`);
    for (const [event, runs] of Object.entries(options.requireExercised ?? {})) {
      const seen = result.exercised[event]?.runs ?? 0;
      if (seen < runs) shortfalls.push(`${event}: expected in at least ${runs} runs, seen in ${seen} of ${result.seeds}`);
    }
    if (shortfalls.length > 0) throw new ScenarioNotExercised(result.name, shortfalls);
  }
  return report;
}

/**
 * What a check does with one run, with a failing run, and with the smallest failing run, as pure
 * data in and data out so the same code runs in the main thread or in a worker thread:
 *
 * - `digestOf`: what the scheduler keeps of a run (no history, no simulation: those cannot cross
 *   a thread boundary and are not needed to count and order runs).
 * - `shrinkFrom`: fast-check shrinks run `i` of a scenario, starting from the value its own
 *   `fc.check` would test as run `i` (path `i`), so the shrunk counterexample and its path are
 *   those of a sequential check whatever the number of threads.
 * - `traceFailure`: the smallest failing run again, with its whole trace kept, reduced to what a
 *   failure file holds.
 */

import fc from 'fast-check';
import type { Scenario } from '../scenarios/schema.js';
import type { CheckResult } from './checkers.js';
import { configArbitrary, type RunConfig } from './config.js';
import { formatOperation } from './history.js';
import { runScenario, type RunOptions, type RunOutcome } from './run.js';

/** What the scheduler keeps of a run: everything of a RunOutcome that is plain data. */
export type RunDigest = Pick<RunOutcome, 'config' | 'verdict' | 'failedKind' | 'results' | 'stats' | 'summary' | 'simulationError' | 'metrics' | 'exercised'>;

export function digestOf(outcome: RunOutcome): RunDigest {
  const { config, verdict, failedKind, results, stats, summary, simulationError, metrics, exercised } = outcome;
  return { config, verdict, failedKind, results, stats, summary, simulationError, exercised, ...(metrics === undefined ? {} : { metrics }) };
}

export interface ShrinkTask {
  readonly seed: number;
  /**
   * Where to start: a run index (`12`: the lowest failing run) or a whole counterexample path
   * printed by an earlier failure (`12:0:3`).
   */
  readonly path: string;
  /** Shrink at all (false: the failing run as found). */
  readonly shrink: boolean;
  /** Most runs spent shrinking. */
  readonly shrinkRunsMax: number;
  /** Stop shrinking after this much wall time (fast-check's interruptAfterTimeLimit), ms. */
  readonly timeLimitMs?: number;
}

export interface ShrinkResult {
  /** The run at the path itself. */
  readonly first: RunDigest;
  /** The smallest failing run found, when the first one failed. */
  readonly shrunk: { readonly config: RunConfig; readonly path: string; readonly shrinkSteps: number } | undefined;
  /** The time limit stopped fast-check. */
  readonly interrupted: boolean;
}

/**
 * Runs the configuration at `task.path` and, if it fails, lets fast-check shrink it. Starting from
 * path `i` gives the same counterexample, path and shrink steps as a sequential `fc.check` that
 * found its first failure at run `i`.
 */
export async function shrinkFrom(scenario: Scenario, task: ShrinkTask, runOptions: RunOptions | undefined, onStep?: (step: number) => void): Promise<ShrinkResult> {
  let shrinkSteps = 0;
  let first: RunDigest | undefined;
  const property = fc.asyncProperty(configArbitrary(scenario), async (config) => {
    if (first !== undefined) {
      // Shrinking: past the budget, stop looking for smaller failures (keep the best so far).
      shrinkSteps += 1;
      onStep?.(shrinkSteps);
      if (shrinkSteps > task.shrinkRunsMax) return true;
    }
    const outcome = await runScenario(config, runOptions);
    first ??= digestOf(outcome);
    return outcome.verdict !== 'invalid';
  });
  const result = await fc.check(property, {
    seed: task.seed,
    path: task.path,
    numRuns: 1,
    endOnFailure: !task.shrink,
    ...(task.timeLimitMs === undefined ? {} : { interruptAfterTimeLimit: Math.max(1, Math.floor(task.timeLimitMs)) }),
    markInterruptAsFailure: false,
  });
  // The property threw on the run at the path: a bug of the harness (engine errors are caught by
  // the simulation and judged). Never hide it.
  if (result.errorInstance !== null && shrinkSteps === 0) throw result.errorInstance;
  if (first === undefined) throw new Error(`fast-check ran nothing at path ${task.path} of scenario ${scenario.name} (seed ${task.seed})`);
  if (!result.failed || result.counterexample === null) return { first, shrunk: undefined, interrupted: result.interrupted };
  const path = result.counterexamplePath ?? task.path;
  if (path.split(':')[0] !== task.path.split(':')[0]) throw new Error(`shrinking from path ${task.path} ended on path ${path}, which starts at another run`);
  return { first, shrunk: { config: result.counterexample[0], path, shrinkSteps }, interrupted: result.interrupted };
}

/** What a failure file holds about the failing run itself. */
export interface FailureEvidence {
  readonly failedKind: 'correctness' | 'liveness';
  readonly results: CheckResult[];
  readonly summary: RunOutcome['summary'];
  readonly traceHash: string;
  readonly simulatedMs: number;
  /** Operations the failing checkers point at, one line each. */
  readonly operations: string[];
  /** The trace around the first violation. */
  readonly trace: string[];
}

/** Lines of trace kept on each side of the first violation. */
const traceContextLines = 40;
/** Most operations named in a failure file. */
const operationsMax = 40;

/** Runs a failing configuration again with its whole trace kept. */
export async function traceFailure(config: RunConfig, runOptions: RunOptions | undefined): Promise<FailureEvidence> {
  const lines: string[] = [];
  const outcome = await runScenario(config, { ...runOptions, trace: { windowSize: 0, sink: { write: (line) => lines.push(line) } } });
  const failing = outcome.results.filter((result) => result.validity === 'invalid');
  const firstPosition = Math.min(
    ...failing.flatMap((result) => result.tracePositions),
    ...failing.flatMap((result) => result.operations.map((index) => outcome.history.operations[index]?.invokeTrace ?? Number.POSITIVE_INFINITY)),
  );
  const center = Number.isFinite(firstPosition) ? firstPosition : lines.length - 1;
  const trace = lines.slice(Math.max(0, center - traceContextLines), center + traceContextLines);
  const operations = [...new Set(failing.flatMap((result) => result.operations))]
    .sort((a, b) => a - b)
    .slice(0, operationsMax)
    .map((index) => formatOperation(outcome.history.operations[index]!));
  return {
    failedKind: outcome.failedKind ?? 'correctness',
    results: outcome.results,
    summary: outcome.summary,
    traceHash: outcome.stats.traceHash,
    simulatedMs: outcome.stats.simulatedMs,
    operations,
    trace,
  };
}

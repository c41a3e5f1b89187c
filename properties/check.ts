/**
 * The check: for each scenario, fast-check draws run configurations from the scenario's
 * parameters, runs each in the simulator and checks it; the first failure is shrunk to a small
 * workload and fault schedule, re-run with its whole trace kept, and written to a failure file
 * with a one-line replay command.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import type { LoadedScenario } from '../scenarios/index.js';
import { formatRecord, type TraceRecord } from '../sim/trace.js';
import type { CheckResult } from './checkers.js';
import { configArbitrary, type RunConfig } from './config.js';
import { formatOperation } from './history.js';
import { runScenario, type RunOptions, type RunOutcome, type RunSummary } from './run.js';

export interface CheckOptions {
  readonly scenarios: readonly LoadedScenario[];
  /** Runs (seeds) per scenario. */
  readonly seeds: number;
  /** fast-check seed: the same seed draws the same configurations. */
  readonly seed: number;
  /** Replay one counterexample path of fast-check (with one scenario). */
  readonly path?: string;
  /** Stop starting new runs after this much wall time, ms (split over the scenarios). */
  readonly timeBudgetMs?: number;
  /** Where failure files go. Default '.nasq/failures'. */
  readonly failureDirectory?: string;
  /** Shrink a failure to a smaller one (default true). */
  readonly shrink?: boolean;
  /** Most runs spent shrinking one failure. Default 300. */
  readonly shrinkRunsMax?: number;
  /** Planted bugs for tests. */
  readonly runOptions?: RunOptions;
  /** Told after every run and failure. */
  readonly onProgress?: (event: ProgressEvent) => void;
  /** How a replay command starts. Default 'npx nasq'. */
  readonly command?: string;
}

export type ProgressEvent =
  | { type: 'run'; scenario: string; run: number; seeds: number; outcome: RunOutcome }
  | { type: 'shrink'; scenario: string; step: number }
  | { type: 'scenario'; result: ScenarioCheckResult };

export interface FailureRecord {
  readonly version: 1;
  readonly scenario: string;
  readonly scenarioSource: string;
  readonly fastCheck: { readonly seed: number; readonly path: string };
  readonly shrinkSteps: number;
  readonly config: RunConfig;
  readonly failedKind: 'correctness' | 'liveness';
  readonly results: CheckResult[];
  readonly summary: RunSummary;
  readonly traceHash: string;
  readonly simulatedMs: number;
  /** Operations the failing checkers point at, one line each. */
  readonly operations: string[];
  /** The trace around the first violation. */
  readonly trace: string[];
  readonly replay: string[];
  readonly file: string;
}

export interface ScenarioCheckResult {
  readonly name: string;
  readonly source: string;
  /** Runs made (not counting shrinking). */
  readonly seeds: number;
  readonly failures: number;
  readonly wallMs: number;
  readonly fsOps: number;
  readonly simulatedMs: number;
  readonly replay: string[];
  readonly failure: FailureRecord | undefined;
  /** Runs whose verdict was unknown (e.g. the RAID array was lost). */
  readonly unknown: number;
  /** The time budget ran out before every seed ran. */
  readonly interrupted: boolean;
}

export interface CheckReport {
  readonly seeds: number;
  readonly failures: number;
  readonly wallMs: number;
  readonly fsOps: number;
  readonly seed: number;
  readonly scenarios: ScenarioCheckResult[];
  /** 0 all hold, 1 a correctness violation, 3 only liveness violations. */
  readonly exitCode: 0 | 1 | 3;
}

/** Wall time from the host, for the report only (the runs themselves never read it). */
export type WallClock = () => number;

export async function check(options: CheckOptions, wallClock: WallClock): Promise<CheckReport> {
  const started = wallClock();
  const results: ScenarioCheckResult[] = [];
  for (const [index, loaded] of options.scenarios.entries()) {
    const remaining = options.scenarios.length - index;
    const budgetLeft = options.timeBudgetMs === undefined ? undefined : Math.max(1, options.timeBudgetMs - (wallClock() - started));
    const result = await checkScenario(loaded, options, budgetLeft === undefined ? undefined : budgetLeft / remaining, wallClock);
    results.push(result);
    options.onProgress?.({ type: 'scenario', result });
  }
  const failures = results.reduce((sum, result) => sum + result.failures, 0);
  const correctness = results.some((result) => result.failure?.failedKind === 'correctness');
  return {
    seeds: results.reduce((sum, result) => sum + result.seeds, 0),
    failures,
    wallMs: wallClock() - started,
    fsOps: results.reduce((sum, result) => sum + result.fsOps, 0),
    seed: options.seed,
    scenarios: results,
    exitCode: failures === 0 ? 0 : correctness ? 1 : 3,
  };
}

async function checkScenario(
  loaded: LoadedScenario,
  options: CheckOptions,
  budgetMs: number | undefined,
  wallClock: WallClock,
): Promise<ScenarioCheckResult> {
  const { scenario } = loaded;
  const started = wallClock();
  let runs = 0;
  let shrinkSteps = 0;
  let failedOnce = false;
  let fsOps = 0;
  let simulatedMs = 0;
  let unknown = 0;
  const shrinkRunsMax = options.shrinkRunsMax ?? 300;
  const property = fc.asyncProperty(configArbitrary(scenario), async (config) => {
    if (failedOnce) {
      // Shrinking: past the budget, stop looking for smaller failures (keep the best so far).
      shrinkSteps += 1;
      options.onProgress?.({ type: 'shrink', scenario: scenario.name, step: shrinkSteps });
      if (shrinkSteps > shrinkRunsMax) return true;
    }
    const outcome = await runScenario(config, options.runOptions);
    if (!failedOnce) {
      runs += 1;
      fsOps += outcome.stats.fsOps;
      simulatedMs += outcome.stats.simulatedMs;
      if (outcome.verdict === 'unknown') unknown += 1;
      options.onProgress?.({ type: 'run', scenario: scenario.name, run: runs, seeds: options.seeds, outcome });
    }
    if (outcome.verdict === 'invalid') {
      failedOnce = true;
      return false;
    }
    return true;
  });
  const result = await fc.check(property, {
    seed: options.seed,
    numRuns: options.seeds,
    ...(options.path === undefined ? {} : { path: options.path }),
    endOnFailure: options.shrink === false,
    ...(budgetMs === undefined ? {} : { interruptAfterTimeLimit: Math.max(1, Math.floor(budgetMs)) }),
    markInterruptAsFailure: false,
  });
  let failure: FailureRecord | undefined;
  if (result.failed) {
    // The property threw: a bug of the harness (engine errors are caught by the simulation and
    // judged). Never hide it.
    if (result.errorInstance !== null && !failedOnce) throw result.errorInstance;
    if (result.counterexample !== null) {
      const [config] = result.counterexample;
      failure = await recordFailure(loaded, config, result.seed, result.counterexamplePath ?? '', shrinkSteps, options);
    }
  }
  return {
    name: scenario.name,
    source: loaded.source,
    seeds: runs,
    failures: failure === undefined ? 0 : 1,
    wallMs: wallClock() - started,
    fsOps,
    simulatedMs,
    replay: failure?.replay ?? [],
    failure,
    unknown,
    interrupted: result.interrupted,
  };
}

/** Re-runs a failing configuration with its whole trace kept, and writes the failure file. */
async function recordFailure(
  loaded: LoadedScenario,
  config: RunConfig,
  fastCheckSeed: number,
  path: string,
  shrinkSteps: number,
  options: CheckOptions,
): Promise<FailureRecord> {
  const lines: string[] = [];
  const outcome = await runScenario(config, { ...options.runOptions, trace: { windowSize: 0, sink: { write: (line) => lines.push(line) } } });
  const failing = outcome.results.filter((result) => result.validity === 'invalid');
  const firstPosition = Math.min(...failing.flatMap((result) => result.tracePositions), ...failing.flatMap((result) => result.operations.map((index) => outcome.history.operations[index]?.invokeTrace ?? Number.POSITIVE_INFINITY)));
  const center = Number.isFinite(firstPosition) ? firstPosition : lines.length - 1;
  const trace = lines.slice(Math.max(0, center - 40), center + 40);
  const operations = [...new Set(failing.flatMap((result) => result.operations))]
    .sort((a, b) => a - b)
    .slice(0, 40)
    .map((index) => formatOperation(outcome.history.operations[index]!));
  const directory = options.failureDirectory ?? join('.nasq', 'failures');
  const file = join(directory, `${loaded.scenario.name}-${fastCheckSeed}-${config.simulationSeed}.json`);
  const command = options.command ?? 'npx nasq';
  const scenarioArgument = loaded.source === 'builtin' ? loaded.scenario.name : loaded.source;
  const replay = [
    `${command} replay ${file}`,
    loaded.source === 'test'
      ? `expectScenarioHolds(scenario, { seed: ${fastCheckSeed}, path: '${path}' })`
      : `${command} check --scenario ${scenarioArgument} --seed ${fastCheckSeed} --path ${path}`,
  ];
  const record: FailureRecord = {
    version: 1,
    scenario: loaded.scenario.name,
    scenarioSource: loaded.source,
    fastCheck: { seed: fastCheckSeed, path },
    shrinkSteps,
    config,
    failedKind: outcome.failedKind ?? 'correctness',
    results: outcome.results,
    summary: outcome.summary,
    traceHash: outcome.stats.traceHash,
    simulatedMs: outcome.stats.simulatedMs,
    operations,
    trace,
    replay,
    file,
  };
  await mkdir(directory, { recursive: true });
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

/** Runs a failure file's configuration again: same trace hash when nothing changed. */
export async function replay(record: FailureRecord, runOptions?: RunOptions): Promise<{ outcome: RunOutcome; sameHash: boolean }> {
  const outcome = await runScenario(record.config, runOptions);
  return { outcome, sameHash: outcome.stats.traceHash === record.traceHash };
}

export function traceLines(records: readonly TraceRecord[]): string[] {
  return records.map(formatRecord);
}

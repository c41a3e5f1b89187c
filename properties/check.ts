/**
 * The check: for each scenario, fast-check draws run configurations from the scenario's
 * parameters, runs each in the simulator and checks it; the lowest-numbered failing run is shrunk
 * to a small workload and fault schedule, re-run with its whole trace kept, and written to a
 * failure file with a one-line replay command.
 *
 * Runs happen in this thread (`workers: 1`, the default of the API) or on worker threads, and a
 * shard makes only a deterministic part of them. What is reported never depends on either:
 *
 * - run `i` of a scenario has the configuration fast-check's `fc.check` with the same seed would
 *   test as its run `i` (run-plan.ts), whatever thread makes it;
 * - the failure kept is the failing run with the LOWEST index (not the first to finish); runs past
 *   it are neither counted nor reported, as a sequential check would never have made them;
 * - that run is shrunk by fast-check from path `i`, in one place (failure.ts), so the shrunk
 *   counterexample, its path `i:...` and the failure file are those of a sequential check;
 * - progress events come in run order, scenario after scenario.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedScenario } from '../scenarios/index.js';
import { formatRecord, type TraceRecord } from '../sim/trace.js';
import { type BuildComparison, type BuildStamp, compareBuild, currentBuild } from './build.js';
import { inThreadExecutor, poolExecutor, type FailureAnswer, type RunExecutor } from './check-executor.js';
export type { RunExecutor } from './check-executor.js';
import { settingsOf } from './check-worker.js';
import type { CheckResult } from './checkers.js';
import type { RunConfig } from './config.js';
import { ExercisedTally, neverExercised, type ExercisedTotals } from './exercised.js';
import type { RunDigest } from './failure.js';
import { RunConfigSource, shardRunCount, shardRunIndexes, validateShard, type Shard } from './run-plan.js';
import { runScenario, type RunOptions, type RunOutcome, type RunSummary } from './run.js';

export type { RunDigest } from './failure.js';
export type { Shard } from './run-plan.js';

export interface CheckOptions {
  readonly scenarios: readonly LoadedScenario[];
  /** Runs (seeds) per scenario. */
  readonly seeds: number;
  /** fast-check seed: the same seed draws the same configurations. */
  readonly seed: number;
  /**
   * Replay one counterexample path of fast-check (with one scenario): `i:s1:s2...` is run `i` of
   * the scenario (0-based, the same run whatever the workers or shard), then shrink steps.
   */
  readonly path?: string;
  /** Stop starting new runs after this much wall time, ms (split over the scenarios). */
  readonly timeBudgetMs?: number;
  /** Where failure files go. Default '.nasq/failures'. */
  readonly failureDirectory?: string;
  /** Shrink a failure to a smaller one (default true). */
  readonly shrink?: boolean;
  /** Most runs spent shrinking one failure. Default 300. */
  readonly shrinkRunsMax?: number;
  /**
   * Planted bugs for tests, metrics for reports. With worker threads only the plain-data ones
   * (`metrics` of class MetricsCollector, `checkEveryCommit`) cross, rebuilt in each worker.
   */
  readonly runOptions?: RunOptions;
  /** Told after every run and failure, in run order. */
  readonly onProgress?: (event: ProgressEvent) => void;
  /** How a replay command starts. Default 'npx nasq'. */
  readonly command?: string;
  /**
   * Worker threads that make the runs. Default 1: this thread, no worker. Results, failures and
   * their order do not depend on it.
   */
  readonly workers?: number;
  /** Make only shard `index` of `count`: run indexes i with i mod count == index - 1. */
  readonly shard?: Shard;
  /**
   * Run every `determinism`-th run (run indexes divisible by it) a second time, on whichever
   * thread is free, and fail the check with a NondeterminismError if the two trace hashes differ:
   * a seed that does not replay makes every failure file worthless. Default: off.
   */
  readonly determinism?: number;
  /**
   * For nasq's own tests: the worker entry module (default the compiled
   * dist/properties/check-worker.js) and a name it resolves to run options in each worker. With
   * this, even `workers: 1` runs on a worker thread.
   */
  readonly worker?: { readonly entry?: URL | string; readonly runOptionsName?: string };
}

export type ProgressEvent =
  | { type: 'run'; scenario: string; run: number; runIndex: number; seeds: number; outcome: RunDigest }
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
  /** The code and Node.js that made the run (absent in files written before it was kept). */
  readonly build?: BuildStamp;
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
  /** The run index (0-based) of the failure: the first number of its path. */
  readonly failureRun?: number | undefined;
  /** What the runs exercised, summed: event -> { count, runs } (exercised.ts). */
  readonly exercised: ExercisedTotals;
  /** Fault kinds some run scheduled that started in none: the scenario's faults went untested. */
  readonly neverExercised: string[];
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
  /** Seeds asked per scenario (a shard makes part of them). */
  readonly seedsPerScenario?: number;
  /** The shard this report covers; absent: every run. */
  readonly shard?: Shard | undefined;
  /** The code and Node.js that ran the check (absent in reports of an older nasq). */
  readonly build?: BuildStamp;
}

/** A run gave two different traces from one configuration: the simulation is not deterministic. */
export class NondeterminismError extends Error {
  constructor(
    readonly scenario: string,
    readonly runIndex: number,
    readonly seed: number,
    readonly traceHashes: readonly [string, string],
    readonly replay: string,
  ) {
    super(
      `run ${runIndex} of scenario ${scenario} (seed ${seed}) is not deterministic: run twice from one configuration it gave trace hashes ${traceHashes[0]} and ${traceHashes[1]}. ` +
        `Something outside the seed reached the run (ambient time or randomness, state kept between runs, iteration over something unordered). Run it twice: ${replay}`,
    );
    this.name = 'NondeterminismError';
  }
}

/** Wall time from the host, for the report only (the runs themselves never read it). */
export type WallClock = () => number;

/** Most worker threads: a bound on everything. */
export const workersMax = 256;

export async function check(options: CheckOptions, wallClock: WallClock): Promise<CheckReport> {
  const workers = options.workers ?? 1;
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > workersMax) throw new RangeError(`workers: expected an integer from 1 to ${workersMax}, got ${workers}`);
  // More threads than runs would only start idle workers (a path replays one run, shrinking in order).
  const runs = options.path !== undefined ? 1 : options.scenarios.length * shardRunCount(options.seeds, options.shard);
  const executor = createExecutor(options, Math.max(1, Math.min(workers, runs)));
  try {
    return await checkOn(executor, options, wallClock);
  } finally {
    await executor.close();
  }
}

/** The check on an executor of the caller's (tests: one that finishes runs out of order). Does not close it. */
export async function checkOn(executor: RunExecutor, options: CheckOptions, wallClock: WallClock): Promise<CheckReport> {
  if (options.shard !== undefined) validateShard(options.shard);
  if (options.path !== undefined && options.shard !== undefined) throw new RangeError('path replays one run: it takes no shard');
  const started = wallClock();
  const events = new OrderedEvents(options.scenarios.length, options.onProgress);
  const results = options.path === undefined ? await schedule(options, executor, events, wallClock, started) : await replayPaths(options, options.path, executor, events, wallClock);
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
    seedsPerScenario: options.seeds,
    shard: options.shard,
    build: await currentBuild(),
  };
}

function createExecutor(options: CheckOptions, workers: number): RunExecutor {
  if (workers === 1 && options.worker === undefined) return inThreadExecutor(options.runOptions);
  const settings = settingsOf(options.runOptions);
  if (settings === undefined) {
    throw new RangeError(
      'runOptions hold functions (a client class, a ports wrapper, a trace sink), which cannot cross a thread boundary: run with workers: 1, or give worker.runOptionsName with a worker entry that resolves the name',
    );
  }
  const runOptionsName = options.worker?.runOptionsName;
  return poolExecutor({
    workers,
    ...(options.worker?.entry === undefined ? {} : { entry: options.worker.entry }),
    settings: { ...settings, ...(runOptionsName === undefined ? {} : { runOptionsName }) },
  });
}

/**
 * Runs the scenarios' runs in order, up to `executor.concurrency` at a time; the next scenario's
 * runs start as soon as the previous one stops starting runs (its last runs, and the shrinking of
 * its failure, overlap them).
 */
async function schedule(options: CheckOptions, executor: RunExecutor, events: OrderedEvents, wallClock: WallClock, started: number): Promise<ScenarioCheckResult[]> {
  const slots = new Slots(executor.concurrency);
  const state = { aborted: false };
  const results: Array<Promise<ScenarioCheckResult>> = [];
  let previousStarted: Promise<void> = Promise.resolve();
  for (const [position, loaded] of options.scenarios.entries()) {
    let allStarted!: () => void;
    const startedAll = new Promise<void>((resolve) => {
      allStarted = resolve;
    });
    const after = previousStarted;
    results.push(
      after
        .then(() => checkScenario({ loaded, position, options, executor, events, wallClock, started, slots, state, allStarted }))
        .catch((error: unknown) => {
          state.aborted = true;
          throw error;
        })
        .finally(allStarted),
    );
    previousStarted = startedAll;
  }
  // On an error, the other scenarios stop starting runs; wait for the runs in flight (they hold
  // the pool), then throw the first scenario's error.
  const settled = await Promise.allSettled(results);
  const failed = settled.find((result) => result.status === 'rejected' && !(result.reason instanceof CheckAborted));
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  return settled.map((result) => (result as PromiseFulfilledResult<ScenarioCheckResult>).value);
}

/** A scenario stopped because another one threw. */
class CheckAborted extends Error {}

interface ScenarioContext {
  readonly loaded: LoadedScenario;
  readonly position: number;
  readonly options: CheckOptions;
  readonly executor: RunExecutor;
  readonly events: OrderedEvents;
  readonly wallClock: WallClock;
  /** When the check started (wall clock). */
  readonly started: number;
  readonly slots: Slots;
  readonly state: { aborted: boolean };
  /** Called once this scenario starts no more runs. */
  readonly allStarted: () => void;
}

type RunEntry = { readonly digest: RunDigest } | { readonly error: unknown };

async function checkScenario(context: ScenarioContext): Promise<ScenarioCheckResult> {
  const { loaded, position, options, executor, events, wallClock, slots, state } = context;
  const { scenario } = loaded;
  const scenarioStarted = wallClock();
  const planned = shardRunCount(options.seeds, options.shard);
  const remaining = options.scenarios.length - position;
  const deadline =
    options.timeBudgetMs === undefined ? undefined : scenarioStarted + Math.max(1, options.timeBudgetMs - (scenarioStarted - context.started)) / remaining;
  const configs = new RunConfigSource(scenario, options.seed, options.seeds);
  /** Run indexes started and not yet counted, in order (at most the runs in flight, and those done early). */
  const waiting: number[] = [];
  /** Finished runs not yet counted: a run is counted, reported and let go in run order. */
  const entries = new Map<number, RunEntry>();
  /** The lowest run index that failed or threw: no run past it counts. */
  let lowestBad: number | undefined;
  let counted = 0;
  let fsOps = 0;
  let simulatedMs = 0;
  let unknown = 0;
  let harnessError: { readonly error: unknown } | undefined;
  let interrupted = false;
  const exercised = new ExercisedTally();
  const scheduledKinds = new Set<string>();
  /**
   * Counts and reports finished runs in run order. A run is counted once every run started
   * before it has finished, and only up to the lowest failing one: then nothing can come before it.
   */
  const countInOrder = (): void => {
    while (waiting.length > 0 && harnessError === undefined) {
      const runIndex = waiting[0]!;
      if (lowestBad !== undefined && runIndex > lowestBad) return;
      const entry = entries.get(runIndex);
      if (entry === undefined) return;
      waiting.shift();
      entries.delete(runIndex);
      if ('error' in entry) {
        harnessError = entry;
        return;
      }
      counted += 1;
      fsOps += entry.digest.stats.fsOps;
      simulatedMs += entry.digest.stats.simulatedMs;
      if (entry.digest.verdict === 'unknown') unknown += 1;
      exercised.addRun(entry.digest.exercised);
      for (const fault of entry.digest.config.faults) scheduledKinds.add(fault.kind);
      events.push(position, { type: 'run', scenario: scenario.name, run: counted, runIndex, seeds: planned, outcome: entry.digest });
    }
  };
  const inFlight = new Set<Promise<void>>();
  for (const runIndex of shardRunIndexes(options.seeds, options.shard)) {
    if (lowestBad !== undefined || state.aborted) break;
    if (deadline !== undefined && wallClock() >= deadline) {
      interrupted = true;
      break;
    }
    await slots.acquire();
    // Every run not yet started is past a failure found meanwhile: it would never count.
    if (lowestBad !== undefined || state.aborted) {
      slots.release();
      break;
    }
    const config = configs.configOf(runIndex);
    waiting.push(runIndex);
    const settle = (entry: RunEntry, bad: boolean): void => {
      entries.set(runIndex, entry);
      if (bad && (lowestBad === undefined || runIndex < lowestBad)) lowestBad = runIndex;
    };
    const running: Promise<void> = executor
      .run(config)
      .then(async (digest) => {
        if (options.determinism !== undefined && runIndex % options.determinism === 0) await expectSameTrace(executor, loaded, options, runIndex, config, digest);
        return digest;
      })
      .then(
        (digest) => settle({ digest }, digest.verdict === 'invalid'),
        (error: unknown) => settle({ error }, true),
      )
      .finally(() => {
        inFlight.delete(running);
        slots.release();
        countInOrder();
      });
    inFlight.add(running);
  }
  context.allStarted();
  await Promise.all(inFlight);
  countInOrder();
  // The lowest bad run threw: a bug of the harness (engine errors are caught by the simulation
  // and judged). Never hide it.
  if (harnessError !== undefined) throw harnessError.error;
  if (state.aborted) throw new CheckAborted(`scenario ${scenario.name} stopped: another scenario threw`);
  if (waiting.length > 0 && (lowestBad === undefined || waiting[0]! <= lowestBad)) throw new Error(`run ${waiting[0]} of scenario ${scenario.name} finished but was never counted`);
  let failure: FailureRecord | undefined;
  if (lowestBad !== undefined) {
    const answer = await executor.failure(
      scenario,
      {
        seed: options.seed,
        path: String(lowestBad),
        shrink: options.shrink !== false,
        shrinkRunsMax: options.shrinkRunsMax ?? 300,
        ...(deadline === undefined ? {} : { timeLimitMs: Math.max(1, deadline - wallClock()) }),
      },
      (step) => events.push(position, { type: 'shrink', scenario: scenario.name, step }),
    );
    if (answer.shrink.shrunk === undefined) {
      throw new Error(
        `run ${lowestBad} of scenario ${scenario.name} (seed ${options.seed}) failed, then passed when run again from the same configuration: the simulation is not deterministic`,
      );
    }
    interrupted ||= answer.shrink.interrupted;
    failure = await writeFailure(loaded, options, answer);
  }
  const result: ScenarioCheckResult = {
    name: scenario.name,
    source: loaded.source,
    seeds: counted,
    failures: failure === undefined ? 0 : 1,
    wallMs: wallClock() - scenarioStarted,
    fsOps,
    simulatedMs,
    replay: failure?.replay ?? [],
    failure,
    unknown,
    interrupted,
    failureRun: lowestBad,
    ...exercisedFields(exercised, scheduledKinds),
  };
  events.push(position, { type: 'scenario', result });
  events.finish(position);
  return result;
}

/** Runs `config` (run `runIndex`) again and throws a NondeterminismError if its trace differs from `first`'s. */
async function expectSameTrace(executor: RunExecutor, loaded: LoadedScenario, options: CheckOptions, runIndex: number, config: RunConfig, first: RunDigest): Promise<void> {
  const again = await executor.run(config);
  if (again.stats.traceHash === first.stats.traceHash) return;
  const scenarioArgument = loaded.source === 'builtin' ? loaded.scenario.name : loaded.source;
  throw new NondeterminismError(
    loaded.scenario.name,
    runIndex,
    options.seed,
    [first.stats.traceHash, again.stats.traceHash],
    `${options.command ?? 'npx nasq'} check --scenario ${scenarioArgument} --seed ${options.seed} --path ${runIndex} --determinism 1`,
  );
}

/** `path` given: each scenario runs the configuration at that path, and shrinks on from it if it fails. */
async function replayPaths(options: CheckOptions, path: string, executor: RunExecutor, events: OrderedEvents, wallClock: WallClock): Promise<ScenarioCheckResult[]> {
  const results: ScenarioCheckResult[] = [];
  for (const [position, loaded] of options.scenarios.entries()) {
    const { scenario } = loaded;
    const scenarioStarted = wallClock();
    if (options.determinism !== undefined && /^\d+$/.test(path)) {
      // A run, not a shrink step: run it twice first.
      const runIndex = Number(path);
      const config = new RunConfigSource(scenario, options.seed, runIndex + 1).configOf(runIndex);
      await expectSameTrace(executor, loaded, options, runIndex, config, await executor.run(config));
    }
    const answer = await executor.failure(
      scenario,
      {
        seed: options.seed,
        path,
        shrink: options.shrink !== false,
        shrinkRunsMax: options.shrinkRunsMax ?? 300,
        ...(options.timeBudgetMs === undefined ? {} : { timeLimitMs: options.timeBudgetMs }),
      },
      (step) => events.push(position, { type: 'shrink', scenario: scenario.name, step }),
    );
    const { first } = answer.shrink;
    events.push(position, { type: 'run', scenario: scenario.name, run: 1, runIndex: Number(path.split(':')[0]), seeds: 1, outcome: first });
    const failure = answer.shrink.shrunk === undefined ? undefined : await writeFailure(loaded, options, answer);
    const result: ScenarioCheckResult = {
      name: scenario.name,
      source: loaded.source,
      seeds: 1,
      failures: failure === undefined ? 0 : 1,
      wallMs: wallClock() - scenarioStarted,
      fsOps: first.stats.fsOps,
      simulatedMs: first.stats.simulatedMs,
      replay: failure?.replay ?? [],
      failure,
      unknown: first.verdict === 'unknown' ? 1 : 0,
      interrupted: answer.shrink.interrupted,
      failureRun: failure === undefined ? undefined : Number(path.split(':')[0]),
      ...exercisedOfRun(first),
    };
    events.push(position, { type: 'scenario', result });
    events.finish(position);
    results.push(result);
  }
  return results;
}

function exercisedFields(tally: ExercisedTally, scheduledKinds: Iterable<string>): Pick<ScenarioCheckResult, 'exercised' | 'neverExercised'> {
  const totals = tally.totalsSorted();
  return { exercised: totals, neverExercised: neverExercised(scheduledKinds, totals) };
}

function exercisedOfRun(digest: RunDigest): Pick<ScenarioCheckResult, 'exercised' | 'neverExercised'> {
  const tally = new ExercisedTally();
  tally.addRun(digest.exercised);
  return exercisedFields(tally, digest.config.faults.map((fault) => fault.kind));
}

/** Writes the failure file of a shrunk failure. */
async function writeFailure(loaded: LoadedScenario, options: CheckOptions, answer: FailureAnswer): Promise<FailureRecord> {
  const { shrunk } = answer.shrink;
  const evidence = answer.evidence;
  if (shrunk === undefined || evidence === undefined) throw new Error('writeFailure: no failure to write');
  const { config, path, shrinkSteps } = shrunk;
  const fastCheckSeed = options.seed;
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
    failedKind: evidence.failedKind,
    results: evidence.results,
    summary: evidence.summary,
    traceHash: evidence.traceHash,
    simulatedMs: evidence.simulatedMs,
    operations: evidence.operations,
    trace: evidence.trace,
    replay,
    file,
    build: await currentBuild(),
  };
  await mkdir(directory, { recursive: true });
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

/** A counting semaphore: at most `size` runs in flight. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`slots: expected a positive integer, got ${size}`);
    this.free = size;
  }

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next === undefined) this.free += 1;
    else next();
  }
}

/**
 * Progress events in a fixed order whatever the threads: every event of scenario k (its runs in
 * order, its shrink steps, its result) before any of scenario k + 1, which waits in a buffer.
 */
class OrderedEvents {
  private current = 0;
  private readonly buffers: ProgressEvent[][];
  private readonly finished: boolean[];

  constructor(
    private readonly count: number,
    private readonly listener: ((event: ProgressEvent) => void) | undefined,
  ) {
    this.buffers = Array.from({ length: count }, () => []);
    this.finished = Array.from({ length: count }, () => false);
  }

  push(position: number, event: ProgressEvent): void {
    if (this.listener === undefined) return;
    if (position === this.current) this.listener(event);
    else this.buffers[position]!.push(event);
  }

  finish(position: number): void {
    this.finished[position] = true;
    while (this.current < this.count && this.finished[this.current]) {
      this.current += 1;
      if (this.current < this.count) {
        for (const event of this.buffers[this.current]!.splice(0)) this.listener?.(event);
      }
    }
  }
}

/** Runs a failure file's configuration again: same trace hash when nothing changed. */
export interface ReplayResult {
  readonly outcome: RunOutcome;
  readonly sameHash: boolean;
  /** The file's build against this process's. */
  readonly build: BuildComparison;
  readonly currentBuild: BuildStamp;
}

export async function replay(record: FailureRecord, runOptions?: RunOptions): Promise<ReplayResult> {
  const outcome = await runScenario(record.config, runOptions);
  const build = await currentBuild();
  return { outcome, sameHash: outcome.stats.traceHash === record.traceHash, build: compareBuild(record.build, build), currentBuild: build };
}

export function traceLines(records: readonly TraceRecord[]): string[] {
  return records.map(formatRecord);
}

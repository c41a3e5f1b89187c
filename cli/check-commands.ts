/**
 * `nasq check`, `nasq run`, `nasq replay`, `nasq scenarios`: the simulator-backed commands.
 */

import { randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { checkerDescriptions, checkerNames } from '../properties/checkers.js';
import { check, replay, workersMax, type FailureRecord, type ReplayResult, type ScenarioCheckResult } from '../properties/check.js';
import { nominalConfig, shareRulesOf } from '../properties/config.js';
import { describeNeverExercised, formatExercised } from '../properties/exercised.js';
import { formatOperation } from '../properties/history.js';
import { checkReportJson, describeShrunk } from '../properties/report-json.js';
import { parseShard, shardRunCount } from '../properties/run-plan.js';
import { runScenario, type RunOutcome } from '../properties/run.js';
import { builtinScenarioList, resolveScenarios } from '../scenarios/index.js';
import { ScenarioError } from '../scenarios/schema.js';
import { latencyProfileNames } from '../sim/profiles.js';
import { UsageError, parseDuration, parsePositiveInteger } from './durations.js';
import type { Output } from './output.js';
import { CheckReporting, reportOption, reportingOptions, writeRunReport } from './report-commands.js';
import { MetricsCollector } from '../reports/metrics.js';

const exitCodeOf = (outcome: RunOutcome): number => (outcome.failedKind === 'correctness' ? 1 : outcome.failedKind === 'liveness' ? 3 : 0);

function parseSeed(value: unknown, what: string): number {
  const seed = Number(value);
  if (!Number.isSafeInteger(seed)) throw new UsageError(`${what}: expected an integer seed, got ${JSON.stringify(value)}`);
  return seed;
}

async function scenariosOrUsage(argument: string) {
  try {
    return await resolveScenarios(argument);
  } catch (error) {
    if (error instanceof ScenarioError) throw new UsageError(error.message);
    throw error;
  }
}

export function checkCommand(yargs: Argv): Argv {
  return reportingOptions(yargs)
    .option('scenario', { type: 'string', default: 'all', describe: 'a scenario name, a comma-separated list, "all", or a scenario file' })
    .option('seeds', { type: 'number', default: 100, describe: 'runs per scenario' })
    .option('seed', { type: 'string', describe: 'fast-check seed (default: random, printed)' })
    .option('path', { type: 'string', describe: 'replay one fast-check counterexample path (with --seed)' })
    .option('time-budget', { type: 'string', describe: 'stop starting new runs after this long, e.g. 60s' })
    .option('no-shrink', { type: 'boolean', default: false, describe: 'report the first failure as found' })
    .option('failures', { type: 'string', default: '.nasq/failures', describe: 'directory for failure files' })
    .option('workers', { type: 'number', describe: 'worker threads (default: the number of cores); results do not depend on it' })
    .option('shard', { type: 'string', describe: 'I/N: run shard I of N (run indexes i with i mod N = I-1); combine with "nasq report merge"' })
    .option('determinism', { type: 'number', describe: 'K: run every K-th run twice and fail (exit 1) if the two traces differ' })
    .option('exercised', { type: 'boolean', default: false, describe: 'print what each scenario\'s runs exercised (faults, error paths, lock contention, redeliveries)' })
    .option('json', { type: 'boolean', default: false });
}

export async function runCheck(
  argv: {
    scenario: string;
    seeds: number;
    seed?: string;
    path?: string;
    'time-budget'?: string;
    'no-shrink': boolean;
    failures: string;
    workers?: number;
    shard?: string;
    determinism?: number;
    exercised: boolean;
    json: boolean;
    report?: string;
    quiet: boolean;
  },
  output: Output,
): Promise<void> {
  const seeds = parsePositiveInteger(argv.seeds, '--seeds', 1_000_000);
  const seed = argv.seed === undefined ? randomInt(0, 2 ** 31 - 1) : parseSeed(argv.seed, '--seed');
  if (argv.path !== undefined && argv.seed === undefined) throw new UsageError('--path replays a counterexample of one seed: give --seed too');
  if (argv.path !== undefined && !/^\d+(:\d+)*$/.test(argv.path)) throw new UsageError(`--path: expected numbers separated by colons like 12:0:3, got ${JSON.stringify(argv.path)}`);
  const timeBudgetMs = argv['time-budget'] === undefined ? undefined : parseDuration(argv['time-budget'], '--time-budget');
  const scenarios = await scenariosOrUsage(argv.scenario);
  if (argv.path !== undefined && scenarios.length !== 1) throw new UsageError('--path replays a counterexample of one scenario: name exactly one with --scenario');
  const workers = argv.workers === undefined ? Math.min(availableParallelism(), workersMax) : parsePositiveInteger(argv.workers, '--workers', workersMax);
  let shard: ReturnType<typeof parseShard> | undefined;
  if (argv.shard !== undefined) {
    if (argv.path !== undefined) throw new UsageError('--path replays one run: it takes no --shard');
    try {
      shard = parseShard(argv.shard);
    } catch (error) {
      throw new UsageError(`--shard: ${(error as Error).message}`);
    }
  }
  const determinism = argv.determinism === undefined ? undefined : parsePositiveInteger(argv.determinism, '--determinism', 1_000_000);
  if (!argv.json) {
    const part = shard === undefined ? '' : `, shard ${shard.index}/${shard.count} (${shardRunCount(seeds, shard)} of them each)`;
    output.line(`nasq check: ${scenarios.length} scenario(s) x ${seeds} seeds, seed ${seed}${part}`);
  }
  const runsPerScenario = argv.path !== undefined ? 1 : shard === undefined ? seeds : shardRunCount(seeds, shard);
  const reporting = new CheckReporting(argv, { scenarios: scenarios.length, runsPerScenario, timeBudgetMs }, output);
  let report: Awaited<ReturnType<typeof check>>;
  try {
    report = await check(
      {
        scenarios,
        seeds,
        seed,
        ...(argv.path === undefined ? {} : { path: argv.path }),
        ...(timeBudgetMs === undefined ? {} : { timeBudgetMs }),
        shrink: !argv['no-shrink'],
        failureDirectory: argv.failures,
        workers,
        ...(shard === undefined ? {} : { shard }),
        ...(determinism === undefined ? {} : { determinism }),
        ...(reporting.runOptions === undefined ? {} : { runOptions: reporting.runOptions }),
        onProgress: (event) => reporting.onProgress(event, argv.json ? undefined : (result) => printScenario(result, output, argv.exercised)),
      },
      () => performance.now(),
    );
  } finally {
    // Also when the check throws (a run that is not deterministic): end the progress line first.
    reporting.endProgress();
  }
  if (argv.json) output.result(true, checkReportJson(report), '');
  else output.line(`${report.failures === 0 ? 'all properties hold' : `${report.failures} scenario(s) failed`}: ${report.seeds} runs, ${report.fsOps} simulated file operations, ${(report.wallMs / 1000).toFixed(1)} s`);
  await reporting.finish(report);
  output.exitCode(report.exitCode);
}

function printScenario(result: ScenarioCheckResult, output: Output, exercised: boolean): void {
  const status = result.failures > 0 ? `FAILED (${result.failure!.failedKind})` : result.unknown > 0 ? `ok (${result.unknown} unknown)` : 'ok';
  output.line(`  ${result.name.padEnd(22)} ${String(result.seeds).padStart(5)} runs  ${(result.wallMs / 1000).toFixed(1).padStart(6)} s  ${status}${result.interrupted ? ' (time budget reached)' : ''}`);
  if (result.neverExercised.length > 0) output.line(`    ${describeNeverExercised(result.neverExercised, result.seeds)}`);
  if (exercised) for (const line of formatExercised(result.exercised, result.seeds)) output.line(`    ${line}`);
  if (result.failure !== undefined) printFailure(result.failure, output);
}

function printFailure(failure: FailureRecord, output: Output): void {
  for (const result of failure.results.filter((check) => check.validity === 'invalid')) output.line(`    ${result.checker}: ${result.explanation}`);
  output.line(`    smallest failing run: ${describeShrunk(failure)}`);
  output.line(`    failure file: ${failure.file}`);
  output.line(`    replay: ${failure.replay[0]}`);
}

export function runCommand(yargs: Argv): Argv {
  return yargs
    .positional('scenario', { type: 'string', demandOption: true, describe: 'scenario name or file' })
    .option('seed', { type: 'string', default: '1', describe: 'simulation seed' })
    .option('trace', { type: 'string', describe: 'write the whole trace to this file' })
    .option('history', { type: 'boolean', default: false, describe: 'print every operation' })
    .option('json', { type: 'boolean', default: false })
    .option(...reportOption);
}

export async function runRun(argv: { scenario: string; seed: string; trace?: string; history: boolean; json: boolean; report?: string }, output: Output): Promise<void> {
  const seed = parseSeed(argv.seed, '--seed');
  const scenarios = await scenariosOrUsage(argv.scenario);
  if (scenarios.length !== 1) throw new UsageError(`run takes one scenario, got ${scenarios.length}`);
  const config = nominalConfig(scenarios[0]!.scenario, seed);
  const lines: string[] = [];
  const outcome = await runScenario(config, {
    ...(argv.trace === undefined ? {} : { trace: { sink: { write: (line) => lines.push(line) } } }),
    ...(argv.report === undefined ? {} : { metrics: new MetricsCollector() }),
  });
  if (argv.trace !== undefined) await writeFile(argv.trace, `${lines.join('\n')}\n`);
  printOutcome(outcome, argv, output);
  if (argv.report !== undefined) await writeRunReport(outcome, [`npx nasq run ${argv.scenario} --seed ${seed}`], argv.report, output, argv.json);
}

/** What a replay found about its trace, in words. */
function replayVerdict(record: FailureRecord, replayed: ReplayResult): string {
  if (replayed.sameHash) return `same trace hash ${record.traceHash}`;
  const differs = `trace hash ${replayed.outcome.stats.traceHash} differs from the recorded ${record.traceHash}`;
  const now = replayed.currentBuild;
  switch (replayed.build) {
    case 'same':
      return `${differs} with the same build (${now.fingerprint}, Node.js ${now.node}): the simulation is not deterministic, a bug of nasq (please report it with this file)`;
    case 'code-changed':
      return `${differs}: the code changed since the file was written (build ${record.build!.fingerprint} then, ${now.fingerprint} now), so the run may take another path`;
    case 'node-changed':
      return `${differs}: the same code on another Node.js (${record.build!.node} then, ${now.node} now)`;
    case 'unknown':
      return `${differs} (the file does not say which build wrote it: the code changed?)`;
  }
}

function printOutcome(outcome: RunOutcome, argv: { history: boolean; json: boolean }, output: Output, replayed?: { readonly nondeterministic: boolean; readonly [key: string]: unknown }): void {
  if (argv.json) {
    output.result(
      true,
      {
        config: outcome.config,
        verdict: outcome.verdict,
        failedKind: outcome.failedKind,
        results: outcome.results,
        summary: outcome.summary,
        stats: outcome.stats,
        exercised: outcome.exercised,
        ...(replayed === undefined ? {} : { replay: replayed }),
      },
      '',
    );
  } else {
    const { stats, summary } = outcome;
    output.line(
      `${outcome.config.scenario} seed ${outcome.config.simulationSeed}: ${outcome.verdict} in ${(stats.simulatedMs / 1000).toFixed(1)} simulated s (${Math.round(stats.wallMs)} ms wall), ${stats.fsOps} fs ops, trace hash ${stats.traceHash}`,
    );
    output.line(
      `  ${summary.sendsOk} sent (+${summary.sendsInfo} unknown), ${summary.deliveries} deliveries (${summary.redeliveries} redeliveries), ${summary.acksOk} acked, ${summary.faultsInjected} faults, ${summary.commits} commits`,
    );
    const exercised = Object.entries(outcome.exercised).map(([name, count]) => `${name} ${count}`);
    if (exercised.length > 0) output.line(`  exercised: ${exercised.join(', ')}`);
    for (const rule of shareRulesOf(outcome.config)) output.line(`  share: ${rule}`);
    for (const fault of outcome.nemesis.injected) output.line(`  fault: ${fault.timeMs.toFixed(3)} ms ${fault.phase} ${fault.kind} ${fault.target}`);
    for (const result of outcome.results) output.line(`  ${result.validity.padEnd(7)} ${result.checker}: ${result.explanation}`);
    if (argv.history) for (const operation of outcome.history.operations) output.line(`  ${formatOperation(operation)}`);
  }
  // A replay that is not deterministic is a correctness failure of nasq itself, whatever the run's verdict.
  output.exitCode(replayed?.nondeterministic === true ? 1 : exitCodeOf(outcome));
}

export function replayCommand(yargs: Argv): Argv {
  return yargs
    .positional('file', { type: 'string', demandOption: true, describe: 'a failure file written by nasq check' })
    .option('history', { type: 'boolean', default: false })
    .option('json', { type: 'boolean', default: false })
    .option(...reportOption);
}

export async function runReplay(argv: { file: string; history: boolean; json: boolean; report?: string }, output: Output): Promise<void> {
  let record: FailureRecord;
  try {
    record = JSON.parse(await readFile(argv.file, 'utf8')) as FailureRecord;
  } catch (error) {
    throw new UsageError(`replay: cannot read failure file ${argv.file}: ${(error as Error).message}`);
  }
  if (record?.version !== 1 || typeof record.config !== 'object' || typeof record.traceHash !== 'string') {
    throw new UsageError(`replay: ${argv.file} is not a nasq failure file (expected version 1 with config and traceHash)`);
  }
  const replayed = await replay(record, argv.report === undefined ? undefined : { metrics: new MetricsCollector() });
  const { outcome, sameHash } = replayed;
  // The same code on the same Node.js must give the same trace: if not, the simulation is not deterministic.
  const nondeterministic = !sameHash && replayed.build === 'same';
  if (!argv.json) output.line(`replayed ${record.scenario}: ${replayVerdict(record, replayed)}`);
  printOutcome(outcome, argv, output, {
    recordedTraceHash: record.traceHash,
    sameHash,
    build: replayed.build,
    recordedBuild: record.build ?? null,
    currentBuild: replayed.currentBuild,
    nondeterministic,
  });
  if (argv.report !== undefined) await writeRunReport(outcome, record.replay, argv.report, output, argv.json);
}

export function scenariosCommand(yargs: Argv): Argv {
  return yargs.option('json', { type: 'boolean', default: false });
}

export function runScenarios(argv: { json: boolean }, output: Output): void {
  const list = builtinScenarioList();
  if (argv.json) {
    output.result(
      true,
      {
        scenarios: list.map((loaded) => ({ name: loaded.scenario.name, description: loaded.scenario.description })),
        checkers: checkerNames.map((name) => ({ name, description: checkerDescriptions[name] })),
        latencyProfiles: latencyProfileNames,
      },
      '',
    );
    return;
  }
  for (const loaded of list) output.line(`${loaded.scenario.name.padEnd(22)} ${loaded.scenario.description}`);
}

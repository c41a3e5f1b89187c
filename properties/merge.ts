/**
 * Merging the reports of the shards of one check (`nasq check --shard I/N` on N machines) into the
 * report of the whole check, with one exit status.
 *
 * Every shard must be there, once, from the same check (same seed, same seeds per scenario, same
 * scenarios in the same order): a shard whose job died leaves no report, and a merge without it
 * must not pass. Per scenario, the failure kept is the one with the lowest run index over all
 * shards: the one an unsharded check keeps, shrunk the same way, with the same failure file
 * content. Counts (runs, file operations, simulated time, unknown verdicts) are sums of what the
 * shards ran; a shard stops at its own first failure, so with a failure they can exceed an
 * unsharded check's. Wall time is the longest shard's.
 */

import type { CheckReport, ScenarioCheckResult } from './check.js';
import { runIndexOfPath, type Shard } from './run-plan.js';
import { ExercisedTally, neverExercised } from './exercised.js';

/** Shard reports that do not make one whole check. */
export class MergeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MergeError';
  }
}

/** A report and where it came from (for errors). */
export interface SourcedReport {
  readonly report: CheckReport;
  readonly source: string;
}

/** What a merge checks of each report: that the reports are the shards of one check. */
export interface ShardSetMember {
  readonly source: string;
  readonly seed: number;
  readonly seedsPerScenario: number | undefined;
  readonly scenarioNames: readonly string[];
  readonly shard: Shard | undefined;
  /** The build that ran it, if the report says (older reports do not). */
  readonly build?: { readonly fingerprint: string; readonly node: string } | undefined;
}

/**
 * Throws a MergeError unless the members are every shard of one check, once: the same seed,
 * seeds per scenario and scenarios, shards 1 to N. Returns the members' positions in shard order.
 */
export function validateShardSet(members: readonly ShardSetMember[]): number[] {
  if (members.length === 0) throw new MergeError('no reports to merge: give the files or directories the shards wrote');
  const first = members[0]!;
  const built = members.find((member) => member.build !== undefined);
  for (const member of members) {
    if (member.seed !== first.seed) throw new MergeError(`${member.source} is of seed ${member.seed}, ${first.source} of seed ${first.seed}: the shards of one check share its seed`);
    if (member.seedsPerScenario !== first.seedsPerScenario) {
      throw new MergeError(`${member.source} asks ${String(member.seedsPerScenario)} seeds per scenario, ${first.source} ${String(first.seedsPerScenario)}: the shards of one check share --seeds`);
    }
    if (member.scenarioNames.join(',') !== first.scenarioNames.join(',')) {
      throw new MergeError(`${member.source} checks scenarios ${member.scenarioNames.join(', ')}; ${first.source} checks ${first.scenarioNames.join(', ')}: the shards of one check share --scenario`);
    }
    if (built !== undefined && member.build !== undefined && member.build.fingerprint !== built.build!.fingerprint) {
      throw new MergeError(
        `${member.source} was run by build ${member.build.fingerprint}, ${built.source} by build ${built.build!.fingerprint}: the shards of one check must run the same code (a job re-run after the code changed?)`,
      );
    }
  }
  const count = first.shard?.count ?? 1;
  const seen = new Map<number, string>();
  for (const member of members) {
    const shard = member.shard ?? { index: 1, count: 1 };
    if (shard.count !== count) throw new MergeError(`${member.source} is shard ${shard.index}/${shard.count}, ${first.source} is of ${count} shards: the shards of one check share --shard's N`);
    const earlier = seen.get(shard.index);
    if (earlier !== undefined) throw new MergeError(`shard ${shard.index}/${count} given twice: ${earlier} and ${member.source}`);
    seen.set(shard.index, member.source);
  }
  const missing = Array.from({ length: count }, (_, index) => index + 1).filter((index) => !seen.has(index));
  if (missing.length > 0) {
    throw new MergeError(`shard${missing.length > 1 ? 's' : ''} ${missing.map((index) => `${index}/${count}`).join(', ')} missing: a merge needs the report of every shard (a job that died leaves none)`);
  }
  // In shard order, so that ties and sums never depend on the order the reports were given in.
  return members.map((_, position) => position).sort((a, b) => (members[a]!.shard?.index ?? 1) - (members[b]!.shard?.index ?? 1));
}

export function mergeReports(inputs: readonly SourcedReport[]): CheckReport {
  const order = validateShardSet(
    inputs.map(({ report, source }) => ({
      source,
      seed: report.seed,
      seedsPerScenario: report.seedsPerScenario,
      scenarioNames: report.scenarios.map((result) => result.name),
      shard: report.shard,
      build: report.build,
    })),
  );
  const ordered = order.map((position) => inputs[position]!);
  const first = ordered[0]!;
  const scenarios = first.report.scenarios.map((_, position) => mergeScenario(ordered.map(({ report }) => report.scenarios[position]!)));
  const failures = scenarios.reduce((sum, result) => sum + result.failures, 0);
  const correctness = scenarios.some((result) => result.failure?.failedKind === 'correctness');
  return {
    seeds: scenarios.reduce((sum, result) => sum + result.seeds, 0),
    failures,
    wallMs: Math.max(...ordered.map(({ report }) => report.wallMs)),
    fsOps: scenarios.reduce((sum, result) => sum + result.fsOps, 0),
    seed: first.report.seed,
    scenarios,
    exitCode: failures === 0 ? 0 : correctness ? 1 : 3,
    ...(first.report.seedsPerScenario === undefined ? {} : { seedsPerScenario: first.report.seedsPerScenario }),
    shard: undefined,
    ...(first.report.build === undefined ? {} : { build: first.report.build }),
  };
}

function failureRunOf(result: ScenarioCheckResult): number | undefined {
  if (result.failure === undefined) return undefined;
  return result.failureRun ?? runIndexOfPath(result.failure.fastCheck.path);
}

function mergeScenario(results: readonly ScenarioCheckResult[]): ScenarioCheckResult {
  let failing: ScenarioCheckResult | undefined;
  for (const result of results) {
    const run = failureRunOf(result);
    if (run === undefined) continue;
    if (failing === undefined || run < failureRunOf(failing)!) failing = result;
  }
  const first = results[0]!;
  return {
    name: first.name,
    source: first.source,
    seeds: results.reduce((sum, result) => sum + result.seeds, 0),
    failures: failing === undefined ? 0 : 1,
    wallMs: Math.max(...results.map((result) => result.wallMs)),
    fsOps: results.reduce((sum, result) => sum + result.fsOps, 0),
    simulatedMs: results.reduce((sum, result) => sum + result.simulatedMs, 0),
    replay: failing?.replay ?? [],
    failure: failing?.failure,
    unknown: results.reduce((sum, result) => sum + result.unknown, 0),
    interrupted: results.some((result) => result.interrupted),
    failureRun: failing === undefined ? undefined : failureRunOf(failing),
    ...mergeExercised(results),
  };
}

/** Events summed over the shards; a fault kind some shard never saw is missing only if no shard saw it. */
export function mergeExercised(results: ReadonlyArray<Pick<ScenarioCheckResult, 'exercised' | 'neverExercised'>>): Pick<ScenarioCheckResult, 'exercised' | 'neverExercised'> {
  const tally = new ExercisedTally();
  for (const result of results) tally.addTotals(result.exercised);
  const exercised = tally.totalsSorted();
  return { exercised, neverExercised: neverExercised(results.flatMap((result) => result.neverExercised), exercised) };
}

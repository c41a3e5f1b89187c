/**
 * The JSON form of a check report (`nasq check --json`), and reading it back: a shard's report is
 * merged with the others' by `nasq report merge`.
 *
 * The form is the one README documents (`{seeds, failures, wallMs, fsOps, seed, exitCode,
 * scenarios: [{name, seeds, failures, replay: [...], failure}]}`) plus what a merge needs: the
 * seeds asked per scenario, the shard, each scenario's simulated time and the run index of its
 * failure, and the whole failure record (`failure.record`, as in the failure file).
 */

import type { BuildStamp } from './build.js';
import type { CheckReport, FailureRecord, ScenarioCheckResult } from './check.js';
import { shareRulesOf } from './config.js';
import type { ExercisedTotals } from './exercised.js';
import { runIndexOfPath, validateShard, type Shard } from './run-plan.js';

export function checkReportJson(report: CheckReport): Record<string, unknown> {
  return {
    seeds: report.seeds,
    failures: report.failures,
    wallMs: Math.round(report.wallMs),
    fsOps: report.fsOps,
    seed: report.seed,
    exitCode: report.exitCode,
    ...(report.seedsPerScenario === undefined ? {} : { seedsPerScenario: report.seedsPerScenario }),
    ...(report.shard === undefined ? {} : { shard: report.shard }),
    ...(report.build === undefined ? {} : { build: report.build }),
    scenarios: report.scenarios.map((result) => ({
      name: result.name,
      source: result.source,
      seeds: result.seeds,
      failures: result.failures,
      unknown: result.unknown,
      interrupted: result.interrupted,
      wallMs: Math.round(result.wallMs),
      fsOps: result.fsOps,
      simulatedMs: result.simulatedMs,
      replay: result.replay,
      exercised: result.exercised,
      neverExercised: result.neverExercised,
      ...(result.failureRun === undefined ? {} : { failureRun: result.failureRun }),
      failure:
        result.failure === undefined
          ? undefined
          : {
              kind: result.failure.failedKind,
              file: result.failure.file,
              violations: result.failure.results.filter((check) => check.validity === 'invalid').map((check) => ({ checker: check.checker, explanation: check.explanation })),
              shrunk: describeShrunk(result.failure),
              record: result.failure,
            },
    })),
  };
}

/** One line about the smallest failing run. */
export function describeShrunk(failure: FailureRecord): string {
  const { config, summary } = failure;
  const rules = shareRulesOf(config);
  const share = rules.length === 0 ? '' : `, share: ${rules.join('; ')}`;
  return `${config.senders} senders, ${config.receivers} receivers, ${config.messages} messages, ${failure.operations.length} operations named, ${config.faults.length} faults (${config.faults.map((fault) => fault.kind).join(', ') || 'none'})${share}, after ${failure.shrinkSteps} shrink runs; ${summary.sendsOk} sent, ${summary.acksOk} acked`;
}

/** A report that cannot be read back (says which file and what is wrong). */
export class ReportFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportFormatError';
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function field<T>(object: Record<string, unknown>, name: string, check: (value: unknown) => value is T, expected: string, where: string): T {
  const value = object[name];
  if (!check(value)) throw new ReportFormatError(`${where}.${name}: expected ${expected}, got ${JSON.stringify(value)?.slice(0, 80) ?? 'nothing'}`);
  return value;
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isString = (value: unknown): value is string => typeof value === 'string';
const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean';
const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every(isString);

/**
 * Reads a check report back from its JSON form (`checkReportJson`), or from a CheckReport
 * serialized as it is (whose failures are whole records). `source` names the file in errors.
 */
export function parseCheckReport(value: unknown, source: string): CheckReport {
  if (!isRecord(value)) throw new ReportFormatError(`${source}: expected a JSON object (a nasq check report), got ${Array.isArray(value) ? 'an array' : typeof value}`);
  const where = source;
  const scenariosValue = field(value, 'scenarios', Array.isArray, 'an array of scenario results', where);
  const exitCode = field(value, 'exitCode', (code): code is 0 | 1 | 3 => code === 0 || code === 1 || code === 3, '0, 1 or 3', where);
  let shard: Shard | undefined;
  if (value['shard'] !== undefined) {
    const shardValue = field(value, 'shard', isRecord, 'an object {index, count}', where);
    shard = { index: field(shardValue, 'index', isNumber, 'a number', `${where}.shard`), count: field(shardValue, 'count', isNumber, 'a number', `${where}.shard`) };
    try {
      validateShard(shard);
    } catch (error) {
      throw new ReportFormatError(`${where}.shard: ${(error as Error).message}`);
    }
  }
  const scenarios = scenariosValue.map((item: unknown, index): ScenarioCheckResult => {
    const at = `${where}.scenarios[${index}]`;
    if (!isRecord(item)) throw new ReportFormatError(`${at}: expected an object`);
    const failureValue = item['failure'];
    let failure: FailureRecord | undefined;
    if (failureValue !== undefined && failureValue !== null) {
      if (!isRecord(failureValue)) throw new ReportFormatError(`${at}.failure: expected an object`);
      // The JSON form nests the record; a CheckReport serialized as it is has the record itself.
      const record = isRecord(failureValue['record']) ? failureValue['record'] : failureValue;
      if (record['version'] !== 1 || !isRecord(record['fastCheck']) || !isRecord(record['config'])) {
        throw new ReportFormatError(`${at}.failure: expected a failure record (version 1 with fastCheck and config); was the report written by an older nasq?`);
      }
      failure = record as unknown as FailureRecord;
    }
    const failureRunValue = item['failureRun'];
    const failureRun = isNumber(failureRunValue) ? failureRunValue : failure === undefined ? undefined : runIndexOfPath(failure.fastCheck.path);
    return {
      name: field(item, 'name', isString, 'a scenario name', at),
      source: isString(item['source']) ? item['source'] : 'builtin',
      seeds: field(item, 'seeds', isNumber, 'a number of runs', at),
      failures: field(item, 'failures', isNumber, 'a number', at),
      wallMs: isNumber(item['wallMs']) ? item['wallMs'] : 0,
      fsOps: isNumber(item['fsOps']) ? item['fsOps'] : 0,
      simulatedMs: isNumber(item['simulatedMs']) ? item['simulatedMs'] : 0,
      replay: isStrings(item['replay']) ? item['replay'] : (failure?.replay ?? []),
      failure,
      unknown: isNumber(item['unknown']) ? item['unknown'] : 0,
      interrupted: isBoolean(item['interrupted']) ? item['interrupted'] : false,
      failureRun,
      // Reports of an older nasq have neither: nothing counted.
      exercised: item['exercised'] === undefined ? {} : exercisedTotals(item['exercised'], `${at}.exercised`),
      neverExercised: item['neverExercised'] === undefined ? [] : field(item, 'neverExercised', isStrings, 'an array of fault kinds', at),
    };
  });
  return {
    seeds: field(value, 'seeds', isNumber, 'a number of runs', where),
    failures: field(value, 'failures', isNumber, 'a number', where),
    wallMs: isNumber(value['wallMs']) ? value['wallMs'] : 0,
    fsOps: isNumber(value['fsOps']) ? value['fsOps'] : 0,
    seed: field(value, 'seed', isNumber, 'the fast-check seed', where),
    scenarios,
    exitCode,
    ...(isNumber(value['seedsPerScenario']) ? { seedsPerScenario: value['seedsPerScenario'] } : {}),
    shard,
    // Reports of an older nasq have none.
    ...(value['build'] === undefined ? {} : { build: buildOf(value['build'], `${where}.build`) }),
  };
}

function buildOf(value: unknown, where: string): BuildStamp {
  if (!isRecord(value) || typeof value['fingerprint'] !== 'string' || typeof value['node'] !== 'string') {
    throw new ReportFormatError(`${where}: expected {fingerprint, node} (strings), got ${JSON.stringify(value)?.slice(0, 80)}`);
  }
  return { fingerprint: value['fingerprint'], node: value['node'] };
}

function exercisedTotals(value: unknown, where: string): ExercisedTotals {
  if (!isRecord(value)) throw new ReportFormatError(`${where}: expected an object of event -> {count, runs}, got ${JSON.stringify(value)?.slice(0, 80)}`);
  return Object.fromEntries(
    Object.entries(value).map(([name, total]) => {
      const at = `${where}[${JSON.stringify(name)}]`;
      if (!isRecord(total)) throw new ReportFormatError(`${at}: expected {count, runs}, got ${JSON.stringify(total)?.slice(0, 80)}`);
      return [name, { count: field(total, 'count', isNumber, 'a number', at), runs: field(total, 'runs', isNumber, 'a number of runs', at) }];
    }),
  );
}

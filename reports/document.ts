/**
 * The report document: everything a report shows, as plain JSON (`report.json`). JUnit XML, the
 * Markdown summary and the HTML report are rendered from it alone, so `nasq report DIR` can
 * render them again later, on another machine, from the saved JSON.
 *
 * Builders turn what `check`, `run` and `capacity` produce into a document: `runSection` (one
 * run, with its fault windows and, when it failed, a per-client timeline), `CheckReportBuilder`
 * (fed the check's progress events: per scenario, latency and lock histograms merged over every
 * run and the first run's time series) and `capacityDocument`.
 */

import type { ExercisedTotals } from '../properties/exercised.js';
import type { CheckReport, FailureRecord } from '../properties/check.js';
import type { CheckResult } from '../properties/checkers.js';
import type { RunConfig } from '../properties/config.js';
import type { Operation } from '../properties/history.js';
import { formatOperation } from '../properties/history.js';
import type { RunOutcome, RunSummary } from '../properties/run.js';
import type { InjectedFault } from '../sim/nemesis.js';
import type { CapacityResult } from './capacity.js';
import { type EncodedHistogram, mergeHistograms } from './histogram.js';
import type { RunMetrics } from './metrics.js';

export const reportFormat = 'nasq-report';
export const reportVersion = 1;

export type ReportKind = 'check' | 'run' | 'capacity';

export interface ReportDocument {
  readonly format: typeof reportFormat;
  readonly version: typeof reportVersion;
  readonly kind: ReportKind;
  readonly title: string;
  /** Wall-clock time the report was made, ISO 8601. */
  readonly generatedAt: string;
  /** The command that made it. */
  readonly command: string;
  /** The command's exit code: 0 ok, 1 correctness, 3 liveness. */
  readonly exitCode: number;
  readonly check?: CheckSection;
  readonly run?: RunSection;
  readonly capacity?: CapacityResult;
}

/** A fault from its start to its heal (null: never healed within the run). */
export interface FaultWindow {
  readonly kind: string;
  /** 'server' or a client's name. */
  readonly target: string;
  readonly startMs: number;
  readonly endMs: number | null;
}

export interface TimelineOperation {
  readonly index: number;
  readonly client: string;
  readonly kind: string;
  readonly invokeMs: number;
  /** null: never completed (its client crashed, or the run ended). */
  readonly completeMs: number | null;
  readonly outcome: string;
  readonly error?: string;
  /** A failing checker names this operation. */
  readonly violating: boolean;
  /** The operation as one line (formatOperation). */
  readonly text: string;
}

export interface Timeline {
  /** Lanes, in the order clients were added. */
  readonly clients: string[];
  readonly operations: TimelineOperation[];
  /** Operations left out (the timeline keeps those nearest the violations). */
  readonly omitted: number;
}

export interface CheckerVerdict {
  readonly checker: string;
  readonly kind: string;
  readonly validity: string;
  readonly explanation: string;
  readonly operations: number[];
}

export interface RunSection {
  readonly scenario: string;
  readonly seed: number;
  readonly verdict: string;
  readonly failedKind: string | null;
  readonly results: CheckerVerdict[];
  readonly summary: RunSummary;
  readonly stats: { readonly simulatedMs: number; readonly wallMs: number; readonly fsOps: number; readonly events: number; readonly traceHash: string };
  readonly config: RunConfig;
  readonly faults: FaultWindow[];
  readonly metrics: RunMetrics | null;
  readonly timeline: Timeline | null;
  readonly replay: string[];
  readonly simulationError: string | null;
}

/** Histograms of a scenario, summed over its runs. */
export interface ScenarioHistograms {
  readonly send: EncodedHistogram;
  readonly receive: EncodedHistogram;
  readonly ack: EncodedHistogram;
  readonly endToEnd: EncodedHistogram;
  readonly lockWait: EncodedHistogram;
  readonly lockHold: EncodedHistogram;
  /** Lock grants without a wait, over the runs. */
  readonly lockGrantedAtOnce: number;
}

export interface ScenarioSection {
  readonly name: string;
  readonly source: string;
  readonly seeds: number;
  readonly failures: number;
  readonly unknown: number;
  readonly interrupted: boolean;
  readonly wallMs: number;
  readonly fsOps: number;
  readonly simulatedMs: number;
  readonly replay: string[];
  readonly failure: {
    readonly kind: string;
    readonly file: string;
    readonly violations: CheckerVerdict[];
    readonly shrunk: string;
    /** Operations the failing checkers name, one line each. */
    readonly operations: string[];
    readonly fastCheck: { readonly seed: number; readonly path: string };
    readonly traceHash: string;
  } | null;
  /** Summed over the runs that had metrics (null: none had). */
  readonly histograms: ScenarioHistograms | null;
  /** Runs whose metrics the histograms sum. */
  readonly measuredRuns: number;
  /** The first run, as an example of the scenario's time series. */
  readonly sample: RunSection | null;
  /** The smallest failing run, run again with metrics: its time series and timeline. */
  readonly failedRun: RunSection | null;
  /** What the runs exercised (properties/exercised.ts); absent in reports of an older nasq. */
  readonly exercised?: ExercisedTotals;
  /** Fault kinds scheduled but started in no run. */
  readonly neverExercised?: string[];
}

export interface CheckSection {
  readonly seed: number;
  readonly seeds: number;
  readonly failures: number;
  readonly wallMs: number;
  readonly fsOps: number;
  readonly exitCode: number;
  readonly scenarios: ScenarioSection[];
  /** Seeds asked per scenario (a shard makes part of them); for `nasq report merge`. */
  readonly seedsPerScenario?: number;
  /** The shard of the check this report covers (`--shard I/N`); absent: every run. */
  readonly shard?: { readonly index: number; readonly count: number };
  /** The code and Node.js that ran the check (absent in reports of an older nasq). */
  readonly build?: { readonly fingerprint: string; readonly node: string };
}

export function exitCodeOfRun(failedKind: string | null | undefined): number {
  return failedKind === 'correctness' ? 1 : failedKind === 'liveness' ? 3 : 0;
}

/** Fault starts and heals paired into windows (a heal closes the earliest open start of its kind and target). */
export function faultWindows(injected: readonly InjectedFault[]): FaultWindow[] {
  const windows: Array<{ kind: string; target: string; startMs: number; endMs: number | null }> = [];
  for (const fault of injected) {
    if (fault.phase === 'start') {
      windows.push({ kind: fault.kind, target: fault.target, startMs: fault.timeMs, endMs: null });
      continue;
    }
    const open = windows.find((window) => window.endMs === null && window.kind === fault.kind && window.target === fault.target);
    if (open !== undefined) open.endMs = fault.timeMs;
  }
  return windows;
}

/**
 * A run's faults as its configuration schedules them, from the workload's start (a progress
 * event's digest has no fault log): each from its start to its own heal, or to the heal of all
 * at the end of the fault phase. The injected times can differ (a crash of a client already down
 * is skipped), so reports call these scheduled.
 */
export function scheduledFaultWindows(config: RunConfig, workloadStartMs: number): FaultWindow[] {
  const healAtMs = workloadStartMs + config.faultPhaseMs;
  return config.faults.map((fault) => {
    const startMs = Math.min(workloadStartMs + Math.max(0, fault.atMs), healAtMs);
    const endMs = fault.durationMs > 0 ? Math.min(startMs + fault.durationMs, healAtMs) : healAtMs;
    return { kind: `${fault.kind} (scheduled)`, target: fault.target, startMs, endMs };
  });
}

/** Most operations a timeline keeps (a browser draws thousands of bars easily, not millions). */
export const timelineOperationsMaximum = 3_000;

export function timelineOf(operations: readonly Operation[], clients: readonly string[], violating: ReadonlySet<number>): Timeline {
  let kept: readonly Operation[] = operations;
  if (operations.length > timelineOperationsMaximum) {
    // Keep the operations nearest in time to a violating one (all of them if none is named).
    const centers = operations.filter((operation) => violating.has(operation.index)).map((operation) => operation.invokeMs);
    const distance = (operation: Operation): number =>
      centers.length === 0 ? operation.invokeMs : Math.min(...centers.map((center) => Math.abs(operation.invokeMs - center)));
    kept = [...operations]
      .map((operation) => ({ operation, distance: violating.has(operation.index) ? -1 : distance(operation) }))
      .sort((a, b) => a.distance - b.distance || a.operation.index - b.operation.index)
      .slice(0, timelineOperationsMaximum)
      .map((entry) => entry.operation)
      .sort((a, b) => a.index - b.index);
  }
  return {
    clients: clients.filter((client) => kept.some((operation) => operation.client === client)),
    operations: kept.map((operation) => ({
      index: operation.index,
      client: operation.client,
      kind: operation.kind,
      invokeMs: operation.invokeMs,
      completeMs: operation.completeMs ?? null,
      outcome: operation.outcome ?? 'pending',
      ...(operation.error === undefined ? {} : { error: operation.error }),
      violating: violating.has(operation.index),
      text: formatOperation(operation),
    })),
    omitted: operations.length - kept.length,
  };
}

function verdicts(results: readonly CheckResult[]): CheckerVerdict[] {
  return results.map((result) => ({
    checker: result.checker,
    kind: result.kind,
    validity: result.validity,
    explanation: result.explanation,
    operations: [...result.operations],
  }));
}

export interface RunSectionOptions {
  readonly replay: string[];
  /** Keep a per-client timeline: 'failed' (default) only when a property failed, 'always', 'never'. */
  readonly timeline?: 'failed' | 'always' | 'never';
}

/** One run as a report section (its outcome must come from a run with `RunOptions.metrics`, or has no charts). */
export function runSection(outcome: RunOutcome, options: RunSectionOptions): RunSection {
  const violating = new Set(outcome.results.filter((result) => result.validity === 'invalid').flatMap((result) => result.operations));
  const keepTimeline = options.timeline === 'always' || (options.timeline !== 'never' && outcome.verdict === 'invalid');
  const clients = outcome.simulation.clients.map((client) => client.name).filter((name) => name !== 'setup');
  return {
    scenario: outcome.config.scenario,
    seed: outcome.config.simulationSeed,
    verdict: outcome.verdict,
    failedKind: outcome.failedKind ?? null,
    results: verdicts(outcome.results),
    summary: outcome.summary,
    stats: {
      simulatedMs: outcome.stats.simulatedMs,
      wallMs: outcome.stats.wallMs,
      fsOps: outcome.stats.fsOps,
      events: outcome.stats.events,
      traceHash: outcome.stats.traceHash,
    },
    config: outcome.config,
    faults: faultWindows(outcome.nemesis.injected),
    metrics: outcome.metrics ?? null,
    timeline: keepTimeline ? timelineOf(outcome.history.operations, clients, violating) : null,
    replay: options.replay,
    simulationError: outcome.simulationError ?? null,
  };
}

/** The sample run of a scenario in a check: plain data from a progress event (no history, no timeline). */
export interface RunDigestLike {
  readonly config: RunConfig;
  readonly verdict: string;
  readonly failedKind: string | undefined;
  readonly results: readonly CheckResult[];
  readonly stats: RunOutcome['stats'];
  readonly summary: RunSummary;
  readonly simulationError: string | undefined;
  readonly metrics?: RunMetrics | undefined;
}

function digestSection(digest: RunDigestLike, replay: string[]): RunSection {
  return {
    scenario: digest.config.scenario,
    seed: digest.config.simulationSeed,
    verdict: digest.verdict,
    failedKind: digest.failedKind ?? null,
    results: verdicts(digest.results),
    summary: digest.summary,
    stats: {
      simulatedMs: digest.stats.simulatedMs,
      wallMs: digest.stats.wallMs,
      fsOps: digest.stats.fsOps,
      events: digest.stats.events,
      traceHash: digest.stats.traceHash,
    },
    config: digest.config,
    faults: scheduledFaultWindows(digest.config, digest.metrics?.fromMs ?? 0),
    metrics: digest.metrics ?? null,
    timeline: null,
    replay,
    simulationError: digest.simulationError ?? null,
  };
}

interface ScenarioAccumulator {
  histograms: EncodedHistogram[][];
  grantedAtOnce: number;
  measuredRuns: number;
  sample: RunSection | null;
}

const histogramNames = ['send', 'receive', 'ack', 'endToEnd', 'lockWait', 'lockHold'] as const;

/**
 * Collects a check's runs for its report: feed it every progress event (`onRun`), then `finish`
 * with the check's report and the failing runs run again with metrics.
 */
export class CheckReportBuilder {
  private readonly scenarios = new Map<string, ScenarioAccumulator>();

  onRun(scenario: string, digest: RunDigestLike, command: string): void {
    let accumulator = this.scenarios.get(scenario);
    if (accumulator === undefined) {
      accumulator = { histograms: histogramNames.map(() => []), grantedAtOnce: 0, measuredRuns: 0, sample: null };
      this.scenarios.set(scenario, accumulator);
    }
    const metrics = digest.metrics;
    if (metrics === undefined) return;
    accumulator.measuredRuns += 1;
    accumulator.grantedAtOnce += metrics.lock.grantedAtOnce;
    const parts = [metrics.latency.send, metrics.latency.receive, metrics.latency.ack, metrics.latency.endToEnd, metrics.lock.wait, metrics.lock.hold];
    parts.forEach((histogram, index) => accumulator.histograms[index]!.push(histogram));
    // Keep the histograms summed as they come, so memory stays bounded over thousands of runs.
    if (accumulator.histograms[0]!.length >= 64) accumulator.histograms = accumulator.histograms.map((list) => [mergeHistograms(list)]);
    accumulator.sample ??= digestSection(digest, [`${command} run ${scenario} --seed ${digest.config.simulationSeed}`]);
  }

  finish(report: CheckReport, failedRuns: ReadonlyMap<string, RunSection>): CheckSection {
    return {
      seed: report.seed,
      seeds: report.seeds,
      failures: report.failures,
      wallMs: report.wallMs,
      fsOps: report.fsOps,
      exitCode: report.exitCode,
      ...(report.seedsPerScenario === undefined ? {} : { seedsPerScenario: report.seedsPerScenario }),
      ...(report.shard === undefined ? {} : { shard: report.shard }),
      ...(report.build === undefined ? {} : { build: report.build }),
      scenarios: report.scenarios.map((result): ScenarioSection => {
        const accumulator = this.scenarios.get(result.name);
        const histograms =
          accumulator === undefined || accumulator.measuredRuns === 0
            ? null
            : ({
                ...Object.fromEntries(histogramNames.map((name, index) => [name, mergeHistograms(accumulator.histograms[index]!)])),
                lockGrantedAtOnce: accumulator.grantedAtOnce,
              } as unknown as ScenarioHistograms);
        return {
          name: result.name,
          source: result.source,
          seeds: result.seeds,
          failures: result.failures,
          unknown: result.unknown,
          interrupted: result.interrupted,
          wallMs: result.wallMs,
          fsOps: result.fsOps,
          simulatedMs: result.simulatedMs,
          replay: result.replay,
          failure: result.failure === undefined ? null : failureSection(result.failure),
          histograms,
          measuredRuns: accumulator?.measuredRuns ?? 0,
          sample: accumulator?.sample ?? null,
          failedRun: failedRuns.get(result.name) ?? null,
          exercised: result.exercised,
          neverExercised: result.neverExercised,
        };
      }),
    };
  }
}

function failureSection(failure: FailureRecord): NonNullable<ScenarioSection['failure']> {
  const { config, summary } = failure;
  return {
    kind: failure.failedKind,
    file: failure.file,
    violations: verdicts(failure.results.filter((result) => result.validity === 'invalid')),
    shrunk: `${config.senders} senders, ${config.receivers} receivers, ${config.messages} messages, ${config.faults.length} faults (${config.faults.map((fault) => fault.kind).join(', ') || 'none'}) after ${failure.shrinkSteps} shrink runs; ${summary.sendsOk} sent, ${summary.acksOk} acked`,
    operations: failure.operations,
    fastCheck: failure.fastCheck,
    traceHash: failure.traceHash,
  };
}

export function documentOf(kind: ReportKind, fields: { title: string; command: string; exitCode: number; generatedAt: Date }, section: Pick<ReportDocument, 'check' | 'run' | 'capacity'>): ReportDocument {
  return {
    format: reportFormat,
    version: reportVersion,
    kind,
    title: fields.title,
    generatedAt: fields.generatedAt.toISOString(),
    command: fields.command,
    exitCode: fields.exitCode,
    ...section,
  };
}

/** Checks that parsed JSON is a report document this version renders. */
export function asReportDocument(value: unknown, where: string): ReportDocument {
  const document = value as Partial<ReportDocument> | null;
  if (document === null || typeof document !== 'object' || document.format !== reportFormat) {
    throw new TypeError(`${where}: not a nasq report (expected "format": "${reportFormat}")`);
  }
  if (document.version !== reportVersion) throw new TypeError(`${where}: report version ${String(document.version)}; this nasq renders version ${reportVersion}`);
  if (document.kind !== 'check' && document.kind !== 'run' && document.kind !== 'capacity') throw new TypeError(`${where}: unknown report kind ${JSON.stringify(document.kind)}`);
  if (document[document.kind] === undefined) throw new TypeError(`${where}: a ${document.kind} report without its "${document.kind}" section`);
  return document as ReportDocument;
}

/**
 * Merging the report documents (`report.json` of `--report DIR`) of the shards of one check into
 * the document of the whole check, which renders to JUnit XML, Markdown and HTML like any other.
 *
 * The rules are those of properties/merge.ts: every shard once, from the same check; per
 * scenario, the failure of the lowest run over all shards (the one an unsharded check keeps);
 * counts summed. Histograms are summed too (they are over every run of every shard); the example
 * run of a scenario is shard 1's, which holds run 0, the example of an unsharded check.
 */

import { mergeExercised, validateShardSet } from '../properties/merge.js';
import { runIndexOfPath } from '../properties/run-plan.js';
import { documentOf, type CheckSection, type ReportDocument, type ScenarioHistograms, type ScenarioSection } from './document.js';
import { mergeHistograms } from './histogram.js';

export interface SourcedDocument {
  readonly document: ReportDocument;
  readonly source: string;
}

/** The check section of a document, or a TypeError saying it is another kind of report. */
export function checkSectionOf(document: ReportDocument, source: string): CheckSection {
  if (document.kind !== 'check' || document.check === undefined) throw new TypeError(`${source}: a ${document.kind} report; a merge takes the reports of nasq check`);
  return document.check;
}

/** Throws a MergeError (properties/merge.ts) unless the documents are every shard of one check. */
export function mergeCheckDocuments(inputs: readonly SourcedDocument[], fields: { readonly command: string; readonly generatedAt: Date }): ReportDocument {
  const sections = inputs.map(({ document, source }) => checkSectionOf(document, source));
  const order = validateShardSet(
    sections.map((section, position) => ({
      source: inputs[position]!.source,
      seed: section.seed,
      seedsPerScenario: section.seedsPerScenario,
      scenarioNames: section.scenarios.map((scenario) => scenario.name),
      shard: section.shard,
      build: section.build,
    })),
  );
  const ordered = order.map((position) => sections[position]!);
  const first = ordered[0]!;
  const scenarios = first.scenarios.map((_, position) => mergeScenario(ordered.map((section) => section.scenarios[position]!)));
  const failures = scenarios.reduce((sum, scenario) => sum + scenario.failures, 0);
  const correctness = scenarios.some((scenario) => scenario.failure?.kind === 'correctness');
  const exitCode = failures === 0 ? 0 : correctness ? 1 : 3;
  const check: CheckSection = {
    seed: first.seed,
    seeds: scenarios.reduce((sum, scenario) => sum + scenario.seeds, 0),
    failures,
    wallMs: Math.max(...ordered.map((section) => section.wallMs)),
    fsOps: scenarios.reduce((sum, scenario) => sum + scenario.fsOps, 0),
    exitCode,
    scenarios,
    ...(first.seedsPerScenario === undefined ? {} : { seedsPerScenario: first.seedsPerScenario }),
    ...(first.build === undefined ? {} : { build: first.build }),
  };
  const title = `nasq check (${ordered.length} shard${ordered.length > 1 ? 's' : ''} merged): ${failures === 0 ? 'all properties hold' : `${failures} scenario(s) failed`}`;
  return documentOf('check', { title, command: fields.command, exitCode, generatedAt: fields.generatedAt }, { check });
}

function failureRunOf(scenario: ScenarioSection): number | undefined {
  return scenario.failure === null ? undefined : runIndexOfPath(scenario.failure.fastCheck.path);
}

const histogramNames = ['send', 'receive', 'ack', 'endToEnd', 'lockWait', 'lockHold'] as const;

function mergeScenario(scenarios: readonly ScenarioSection[]): ScenarioSection {
  let failing: ScenarioSection | undefined;
  for (const scenario of scenarios) {
    const run = failureRunOf(scenario);
    if (run !== undefined && (failing === undefined || run < failureRunOf(failing)!)) failing = scenario;
  }
  const measured = scenarios.filter((scenario) => scenario.histograms !== null).map((scenario) => scenario.histograms!);
  const histograms =
    measured.length === 0
      ? null
      : ({
          ...Object.fromEntries(histogramNames.map((name) => [name, mergeHistograms(measured.map((item) => item[name]))])),
          lockGrantedAtOnce: measured.reduce((sum, item) => sum + item.lockGrantedAtOnce, 0),
        } as unknown as ScenarioHistograms);
  const first = scenarios[0]!;
  return {
    name: first.name,
    source: first.source,
    seeds: scenarios.reduce((sum, scenario) => sum + scenario.seeds, 0),
    failures: failing === undefined ? 0 : 1,
    unknown: scenarios.reduce((sum, scenario) => sum + scenario.unknown, 0),
    interrupted: scenarios.some((scenario) => scenario.interrupted),
    wallMs: Math.max(...scenarios.map((scenario) => scenario.wallMs)),
    fsOps: scenarios.reduce((sum, scenario) => sum + scenario.fsOps, 0),
    simulatedMs: scenarios.reduce((sum, scenario) => sum + scenario.simulatedMs, 0),
    replay: failing?.replay ?? [],
    failure: failing?.failure ?? null,
    histograms,
    measuredRuns: scenarios.reduce((sum, scenario) => sum + scenario.measuredRuns, 0),
    sample: scenarios.find((scenario) => scenario.sample !== null)?.sample ?? null,
    failedRun: failing?.failedRun ?? null,
    ...mergeExercised(scenarios.map((scenario) => ({ exercised: scenario.exercised ?? {}, neverExercised: scenario.neverExercised ?? [] }))),
  };
}

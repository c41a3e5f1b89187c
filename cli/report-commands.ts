/**
 * Reports on the command line: `--report DIR` and `--quiet` of `check` and `run` (and
 * `capacity`), the progress of a check, and `nasq report DIR`, which renders a report directory
 * again from its report.json.
 */

import type { Argv } from 'yargs';
import type { CheckReport, ProgressEvent, ScenarioCheckResult } from '../properties/check.js';
import { runScenario, type RunOptions, type RunOutcome } from '../properties/run.js';
import { CheckReportBuilder, type RunSection, documentOf, exitCodeOfRun, runSection } from '../reports/document.js';
import { MetricsCollector } from '../reports/metrics.js';
import { CheckProgress, Progress, progressMode } from '../reports/progress.js';
import { readReport, renderReport, reportFileNames, writeReport, type WrittenReport } from '../reports/write.js';
import { UsageError } from './durations.js';
import type { Output } from './output.js';

/** `--report DIR`, as arguments of yargs' option(). */
export const reportOption = ['report', { type: 'string', describe: 'write report.json, junit.xml, summary.md and report.html (charts) to this directory' }] as const;

/** The options every long command takes: --report and --quiet. */
export function reportingOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs
    .option(...reportOption)
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress output (a bar on a terminal, else a line every 30 s, on stderr)' });
}

export interface ReportingArguments {
  readonly report?: string | undefined;
  readonly quiet?: boolean | undefined;
}

/** The command line as typed, for the report's header. */
export function commandLine(): string {
  const words = process.argv.slice(2).map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`));
  return ['nasq', ...words].join(' ');
}

function printWritten(written: WrittenReport, output: Output, json: boolean): void {
  if (json) return; // stdout is the JSON
  output.line(`report: ${written.directory}/${reportFileNames.html} (with ${reportFileNames.json}, ${reportFileNames.junit}, ${reportFileNames.markdown})`);
}

/**
 * What a check needs for `--report` and progress: run options that collect metrics (only with a
 * report: runs without one pay nothing), a progress event handler, and the report at the end.
 */
export class CheckReporting {
  readonly runOptions: RunOptions | undefined;
  private readonly builder = new CheckReportBuilder();
  private readonly progress: CheckProgress | undefined;
  private readonly command: string;

  constructor(
    private readonly argv: ReportingArguments & { readonly json?: boolean },
    plan: { readonly scenarios: number; readonly runsPerScenario: number; readonly timeBudgetMs?: number | undefined; readonly replayCommand?: string },
    private readonly output: Output,
  ) {
    this.runOptions = argv.report === undefined ? undefined : { metrics: new MetricsCollector() };
    this.command = plan.replayCommand ?? 'npx nasq';
    const mode = progressMode(process.stderr, argv.quiet === true);
    if (mode !== 'quiet') {
      const progress = new Progress({
        label: 'check',
        unit: 'runs',
        stream: process.stderr,
        mode,
        now: () => performance.now(),
        ...(plan.timeBudgetMs === undefined ? {} : { budgetMs: plan.timeBudgetMs }),
      });
      this.progress = new CheckProgress(progress, plan.scenarios, plan.runsPerScenario);
    }
  }

  /** Feed every progress event of the check; `print` shows a scenario's result (keeps the bar out of its way). */
  onProgress(event: ProgressEvent, print?: (result: ScenarioCheckResult) => void): void {
    if (event.type === 'run') {
      if (this.runOptions !== undefined) this.builder.onRun(event.scenario, event.outcome, this.command);
      this.progress?.onRun(event.scenario, event.run);
    } else if (event.type === 'shrink') {
      this.progress?.onShrink(event.scenario, event.step);
    } else {
      this.progress?.onScenarioDone(event.result.name);
      if (print !== undefined) {
        if (this.progress === undefined) print(event.result);
        else this.progress.progress.interrupt(() => print(event.result));
      }
    }
  }

  /** Takes the progress bar away (before the command's last lines). */
  endProgress(): void {
    this.progress?.progress.finish();
  }

  /** Ends the progress; with --report, runs each failure again with metrics and writes the report. */
  async finish(report: CheckReport, runOptions?: RunOptions): Promise<WrittenReport | undefined> {
    this.endProgress();
    const directory = this.argv.report;
    if (directory === undefined) return undefined;
    const failedRuns = new Map<string, RunSection>();
    for (const result of report.scenarios) {
      if (result.failure === undefined) continue;
      // The failure file's configuration replays the smallest failing run exactly: run it once
      // more with metrics for its charts and its per-client timeline.
      const outcome = await runScenario(result.failure.config, { ...runOptions, metrics: new MetricsCollector() });
      failedRuns.set(result.name, runSection(outcome, { replay: result.failure.replay, timeline: 'failed' }));
    }
    const document = documentOf(
      'check',
      { title: `nasq check: ${report.failures === 0 ? 'all properties hold' : `${report.failures} scenario(s) failed`}`, command: commandLine(), exitCode: report.exitCode, generatedAt: new Date() },
      { check: this.builder.finish(report, failedRuns) },
    );
    const written = await writeReport(directory, document);
    printWritten(written, this.output, this.argv.json === true);
    return written;
  }
}

/** `nasq run --report DIR`: the run's report (with a timeline when a property failed). */
export async function writeRunReport(outcome: RunOutcome, replay: string[], directory: string, output: Output, json: boolean): Promise<WrittenReport> {
  const document = documentOf(
    'run',
    { title: `nasq run ${outcome.config.scenario} seed ${outcome.config.simulationSeed}: ${outcome.verdict}`, command: commandLine(), exitCode: exitCodeOfRun(outcome.failedKind), generatedAt: new Date() },
    { run: runSection(outcome, { replay, timeline: 'failed' }) },
  );
  const written = await writeReport(directory, document);
  printWritten(written, output, json);
  return written;
}

// ---- nasq report DIR

/** Adds `nasq report DIR` (the default subcommand of `report`) to the report command's parser. */
export function renderReportCommand(yargs: Argv, output: Output): Argv {
  return yargs.command(
    '$0 <directory>',
    'render the reports of DIR again (junit.xml, summary.md, report.html) from its report.json',
    (command) =>
      command
        .positional('directory', { type: 'string', demandOption: true, describe: 'a directory written by --report' })
        .option('out', { type: 'string', describe: 'write the rendered files here instead (default: DIR itself)' }),
    (args) => runReport(args as unknown as { directory: string; out?: string }, output),
  );
}

export async function runReport(argv: { directory: string; out?: string }, output: Output): Promise<void> {
  let document;
  try {
    document = await readReport(argv.directory);
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(`report: ${error.message}`);
    throw error;
  }
  const written = await renderReport(argv.out ?? argv.directory, document);
  output.line(`rendered the ${document.kind} report of ${document.generatedAt} (${document.command}): ${written.files.join(', ')}`);
}

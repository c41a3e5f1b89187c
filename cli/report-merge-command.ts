/**
 * `nasq report merge PATH...`: the reports of the shards of one check into the report of the
 * whole check and one exit status: 0 every property held, 1 a correctness violation, 3 only
 * liveness violations, 2 the reports do not make one whole check (a shard missing or given twice,
 * another seed, other scenarios) or cannot be read.
 *
 * It reads the report documents of `nasq check --shard I/N --report DIR` (DIR/report.json) or, when
 * there are none, the JSON of `nasq check --shard I/N --json > FILE`; `--report OUT` writes the
 * merged document and renders it (JUnit XML, Markdown, HTML) as `check --report` does.
 * `nasq report DIR` (render a report directory again) is the default subcommand.
 */

import { access, readFile, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import type { CheckReport } from '../properties/check.js';
import { MergeError, mergeReports, type SourcedReport } from '../properties/merge.js';
import { describeNeverExercised } from '../properties/exercised.js';
import { ReportFormatError, checkReportJson, describeShrunk, parseCheckReport } from '../properties/report-json.js';
import { CheckReportBuilder, asReportDocument, documentOf, reportFormat, type ReportDocument } from '../reports/document.js';
import { mergeCheckDocuments, type SourcedDocument } from '../reports/merge-documents.js';
import { reportFileNames, writeReport } from '../reports/write.js';
import { UsageError } from './durations.js';
import type { Output } from './output.js';
import { commandLine, renderReportCommand } from './report-commands.js';

export function reportCommands(yargs: Argv, output: Output): Argv {
  const withMerge = yargs.command(
    'merge <paths..>',
    'merge the reports of the shards of one check (report directories or --json files, or directories holding them) into one report and exit status',
    (command) =>
      command
        .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'report files or directories, or directories holding them' })
        .option('json', { type: 'boolean', default: false, describe: 'print the merged report as JSON' })
        .option('report', { type: 'string', describe: 'write the merged report.json, junit.xml, summary.md and report.html to this directory' }),
    (args) => runReportMerge(args as unknown as { paths: string[]; json: boolean; report?: string }, output),
  );
  return renderReportCommand(withMerge, output);
}

/** How deep directories are searched for reports (artifact downloads nest one or two levels). */
const searchDepthMax = 4;
/** Most JSON files looked at in directories: a bound on a mistaken path like /. */
const filesMax = 10_000;

/** One scenario's line and failure, as both report forms give them. */
interface ScenarioLine {
  readonly name: string;
  readonly seeds: number;
  readonly unknown: number;
  readonly interrupted: boolean;
  /** Fault kinds scheduled that no shard's runs started. */
  readonly neverExercised: readonly string[];
  readonly failure:
    | { readonly kind: string; readonly run: number; readonly violations: ReadonlyArray<{ checker: string; explanation: string }>; readonly shrunk: string; readonly file: string; readonly replay: string | undefined; readonly source: string | undefined }
    | undefined;
}

export async function runReportMerge(argv: { paths: string[]; json: boolean; report?: string }, output: Output): Promise<void> {
  const { reports, documents } = await readReports(argv.paths);
  let lines: ScenarioLine[];
  let document: ReportDocument;
  let exitCode: number;
  let header: string;
  let totals: string;
  try {
    if (documents.length > 0) {
      document = mergeCheckDocuments(documents, { command: commandLine(), generatedAt: new Date() });
      const check = document.check!;
      lines = check.scenarios.map((scenario, position) => {
        const failure = scenario.failure;
        const found = failure === null ? undefined : documents.find(({ document: item }) => item.check?.scenarios[position]?.failure === failure);
        return {
          name: scenario.name,
          seeds: scenario.seeds,
          unknown: scenario.unknown,
          interrupted: scenario.interrupted,
          neverExercised: scenario.neverExercised ?? [],
          failure:
            failure === null
              ? undefined
              : { kind: failure.kind, run: Number(failure.fastCheck.path.split(':')[0]), violations: failure.violations, shrunk: failure.shrunk, file: failure.file, replay: scenario.replay[0], source: found?.source },
        };
      });
      exitCode = check.exitCode;
      header = `nasq report merge: ${documents.length} report(s) of seed ${check.seed}, ${check.scenarios.length} scenario(s)`;
      totals = `${check.failures === 0 ? 'all properties hold' : `${check.failures} scenario(s) failed`}: ${check.seeds} runs, ${check.fsOps} simulated file operations`;
    } else {
      const merged = mergeReports(reports);
      // A document from the merged report, with what the JSON form has: no charts.
      document = documentOf(
        'check',
        { title: `nasq check (${reports.length} shards merged): ${merged.failures === 0 ? 'all properties hold' : `${merged.failures} scenario(s) failed`}`, command: commandLine(), exitCode: merged.exitCode, generatedAt: new Date() },
        { check: new CheckReportBuilder().finish(merged, new Map()) },
      );
      if (argv.json) output.result(true, checkReportJson(merged), '');
      lines = merged.scenarios.map((result, position) => {
        const failure = result.failure;
        const found = failure === undefined ? undefined : reports.find(({ report }) => report.scenarios[position]?.failure === failure);
        return {
          name: result.name,
          seeds: result.seeds,
          unknown: result.unknown,
          interrupted: result.interrupted,
          neverExercised: result.neverExercised,
          failure:
            failure === undefined
              ? undefined
              : {
                  kind: failure.failedKind,
                  run: result.failureRun ?? Number(failure.fastCheck.path.split(':')[0]),
                  violations: failure.results.filter((item) => item.validity === 'invalid'),
                  shrunk: describeShrunk(failure),
                  file: failure.file,
                  replay: failure.replay[0],
                  source: found?.source,
                },
        };
      });
      exitCode = merged.exitCode;
      header = `nasq report merge: ${reports.length} report(s) of seed ${merged.seed}, ${merged.scenarios.length} scenario(s)`;
      totals = `${merged.failures === 0 ? 'all properties hold' : `${merged.failures} scenario(s) failed`}: ${merged.seeds} runs, ${merged.fsOps} simulated file operations`;
    }
  } catch (error) {
    if (error instanceof MergeError || error instanceof TypeError) throw new UsageError(`report merge: ${error.message}`);
    throw error;
  }
  if (argv.json && documents.length > 0) output.result(true, document, '');
  if (!argv.json) {
    output.line(header);
    for (const line of lines) await printScenario(line, output);
    output.line(totals);
  }
  if (argv.report !== undefined) {
    const written = await writeReport(argv.report, document);
    if (!argv.json) output.line(`report: ${written.directory}/${reportFileNames.html} (with ${reportFileNames.json}, ${reportFileNames.junit}, ${reportFileNames.markdown})`);
  }
  output.exitCode(exitCode);
}

async function printScenario(line: ScenarioLine, output: Output): Promise<void> {
  const failure = line.failure;
  const status = failure !== undefined ? `FAILED (${failure.kind}) at run ${failure.run}` : line.unknown > 0 ? `ok (${line.unknown} unknown)` : 'ok';
  output.line(`  ${line.name.padEnd(22)} ${String(line.seeds).padStart(5)} runs  ${status}${line.interrupted ? ' (time budget reached)' : ''}`);
  if (line.neverExercised.length > 0) output.line(`    ${describeNeverExercised(line.neverExercised, line.seeds)}`);
  if (failure === undefined) return;
  for (const violation of failure.violations) output.line(`    ${violation.checker}: ${violation.explanation}`);
  output.line(`    smallest failing run: ${failure.shrunk}`);
  const located = failure.source === undefined ? undefined : await locateFailureFile(failure.file, failure.source);
  if (located === undefined) {
    output.line(`    failure file (in the artifacts of the shard that found it${failure.source === undefined ? '' : `, beside ${failure.source}`}): ${failure.file}`);
    if (failure.replay !== undefined) output.line(`    replay: ${failure.replay}`);
  } else {
    output.line(`    failure file: ${located}`);
    if (failure.replay !== undefined) output.line(`    replay: ${failure.replay.replace(failure.file, located)}`);
  }
}

/**
 * Where a shard's failure file is now: as written (the same machine), or near the shard's report,
 * as artifact downloads put it: the path as written, less leading directories, beside the report
 * or up to two directories above it (a report directory inside the artifact).
 */
async function locateFailureFile(file: string, reportFile: string): Promise<string | undefined> {
  const parts = file.split(/[\\/]/);
  const bases = [dirname(reportFile), dirname(dirname(reportFile)), dirname(dirname(dirname(reportFile)))];
  const candidates = [file, ...bases.flatMap((base) => parts.map((_, index) => join(base, ...parts.slice(index))))];
  for (const candidate of candidates) {
    try {
      await access(candidate);
      return candidate;
    } catch {
      // not there: try the next
    }
  }
  return undefined;
}

/**
 * Reads every report named, directories searched: report documents (report.json of --report) and
 * --json reports. The same shard's report found twice with equal results counts once.
 */
async function readReports(paths: readonly string[]): Promise<{ reports: SourcedReport[]; documents: SourcedDocument[] }> {
  const files: string[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(path)).isDirectory();
    } catch (error) {
      throw new UsageError(`report merge: cannot read ${path}: ${(error as Error).message}`);
    }
    if (!isDirectory) {
      files.push(path);
      continue;
    }
    const found = await jsonFilesUnder(path, 0);
    if (found.length === 0) throw new UsageError(`report merge: no .json files under ${path}`);
    files.push(...found);
  }
  const reports: SourcedReport[] = [];
  const documents: SourcedDocument[] = [];
  for (const file of files) {
    let value: unknown;
    try {
      value = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new UsageError(`report merge: cannot read ${file} as JSON: ${(error as Error).message}`);
    }
    const named = paths.includes(file);
    try {
      if (typeof value === 'object' && value !== null && (value as { format?: unknown }).format === reportFormat) {
        const document = asReportDocument(value, file);
        // In a directory, the report of a run or a capacity sweep is skipped.
        if (document.kind === 'check' || named) documents.push({ document, source: file });
        continue;
      }
      // In a directory, other JSON (failure files kept beside the report) is skipped.
      if (!named && !looksLikeReport(value)) continue;
      reports.push({ report: parseCheckReport(value, file), source: file });
    } catch (error) {
      if (error instanceof ReportFormatError || error instanceof TypeError) throw new UsageError(`report merge: ${error.message}`);
      throw error;
    }
  }
  if (reports.length === 0 && documents.length === 0) throw new UsageError(`report merge: no nasq check reports among ${files.length} JSON file(s) under ${paths.join(', ')}`);
  return { reports: withoutRepeats(reports), documents: withoutRepeats(documents) };
}

function looksLikeReport(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Array.isArray((value as { scenarios?: unknown }).scenarios) && 'exitCode' in value && 'seed' in value;
}

async function jsonFilesUnder(directory: string, depth: number): Promise<string[]> {
  if (depth > searchDepthMax) return [];
  const entries = await readdir(directory, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...(await jsonFilesUnder(path, depth + 1)));
    else if (entry.isFile() && entry.name.endsWith('.json')) files.push(path);
    if (files.length > filesMax) throw new UsageError(`report merge: more than ${filesMax} JSON files under ${directory}: name the report files or their directories`);
  }
  return files;
}

/** One shard's report written twice (say, in two directories) is one report. */
function withoutRepeats<T extends SourcedReport | SourcedDocument>(items: T[]): T[] {
  const kept: T[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const key = 'report' in item ? reportKey(item.report) : documentKey(item.document);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(item);
  }
  return kept;
}

function reportKey(report: CheckReport): string {
  return JSON.stringify([report.seed, report.shard, report.scenarios.map((result) => [result.name, result.seeds, result.failures, result.failureRun, result.fsOps])]);
}

function documentKey(document: ReportDocument): string {
  const check = document.check;
  if (check === undefined) return JSON.stringify([document.kind, document.generatedAt, document.command]);
  return JSON.stringify([check.seed, check.shard, check.scenarios.map((scenario) => [scenario.name, scenario.seeds, scenario.failures, scenario.failure?.fastCheck.path, scenario.fsOps])]);
}

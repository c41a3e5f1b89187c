/**
 * `nasq report merge PATH...`: the reports of the shards of one check (`nasq check --shard I/N
 * --json > FILE`) into the report of the whole check and one exit status: 0 every property held,
 * 1 a correctness violation, 3 only liveness violations, 2 the reports do not make one whole
 * check (a shard missing or given twice, another seed, other scenarios) or cannot be read.
 */

import { access, readFile, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import type { CheckReport } from '../properties/check.js';
import { MergeError, mergeReports, type SourcedReport } from '../properties/merge.js';
import { ReportFormatError, checkReportJson, describeShrunk, parseCheckReport } from '../properties/report-json.js';
import { UsageError } from './durations.js';
import type { Output } from './output.js';

export function reportCommands(yargs: Argv, output: Output): Argv {
  return yargs
    .command(
      'merge <paths..>',
      'merge the JSON reports of the shards of one check (files, or directories searched for them) into one report and exit status',
      (command) =>
        command
          .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'report files, or directories holding them' })
          .option('json', { type: 'boolean', default: false, describe: 'print the merged report as JSON (the form of nasq check --json)' }),
      (args) => runReportMerge(args as unknown as { paths: string[]; json: boolean }, output),
    )
    .demandCommand(1, 'name a report command: merge');
}

/** How deep directories are searched for reports (artifact downloads nest one or two levels). */
const searchDepthMax = 4;
/** Most JSON files looked at in directories: a bound on a mistaken path like /. */
const filesMax = 10_000;

export async function runReportMerge(argv: { paths: string[]; json: boolean }, output: Output): Promise<void> {
  const inputs = await readReports(argv.paths);
  let merged: CheckReport;
  try {
    merged = mergeReports(inputs);
  } catch (error) {
    if (error instanceof MergeError) throw new UsageError(`report merge: ${error.message}`);
    throw error;
  }
  if (argv.json) {
    output.result(true, checkReportJson(merged), '');
  } else {
    output.line(`nasq report merge: ${inputs.length} report(s) of seed ${merged.seed}, ${merged.scenarios.length} scenario(s)`);
    for (const [position, result] of merged.scenarios.entries()) {
      const status = result.failure !== undefined ? `FAILED (${result.failure.failedKind}) at run ${String(result.failureRun)}` : result.unknown > 0 ? `ok (${result.unknown} unknown)` : 'ok';
      output.line(`  ${result.name.padEnd(22)} ${String(result.seeds).padStart(5)} runs  ${status}${result.interrupted ? ' (time budget reached)' : ''}`);
      const failure = result.failure;
      if (failure === undefined) continue;
      for (const check of failure.results.filter((item) => item.validity === 'invalid')) output.line(`    ${check.checker}: ${check.explanation}`);
      output.line(`    smallest failing run: ${describeShrunk(failure)}`);
      const found = inputs.find(({ report }) => report.scenarios[position]?.failure === failure);
      const located = found === undefined ? undefined : await locateFailureFile(failure.file, found.source);
      if (located === undefined) {
        output.line(`    failure file (in the artifacts of the shard that found it${found === undefined ? '' : `, ${found.source}`}): ${failure.file}`);
        output.line(`    replay: ${failure.replay[0]}`);
      } else {
        output.line(`    failure file: ${located}`);
        output.line(`    replay: ${failure.replay[0]!.replace(failure.file, located)}`);
      }
    }
    output.line(`${merged.failures === 0 ? 'all properties hold' : `${merged.failures} scenario(s) failed`}: ${merged.seeds} runs, ${merged.fsOps} simulated file operations`);
  }
  output.exitCode(merged.exitCode);
}

/**
 * Where a shard's failure file is now: as written (the same machine), or beside the shard's
 * report, as artifact downloads put it (the path as written, less leading directories).
 */
async function locateFailureFile(file: string, reportFile: string): Promise<string | undefined> {
  const parts = file.split(/[\\/]/);
  const candidates = [file, ...parts.map((_, index) => join(dirname(reportFile), ...parts.slice(index)))];
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

/** Reads every report named, directories searched; the same shard found twice with equal results counts once. */
async function readReports(paths: readonly string[]): Promise<SourcedReport[]> {
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
  for (const file of files) {
    let value: unknown;
    try {
      value = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new UsageError(`report merge: cannot read ${file} as JSON: ${(error as Error).message}`);
    }
    // In a directory, other JSON (failure files kept beside the report) is skipped.
    if (!paths.includes(file) && !looksLikeReport(value)) continue;
    try {
      reports.push({ report: parseCheckReport(value, file), source: file });
    } catch (error) {
      if (error instanceof ReportFormatError) throw new UsageError(`report merge: ${error.message}`);
      throw error;
    }
  }
  if (reports.length === 0) throw new UsageError(`report merge: no nasq check reports among ${files.length} JSON file(s) under ${paths.join(', ')}`);
  return withoutRepeats(reports);
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

/** One shard's report written twice (say, `--json` output and a report directory) is one report. */
function withoutRepeats(reports: SourcedReport[]): SourcedReport[] {
  const kept: SourcedReport[] = [];
  const key = (report: CheckReport): string => JSON.stringify([report.seed, report.shard, report.scenarios.map((result) => [result.name, result.seeds, result.failures, result.failureRun, result.fsOps])]);
  const seen = new Set<string>();
  for (const item of reports) {
    const itemKey = key(item.report);
    if (seen.has(itemKey)) continue;
    seen.add(itemKey);
    kept.push(item);
  }
  return kept;
}

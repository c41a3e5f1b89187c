/**
 * `nasq torture DIR`: the engine in real OS processes on a real directory (a local disk or a
 * mounted share), SIGKILLed at random, judged by the simulator's checkers (torture/runner.ts).
 *
 * Exit codes: 0 every property held; 1 a correctness property failed; 3 only liveness failed;
 * 2 bad input (options, or a directory that is not an empty queue or empty, not writable, or
 * without working byte-range locks), found before anything starts.
 */

import type { Argv } from 'yargs';
import { tortureReport, renderTortureText, writeTortureReport } from '../torture/report.js';
import { TortureInterrupted, processesMaximum, runTorture, type TortureProgress } from '../torture/runner.js';
import { TortureSetupError } from '../torture/setup.js';
import { UsageError, parseDuration, parsePositiveInteger } from './durations.js';
import type { Output } from './output.js';
import { commandLine } from './report-commands.js';

export function tortureCommand(yargs: Argv): Argv {
  return yargs
    .positional('dir', { type: 'string', describe: 'queue directory: empty or missing (a queue is created), or an empty queue', demandOption: true })
    .option('processes', { type: 'number', default: 4, describe: `worker processes at once (1 to ${processesMaximum})` })
    .option('duration', { type: 'string', default: '1m', describe: 'how long the kills go on, e.g. 10m (then: heal, drain, judge)' })
    .option('kill-interval', { type: 'string', default: '1s', describe: 'mean time between two SIGKILLs, e.g. 500ms' })
    .option('seed', { type: 'number', describe: 'seeds the kills and the workload (default: random, printed)' })
    .option('lease', { type: 'string', default: '2s', describe: 'lease of a received message' })
    .option('slots', { type: 'number', default: 256, describe: 'slots of a queue created for the run' })
    .option('report', { type: 'string', describe: 'write report.json, summary.md and the history files (histories/) into this directory' })
    .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress lines on stderr' });
}

interface TortureArguments {
  dir: string;
  processes: number;
  duration: string;
  'kill-interval': string;
  seed?: number;
  lease: string;
  slots: number;
  report?: string;
  json: boolean;
  quiet: boolean;
}

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;

export async function runTortureCommand(args: TortureArguments, output: Output): Promise<void> {
  const processes = parsePositiveInteger(args.processes, '--processes', processesMaximum);
  const durationMs = parseDuration(args.duration, '--duration');
  const killIntervalMs = parseDuration(args['kill-interval'], '--kill-interval');
  const leaseMs = parseDuration(args.lease, '--lease');
  const slots = parsePositiveInteger(args.slots, '--slots', 1_000_000);
  if (durationMs <= 0) throw new UsageError(`--duration: expected a duration above zero, got ${JSON.stringify(args.duration)}`);
  if (args.seed !== undefined && !Number.isSafeInteger(args.seed)) throw new UsageError(`--seed: expected an integer, got ${JSON.stringify(args.seed)}`);
  const seed = args.seed ?? Math.floor(Math.random() * 2 ** 31);
  const progress = (update: TortureProgress): void => {
    if (args.quiet) return;
    process.stderr.write(
      `nasq torture: ${update.phase} ${seconds(update.elapsedMs)} in, ${update.phase === 'chaos' ? `${seconds(update.remainingMs)} to the heal` : `at most ${seconds(update.remainingMs)} more`}; ${update.kills} kills, ${update.running} running\n`,
    );
  };
  if (!args.quiet) {
    process.stderr.write(`nasq torture ${args.dir}: ${processes} processes for ${args.duration}, a kill about every ${args['kill-interval']}, seed ${seed}\n`);
  }
  const abort = new AbortController();
  const interrupt = (): void => abort.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let result;
  try {
    result = await runTorture({
      directory: args.dir,
      processes,
      durationMs,
      killIntervalMs,
      seed,
      leaseMs,
      slots,
      ...(args.report === undefined ? {} : { workDirectory: args.report }),
      onProgress: progress,
      signal: abort.signal,
    });
  } catch (error) {
    if (error instanceof TortureSetupError) {
      process.stderr.write(`nasq torture: ${error.message}\n`);
      output.exitCode(2);
      return;
    }
    if (error instanceof TortureInterrupted) {
      process.stderr.write('nasq torture: interrupted; every process was killed, nothing was judged\n');
      output.exitCode(130);
      return;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
  }
  const report = tortureReport(result, commandLine(), new Date());
  const written = args.report === undefined ? [] : await writeTortureReport(args.report, report);
  if (args.json) output.result(true, report, '');
  else {
    for (const line of renderTortureText(report)) output.line(line);
    if (written.length > 0) output.line(`report: ${written.join(', ')}`);
  }
  output.exitCode(report.exitCode);
}

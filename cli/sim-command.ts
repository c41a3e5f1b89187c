/**
 * `nasq sim run`: one plain run on the simulated share (sim/plain-run.ts: N clients running the
 * engine, each sending its share of M messages and receiving and acking, no faults) and its
 * summary. The same seed prints the same trace hash, in any process.
 */

import { randomInt } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Argv } from 'yargs';
import { plainRunLimits, runPlainWorkload, type PlainRunResult } from '../sim/plain-run.js';
import type { TraceSink } from '../sim/trace.js';
import { UsageError, parsePositiveInteger } from './durations.js';
import type { Output } from './output.js';

interface SimRunArguments {
  clients: string;
  messages: string;
  seed?: string;
  slots?: string;
  trace?: string;
  json: boolean;
}

export function simCommands(yargs: Argv, output: Output): Argv {
  return yargs
    .command(
      'run',
      'run a plain workload (no faults) on the simulated share and print a summary',
      (command) =>
        command
          .option('clients', { type: 'string', default: '8', describe: `virtual clients, each sending and receiving (1 to ${plainRunLimits.clients})` })
          .option('messages', { type: 'string', default: '1000', describe: `messages sent and acked in all (1 to ${plainRunLimits.messages})` })
          .option('seed', { type: 'string', describe: 'the run seed, a non-negative integer (default: random, printed)' })
          .option('slots', { type: 'string', describe: 'slots of the queue (default: max(64, 2 x clients))' })
          .option('trace', { type: 'string', describe: 'write every trace record to this file, one line each' })
          .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
      (args) => runSimRun(args as unknown as SimRunArguments, output),
    )
    .demandCommand(1, 'name a sim command: run');
}

function parseSeed(value: string): number {
  const seed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed: expected a non-negative integer, got ${JSON.stringify(value)}`);
  return seed;
}

/** A trace sink that appends lines to a file in 64 KiB chunks (synchronous: the run is on microtasks). */
class FileTraceSink implements TraceSink {
  private readonly descriptor: number;
  private chunk = '';

  constructor(path: string) {
    try {
      this.descriptor = openSync(path, 'w');
    } catch (error) {
      throw new UsageError(`--trace: cannot write ${JSON.stringify(path)}: ${(error as Error).message}`);
    }
  }

  write(line: string): void {
    this.chunk += `${line}\n`;
    if (this.chunk.length >= 64 * 1024) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.descriptor);
  }

  private flush(): void {
    if (this.chunk.length > 0) writeSync(this.descriptor, this.chunk);
    this.chunk = '';
  }
}

export async function runSimRun(argv: SimRunArguments, output: Output): Promise<void> {
  const clients = parsePositiveInteger(argv.clients, '--clients', plainRunLimits.clients);
  const messages = parsePositiveInteger(argv.messages, '--messages', plainRunLimits.messages);
  const slots = argv.slots === undefined ? undefined : parsePositiveInteger(argv.slots, '--slots', plainRunLimits.slots);
  const seed = argv.seed === undefined ? randomInt(0, 2 ** 31 - 1) : parseSeed(argv.seed);
  const sink = argv.trace === undefined ? undefined : new FileTraceSink(argv.trace);
  let result: PlainRunResult;
  try {
    result = await runPlainWorkload({ seed, clients, messages, ...(slots === undefined ? {} : { slots }), ...(sink === undefined ? {} : { traceSink: sink }) });
  } finally {
    sink?.close();
  }
  const fsOpsPerSec = Math.round((result.fsOps * 1000) / Math.max(result.wallMs, 0.001));
  const summary = { ...result, wallMs: Math.round(result.wallMs * 10) / 10, simulatedMs: Math.round(result.simulatedMs * 1000) / 1000, fsOpsPerSec };
  const exactlyOnce = result.duplicates === 0 && result.missing === 0 && result.acked === messages;
  output.result(
    argv.json,
    summary,
    [
      `nasq sim run: ${clients} clients, ${messages} messages, seed ${seed}, ${result.slots} slots`,
      `  sent ${result.sent}, acked ${result.acked} (${result.duplicates} acked twice, ${result.missing} never acked${result.queueFull > 0 ? `, ${result.queueFull} sends found the queue full` : ''})`,
      `  ${(result.simulatedMs / 1000).toFixed(3)} s simulated in ${(result.wallMs / 1000).toFixed(3)} s of wall time; ${result.events} events, ${result.fsOps} fs ops (${fsOpsPerSec}/s), ${result.cycles} lock cycles`,
      `  trace hash ${result.traceHash} (${result.traceRecords} records)${argv.trace === undefined ? '' : ` written to ${argv.trace}`}`,
    ].join('\n'),
  );
  if (!exactlyOnce) output.exitCode(1);
}

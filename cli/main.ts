/**
 * The `nasq` command line.
 *
 * Exit codes: 0 all good; 1 a correctness violation (check) or a failed operation (queue);
 * 2 a usage error (wrong arguments or options, a malformed scenario); 3 a liveness violation.
 */

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { NasqError } from '../engine/errors.js';
import { NondeterminismError } from '../properties/check.js';
import { UsageError } from './durations.js';
import { explainUsage, notANumberError } from './usage.js';
import { processOutput } from './output.js';
import { queueCommands } from './queue-commands.js';
import { demoCommand, runDemo } from './demo-command.js';
import { simCommands } from './sim-command.js';
import { checkCommand, replayCommand, runCheck, runCommand, runReplay, runRun, runScenarios, scenariosCommand } from './check-commands.js';
import { reportCommands } from './report-merge-command.js';
import { capacityCommand, runCapacityCommand } from './capacity-command.js';
import { runTortureCommand, tortureCommand } from './torture-command.js';
import { conformanceCommand, runConformance } from './conformance-command.js';

export const exitCodes = { ok: 0, violation: 1, usage: 2, liveness: 3 } as const;

export async function main(argv: string[]): Promise<void> {
  const output = processOutput();
  const parser = yargs(argv)
    .scriptName('nasq')
    .usage('$0 <command> [options]')
    .command('check', 'the CI gate: run scenarios in the simulator and check every property (exit 0 ok, 1 correctness, 3 liveness, 2 usage)', checkCommand, (args) =>
      runCheck(args as unknown as Parameters<typeof runCheck>[0], output),
    )
    .command('run <scenario>', 'run one seed of a scenario verbosely', runCommand, (args) => runRun(args as unknown as Parameters<typeof runRun>[0], output))
    .command('replay <file>', 'reproduce a failure from its failure file', replayCommand, (args) =>
      runReplay(args as unknown as Parameters<typeof runReplay>[0], output),
    )
    .command('scenarios', 'list the built-in scenarios', scenariosCommand, (args) => runScenarios(args as unknown as { json: boolean }, output))
    .command('report', 'reports: render a report directory again (nasq report DIR), or merge the shards of a check (nasq report merge)', (command) =>
      reportCommands(command, output),
    )
    .command('capacity', 'what-if capacity study in the simulator: throughput and latency against clients, the knee, the bound 1 / lock hold', capacityCommand, async (args) => {
      await runCapacityCommand(args as unknown as Parameters<typeof runCapacityCommand>[0], output);
    })
    .command('demo', 'run a queue on an in-memory file system with a few clients', (command) => demoCommand(command, output), (args) =>
      runDemo(args as unknown as { messages: number; clients: number; json: boolean }, output),
    )
    .command('queue', 'use a queue on a real directory (local disk or a mounted share)', (command) => queueCommands(command, output))
    .command('torture <dir>', 'real OS processes on a real directory, SIGKILLed at random, judged by the checkers (exit 0 ok, 1 correctness, 3 liveness, 2 bad input)', tortureCommand, (args) =>
      runTortureCommand(args as unknown as Parameters<typeof runTortureCommand>[0], output),
    )
    .command('sim', 'the deterministic simulator: run a plain workload on the simulated share', (command) => simCommands(command, output))
    .command('conformance', 'hold the simulated share against a real SMB server (Samba), lock and session cases (exit 0 same, 1 differs, 2 setup)', conformanceCommand, (args) =>
      runConformance(args as unknown as Parameters<typeof runConformance>[0], output),
    )
    .middleware((args) => {
      const error = notANumberError(args, argv);
      if (error !== undefined) throw error;
    }, true)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .recommendCommands()
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((message, error) => {
      if (error !== undefined && error !== null) throw error;
      throw new UsageError(explainUsage(message, argv));
    });
  try {
    await parser.parseAsync();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`nasq: ${error.message}\nRun "nasq --help" (or "nasq <command> --help") for the usage.\n`);
      process.exitCode = exitCodes.usage;
      return;
    }
    if (error instanceof NondeterminismError) {
      process.stderr.write(`nasq: ${error.message}\n`);
      process.exitCode = exitCodes.violation;
      return;
    }
    if (error instanceof NasqError) {
      process.stderr.write(`nasq: ${error.message}\n`);
      process.exitCode = error.code === 'INVALID_ARGUMENT' ? exitCodes.usage : exitCodes.violation;
      return;
    }
    throw error;
  }
}

await main(hideBin(process.argv));

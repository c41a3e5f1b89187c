/**
 * `nasq conformance`: holds the simulated share against a real SMB server, case by case
 * (conformance/cases.ts). By default against the observations of Samba kept in the repository
 * (nothing external needed); with --samba against a Samba started here on loopback (needs Samba
 * and Python's impacket), and with --record those observations are kept for the next runs.
 * Exit 0 when the simulator answers every step as the server did, 1 when it differs.
 */

import { writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { type ConformanceCase, caseDefect, conformanceCases } from '../conformance/cases.js';
import { formatComparisons } from '../conformance/compare.js';
import { ConformanceSetupError, conformanceFile, observeSamba, recordedObservations, type ServerObservations } from '../conformance/samba.js';
import { compareWithServer } from '../conformance/sim-driver.js';
import { raceWaiters, simulateWaiterRace, tallyRace, waiterRaceCase } from '../conformance/waiter-race.js';
import { UsageError, parsePositiveInteger } from './durations.js';
import type { Output } from './output.js';

interface ConformanceArguments {
  samba: boolean;
  record?: string;
  smbd?: string;
  python?: string;
  port: string;
  json: boolean;
  waiterRace?: string;
}

export function conformanceCommand(yargs: Argv): Argv {
  return yargs
    .option('samba', { type: 'boolean', default: false, describe: 'start a Samba server on loopback and hold the simulator against it (needs smbd and Python with impacket)' })
    .option('record', { type: 'string', describe: 'with --samba: keep its observations in this file (alone: conformance/samba-observed.json)' })
    .option('smbd', { type: 'string', describe: 'the smbd program (default: smbd on PATH)' })
    .option('python', { type: 'string', describe: 'a Python 3 with impacket (default: python3, else /usr/bin/python3)' })
    .option('port', { type: 'string', default: '4455', describe: 'loopback port for the Samba server' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
    .option('waiter-race', {
      type: 'string',
      describe: 'instead of the cases: N rounds of four waiters for one freed lock, and who was granted it first, on the simulated share (FIFO and randomLockWaiterOrder) and with --samba on Samba',
    });
}

export async function runConformance(argv: ConformanceArguments, output: Output): Promise<void> {
  const port = parsePositiveInteger(argv.port, '--port', 65_535);
  if (argv.record !== undefined && !argv.samba) throw new UsageError('--record: only with --samba (it keeps what a live server answered)');
  // --record alone keeps them where the test suite reads them.
  const recordPath = argv.record === undefined ? undefined : argv.record === '' ? conformanceFile('samba-observed.json') : argv.record;
  for (const entry of conformanceCases) {
    const defect = caseDefect(entry);
    if (defect !== undefined) throw new Error(`conformance: ${defect}`);
  }
  if (argv.waiterRace !== undefined) {
    if (argv.record !== undefined) throw new UsageError('--record: not with --waiter-race (a measurement, not observations to compare)');
    await runWaiterRace(parsePositiveInteger(argv.waiterRace, '--waiter-race', 10_000), argv, port, output);
    return;
  }
  const observations = await observe(conformanceCases, argv, port, output);
  if (observations === undefined) return;
  if (recordPath !== undefined) writeFileSync(recordPath, `${JSON.stringify(observations, null, 2)}\n`);
  const comparisons = await compareWithServer(conformanceCases, observations.cases);
  const failing = comparisons.filter((comparison) => comparison.differences.length > 0 || comparison.unobserved);
  const source = argv.samba ? 'live' : 'recorded';
  output.result(
    argv.json,
    { server: observations.server, dialect: observations.dialect, observedOn: observations.observedOn, source, cases: comparisons, failures: failing.length },
    [
      `nasq conformance: ${conformanceCases.length} cases, the simulator against ${observations.server} (SMB ${observations.dialect}, ${source} observations of ${observations.observedOn})`,
      formatComparisons(comparisons, 'the server'),
      failing.length === 0
        ? `every step answered as the server did${recordPath === undefined ? '' : `; observations kept in ${recordPath}`}`
        : `${failing.length} case(s) differ${recordPath === undefined ? '' : `; observations kept in ${recordPath}`}`,
    ].join('\n'),
  );
  if (failing.length > 0) output.exitCode(1);
}

/**
 * What the server answered to `cases`: a Samba started here (--samba), else the recorded answers.
 * Undefined, with the reason on stderr and exit code 2, when Samba cannot be set up.
 */
async function observe(cases: readonly ConformanceCase[], argv: ConformanceArguments, port: number, output: Output): Promise<ServerObservations | undefined> {
  try {
    if (!argv.samba) return recordedObservations();
    return await observeSamba(cases, {
      port,
      today: new Date().toISOString().slice(0, 10),
      ...(argv.smbd === undefined ? {} : { smbd: argv.smbd }),
      ...(argv.python === undefined ? {} : { python: argv.python }),
    });
  } catch (error) {
    if (!(error instanceof ConformanceSetupError)) throw error;
    process.stderr.write(`nasq conformance: ${error.message}\n`);
    output.exitCode(2);
    return undefined;
  }
}

/** `--waiter-race N`: who gets a freed lock first, on the simulated share and, with --samba, on Samba. */
async function runWaiterRace(rounds: number, argv: ConformanceArguments, port: number, output: Output): Promise<void> {
  const cases = Array.from({ length: rounds }, (_, round) => waiterRaceCase(round));
  let samba: { server: string; tally: Record<string, number> } | undefined;
  if (argv.samba) {
    const observed = await observe(cases, argv, port, output);
    if (observed === undefined) return;
    samba = { server: observed.server, tally: tallyRace(observed.cases.map((entry) => entry.observed)) };
  }
  const fifo = await simulateWaiterRace(rounds, false);
  const random = await simulateWaiterRace(rounds, true);
  const line = (label: string, tally: Record<string, number>): string => `  ${label.padEnd(40)} ${Object.entries(tally).map(([waiter, count]) => `${waiter} ${count}`).join(', ')}`;
  output.result(
    argv.json,
    { rounds, waiters: [...raceWaiters], firstGranted: { simulatorFifo: fifo, simulatorRandom: random, ...(samba === undefined ? {} : { samba: samba.tally, server: samba.server }) } },
    [
      `nasq conformance --waiter-race: ${rounds} rounds; ${raceWaiters.join(', ')} ask for a held lock in that order, one step apart; who is granted it first when it frees:`,
      ...(samba === undefined ? [] : [line(samba.server, samba.tally)]),
      line('simulated share, first in first out', fifo),
      line('simulated share, randomLockWaiterOrder', random),
    ].join('\n'),
  );
}

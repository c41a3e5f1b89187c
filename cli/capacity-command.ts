/**
 * `nasq capacity`: a what-if capacity study in the simulator. Throughput and p50/p99 latency of
 * one queue against the number of clients, per latency profile, healthy and under what-if faults;
 * the saturation knee, and the analytic bound (one over the header lock's hold time) beside the
 * measured peak.
 */

import type { Argv } from 'yargs';
import { type CapacityResult, CapacityUsageError, type WhatIf, parseWhatIf, runCapacity } from '../reports/capacity.js';
import { capacityHeaders, capacityHeadline, capacityRows } from '../reports/capacity-text.js';
import { documentOf } from '../reports/document.js';
import { Progress, progressMode } from '../reports/progress.js';
import { writeReport } from '../reports/write.js';
import { maximumBodyBytes } from '../scenarios/schema.js';
import { latencyProfileNames } from '../sim/profiles.js';
import { UsageError, parseDuration, parsePositiveInteger } from './durations.js';
import type { Output } from './output.js';
import { commandLine, reportingOptions } from './report-commands.js';

/** Most points of a sweep, and most clients of a point: bounds on a mistyped list. */
const pointsMaximum = 64;
const clientsMaximum = 4096;

export function capacityCommand(yargs: Argv): Argv {
  return reportingOptions(yargs)
    .option('clients', { type: 'string', default: '1,2,4,...,256', describe: 'client counts: a list, "..." continues a doubling (1,2,4,...,256)' })
    .option('profile', { type: 'string', array: true, default: ['lan-nvram'], describe: `latency profiles (${latencyProfileNames.join(', ')}); repeat for several` })
    .option('slots', { type: 'number', default: 4096, describe: 'slots of the queue' })
    .option('rate', { type: 'number', describe: 'offered messages per second per client (paced sends); default: closed loop, back to back' })
    .option('batch', { type: 'number', default: 1, describe: 'messages per send, receive and ack call' })
    .option('body-bytes', { type: 'number', default: 0, describe: `bytes of each message body (0: a label of a few bytes; at most ${maximumBodyBytes})` })
    .option('link-mbps', { type: 'number', describe: 'throughput of the link to the share, MB/s each way, shared by the clients: payloads take bytes / throughput (default: none, payloads take no time)' })
    .option('duration', { type: 'string', describe: 'simulated time measured per point, e.g. 10s (default: at least 5 s and 1,000 acks, at most 300 s)' })
    .option('what-if', {
      type: 'string',
      array: true,
      default: [],
      describe: 'faults during the whole sweep, compared with the healthy share: disk-failure (a degraded RAID), rebuild, racing-waiters (lock waiters granted in a random order, as on Samba), or KIND[:name=value,...][+KIND...]',
    })
    .option('seed', { type: 'number', default: 1, describe: 'simulation seed' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' });
}

/** "1,2,4,...,256": a list; "..." continues the ratio of the two numbers before it up to the next. */
export function parseClients(text: string): number[] {
  const tokens = String(text)
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '');
  const values: number[] = [];
  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index]!;
    if (token === '...' || token === '..') {
      const [before, last] = values.slice(-2);
      const next = tokens[index + 1];
      if (before === undefined || last === undefined || next === undefined || last <= before) {
        throw new UsageError(`--clients: "..." needs two rising numbers before it and one after, as in 1,2,4,...,256; got ${JSON.stringify(text)}`);
      }
      const end = parsePositiveInteger(next, '--clients', clientsMaximum);
      const ratio = last / before;
      for (let value = Math.round(last * ratio); value < end && values.length < pointsMaximum; value = Math.round(value * ratio)) values.push(value);
      continue;
    }
    values.push(parsePositiveInteger(token, '--clients', clientsMaximum));
  }
  if (values.length === 0) throw new UsageError(`--clients: expected client counts like 1,2,4,...,256, got ${JSON.stringify(text)}`);
  if (values.length > pointsMaximum) throw new UsageError(`--clients: at most ${pointsMaximum} points, got ${values.length}`);
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  return sorted;
}

interface CapacityArguments {
  clients: string;
  profile: string[];
  slots: number;
  rate?: number;
  batch: number;
  'body-bytes': number;
  'link-mbps'?: number;
  duration?: string;
  'what-if': string[];
  seed: number;
  json: boolean;
  report?: string;
  quiet: boolean;
}

export async function runCapacityCommand(argv: CapacityArguments, output: Output): Promise<CapacityResult> {
  const clients = parseClients(argv.clients);
  const profiles = [...new Set(argv.profile.flatMap((profile) => String(profile).split(',')).map((profile) => profile.trim()))];
  for (const profile of profiles) {
    if (!(latencyProfileNames as readonly string[]).includes(profile)) throw new UsageError(`--profile: unknown profile ${JSON.stringify(profile)}; expected one of ${latencyProfileNames.join(', ')}`);
  }
  const slots = parsePositiveInteger(argv.slots, '--slots', 1_000_000);
  const batch = parsePositiveInteger(argv.batch, '--batch', 256);
  const bodyBytes = argv['body-bytes'];
  if (!Number.isInteger(bodyBytes) || bodyBytes < 0 || bodyBytes > maximumBodyBytes) {
    throw new UsageError(`--body-bytes: expected an integer from 0 to ${maximumBodyBytes}, got ${JSON.stringify(bodyBytes)}`);
  }
  const linkMBps = argv['link-mbps'];
  if (linkMBps !== undefined && !(Number.isFinite(linkMBps) && linkMBps > 0 && linkMBps <= 1_000_000)) {
    throw new UsageError(`--link-mbps: expected MB/s, a number above 0 and at most 1000000, got ${JSON.stringify(linkMBps)}`);
  }
  if (argv.rate !== undefined && !(Number.isFinite(argv.rate) && argv.rate > 0 && argv.rate <= 1_000_000)) {
    throw new UsageError(`--rate: expected messages per second per client, a number above 0 and at most 1000000, got ${JSON.stringify(argv.rate)}`);
  }
  const durationMs = argv.duration === undefined ? undefined : parseDuration(argv.duration, '--duration');
  if (durationMs !== undefined && (durationMs < 100 || durationMs > 3_600_000)) throw new UsageError(`--duration: expected from 100ms to 1h of simulated time, got ${JSON.stringify(argv.duration)}`);
  if (!Number.isSafeInteger(argv.seed) || argv.seed < 0) throw new UsageError(`--seed: expected an integer >= 0, got ${JSON.stringify(argv.seed)}`);
  let whatIf: WhatIf[];
  try {
    whatIf = argv['what-if'].map((text) => parseWhatIf(String(text)));
  } catch (error) {
    if (error instanceof CapacityUsageError) throw new UsageError(error.message);
    throw error;
  }

  const mode = progressMode(process.stderr, argv.quiet);
  const progress = mode === 'quiet' ? undefined : new Progress({ label: 'capacity', unit: 'points', stream: process.stderr, mode, now: () => performance.now() });
  if (!argv.json) {
    output.line(
      `nasq capacity: ${profiles.join(', ')} x ${clients.length} points (${clients.join(', ')} clients)${whatIf.length > 0 ? `, healthy and ${whatIf.map((item) => item.name).join(', ')}` : ''}, ${argv.rate === undefined ? 'closed loop' : `${argv.rate} msg/s per client`}, batch ${batch}${bodyBytes > 0 ? `, ${bodyBytes}-byte bodies` : ''}${linkMBps === undefined ? '' : `, a ${linkMBps} MB/s link`}`,
    );
  }
  const result = await runCapacity(
    {
      profiles,
      clients,
      slots,
      batch,
      bodyBytes,
      ...(linkMBps === undefined ? {} : { linkMBps }),
      whatIf,
      seed: argv.seed,
      ...(argv.rate === undefined ? {} : { ratePerClient: argv.rate }),
      ...(durationMs === undefined ? {} : { durationMs }),
      onProgress: (event) => progress?.update(event.done, event.total, `${event.profile} ${event.whatIf} ${event.clients} clients`),
    },
    () => performance.now(),
  );
  progress?.finish();
  if (argv.json) {
    output.result(true, { ...result, series: result.series.map((series) => ({ ...series, points: series.points.map(({ metrics: _metrics, ...point }) => point) })) }, '');
  } else {
    for (const series of result.series) {
      output.line('');
      output.line(`${series.profile}, ${series.whatIf}:`);
      const rows = capacityRows(series).map((row) => row.map(String));
      const widths = capacityHeaders.map((header, index) => Math.max(header.length, ...rows.map((row) => row[index]!.length)));
      output.line(`  ${capacityHeaders.map((header, index) => header.padStart(widths[index]!)).join('  ')}`);
      for (const row of rows) output.line(`  ${row.map((cell, index) => cell.padStart(widths[index]!)).join('  ')}`);
    }
    output.line('');
    for (const series of result.series) output.line(capacityHeadline(series));
    output.line(`${result.series.reduce((sum, series) => sum + series.points.length, 0)} points in ${(result.wallMs / 1000).toFixed(1)} s of wall time`);
  }
  if (argv.report !== undefined) {
    const document = documentOf('capacity', { title: `nasq capacity: ${profiles.join(', ')}`, command: commandLine(), exitCode: 0, generatedAt: new Date() }, { capacity: result });
    const written = await writeReport(argv.report, document);
    if (!argv.json) output.line(`report: ${written.directory}/report.html (with report.json, junit.xml, summary.md and the charts as SVG)`);
  }
  return result;
}

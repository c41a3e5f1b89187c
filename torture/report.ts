/**
 * The report of a torture run: a JSON document (`report.json`, the source of everything else),
 * a Markdown summary (`summary.md`, short enough for a CI step summary) and the text the CLI
 * prints. The history files stay beside them (`histories/`, one JSON-lines file per process
 * incarnation) when the report has a directory.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { HistogramSummary } from '../reports/histogram.js';
import type { TortureFigures, TortureLatency, Verdict } from './judge.js';
import type { TortureResult } from './runner.js';

export const tortureReportFormat = 'nasq-torture-report';
export const tortureReportVersion = 1;

/** The run's own figures, as the runner gives them. */
type RunFields = 'options' | 'startedAt' | 'wallMs' | 'chaosMs' | 'drainMs' | 'processesStarted' | 'kills' | 'unexpectedExits' | 'gaveUp';

export interface TortureReport extends Pick<TortureResult, RunFields> {
  readonly format: typeof tortureReportFormat;
  readonly version: typeof tortureReportVersion;
  /** Wall-clock time the report was made, ISO 8601. */
  readonly generatedAt: string;
  /** The command that made it. */
  readonly command: string;
  /** 0 every property held, 1 a correctness property failed, 3 only liveness failed. */
  readonly exitCode: 0 | 1 | 3;
  readonly queue: {
    readonly directory: string;
    readonly created: boolean;
    readonly totalSlots: number;
    /** The file system, when known (Linux): type, source and mount point. */
    readonly mount: { readonly fileSystemType: string; readonly source: string; readonly mountPoint: string } | null;
  };
  readonly figures: TortureFigures;
  readonly latency: TortureLatency;
  readonly verdicts: Verdict[];
  readonly notChecked: ReadonlyArray<{ readonly checker: string; readonly why: string }>;
  /** Lines of history files cut short by a kill during their append (ignored). */
  readonly tornHistoryLines: number;
  readonly orphansRemoved: number;
  /** Where the history files are, or null when they were removed. */
  readonly historyDirectory: string | null;
}

export const tortureReportFileNames = { json: 'report.json', markdown: 'summary.md' } as const;

export function tortureReport(result: TortureResult, command: string, generatedAt: Date): TortureReport {
  const { judgement, queue } = result;
  return {
    format: tortureReportFormat,
    version: tortureReportVersion,
    generatedAt: generatedAt.toISOString(),
    command,
    exitCode: result.exitCode,
    queue: {
      directory: queue.directory,
      created: queue.created,
      totalSlots: queue.totalSlots,
      mount: queue.locks.mount === undefined ? null : { fileSystemType: queue.locks.mount.fileSystemType, source: queue.locks.mount.source, mountPoint: queue.locks.mount.mountPoint },
    },
    options: result.options,
    startedAt: result.startedAt,
    wallMs: result.wallMs,
    chaosMs: result.chaosMs,
    drainMs: result.drainMs,
    processesStarted: result.processesStarted,
    kills: result.kills,
    unexpectedExits: result.unexpectedExits,
    gaveUp: result.gaveUp,
    figures: judgement.figures,
    latency: judgement.latency,
    verdicts: judgement.verdicts,
    notChecked: judgement.notChecked,
    tornHistoryLines: judgement.tornLines,
    orphansRemoved: result.orphansRemoved,
    historyDirectory: result.historyDirectory,
  };
}

/** "850 µs", "3.20 ms", "412 ms", "12.5 s" */
export function formatMs(valueMs: number): string {
  if (valueMs >= 10_000) return `${(valueMs / 1000).toFixed(1)} s`;
  if (valueMs >= 100) return `${valueMs.toFixed(0)} ms`;
  if (valueMs >= 1) return `${valueMs.toFixed(2)} ms`;
  return `${(valueMs * 1000).toFixed(0)} µs`;
}

/** "45 s", "10 min", "1 h 5 min" */
export function formatDurationMs(ms: number): string {
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  if (minutes < 60) return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const count = (value: number): string => value.toLocaleString('en-US');

const latencyKinds: ReadonlyArray<[keyof TortureLatency, string]> = [
  ['send', 'send'],
  ['receive', 'receive'],
  ['ack', 'ack'],
  ['endToEnd', 'due to acked'],
];

function percentiles(summary: HistogramSummary): string[] {
  return [summary.p50Ms, summary.p90Ms, summary.p99Ms, summary.p999Ms, summary.maxMs].map(formatMs);
}

const mark = (validity: string): string => (validity === 'valid' ? 'valid  ' : validity === 'invalid' ? 'INVALID' : 'unknown');

function headline(report: TortureReport): string {
  const { options } = report;
  return `${options.processes} processes, ${formatDurationMs(options.durationMs)} of chaos + ${formatDurationMs(report.drainMs)} drain, a kill about every ${formatMs(options.killIntervalMs)}, lease ${formatMs(options.leaseMs)}, seed ${options.seed}`;
}

function messageLine(figures: TortureFigures): string {
  return (
    `${count(figures.sent)} sent (+${count(figures.sentUnknown)} unknown), ${count(figures.acked)} acked (+${count(figures.ackedUnknown)} by killed acks), ` +
    `${count(figures.lost)} lost, ${count(figures.duplicateAcks)} duplicate acks, ${count(figures.redeliveries)} redeliveries of ${count(figures.deliveries)} deliveries, ` +
    `${count(figures.fencedAcks)} acks fenced out, ${count(figures.deadLettered)} dead-lettered, ${count(figures.remaining)} left in the queue`
  );
}

/** The text the CLI prints. */
export function renderTortureText(report: TortureReport): string[] {
  const verdict = report.exitCode === 0 ? 'every property held' : report.exitCode === 1 ? 'a correctness property FAILED' : 'liveness FAILED';
  const lines = [
    `nasq torture ${report.queue.directory}: ${verdict}`,
    `  ${headline(report)}`,
    `  ${count(report.kills)} kills, ${count(report.processesStarted)} processes started, ${count(report.unexpectedExits)} died on their own; ${count(report.figures.operations)} operations, wall ${formatDurationMs(report.wallMs)}`,
    ...(report.gaveUp ? [`  GAVE UP after ${count(report.unexpectedExits)} processes failed on their own: the chaos was cut short and every process killed`] : []),
    `  messages: ${messageLine(report.figures)}`,
    '  latency       p50        p90        p99        p99.9      max        count',
  ];
  for (const [key, label] of latencyKinds) {
    const summary = report.latency[key];
    lines.push(`  ${label.padEnd(13)} ${percentiles(summary).map((cell) => cell.padEnd(10)).join(' ')} ${count(summary.count)}`);
  }
  for (const verdictLine of report.verdicts) {
    lines.push(`  ${mark(verdictLine.validity)} ${verdictLine.checker}: ${verdictLine.explanation}`);
    if (verdictLine.validity === 'invalid') for (const operation of verdictLine.operations) lines.push(`            ${operation}`);
  }
  for (const skipped of report.notChecked) lines.push(`  not run ${skipped.checker}: ${skipped.why}`);
  if (report.historyDirectory !== null) lines.push(`  history files: ${report.historyDirectory}`);
  return lines;
}

function escapeMarkdown(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').replace(/([*_`<>[\]])/g, '\\$1');
}

export function renderTortureMarkdown(report: TortureReport): string {
  const status = report.exitCode === 0 ? '✅ every property held' : report.exitCode === 1 ? '❌ correctness failed' : '❌ liveness failed';
  const { figures } = report;
  const lines = [
    `## nasq torture: ${status}`,
    '',
    `${escapeMarkdown(headline(report))}, on \`${report.queue.directory}\`${report.queue.mount === null ? '' : ` (${report.queue.mount.fileSystemType})`}. ` +
      `${count(report.kills)} kills, ${count(report.processesStarted)} processes started, wall ${formatDurationMs(report.wallMs)}.`,
    '',
    '| kills | sent | acked | lost | duplicate acks | redeliveries | fenced acks | dead-lettered | left |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${[
      count(report.kills),
      `${count(figures.sent)} (+${count(figures.sentUnknown)} unknown)`,
      `${count(figures.acked)} (+${count(figures.ackedUnknown)} by killed acks)`,
      ...[figures.lost, figures.duplicateAcks, figures.redeliveries, figures.fencedAcks, figures.deadLettered, figures.remaining].map(count),
    ].join(' | ')} |`,
    '',
    '| latency | p50 | p90 | p99 | p99.9 | max | count |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...latencyKinds.map(([key, label]) => `| ${label} | ${percentiles(report.latency[key]).join(' | ')} | ${count(report.latency[key].count)} |`),
    '',
    '| property | verdict | explanation |',
    '| --- | --- | --- |',
    ...report.verdicts.map(
      (verdict) => `| ${verdict.checker} | ${verdict.validity === 'valid' ? '✅' : verdict.validity === 'invalid' ? '❌' : '⚠️'} | ${escapeMarkdown(verdict.explanation)} |`,
    ),
    ...report.notChecked.map((skipped) => `| ${skipped.checker} | not run | ${escapeMarkdown(skipped.why)} |`),
  ];
  const named = report.verdicts.filter((verdict) => verdict.validity === 'invalid' && verdict.operations.length > 0);
  for (const verdict of named) lines.push('', `Operations named by ${verdict.checker}:`, '', '```', ...verdict.operations, '```');
  if (report.historyDirectory !== null) lines.push('', `History files (one per process incarnation, JSON lines): \`${report.historyDirectory}\``);
  return `${lines.join('\n')}\n`;
}

/** Writes report.json and summary.md into `directory`; returns their paths. */
export async function writeTortureReport(directory: string, report: TortureReport): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  const json = nodePath.join(directory, tortureReportFileNames.json);
  const markdown = nodePath.join(directory, tortureReportFileNames.markdown);
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(markdown, renderTortureMarkdown(report));
  return [json, markdown];
}

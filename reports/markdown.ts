/**
 * The Markdown summary of a report: short enough for a CI step summary (GitHub's
 * $GITHUB_STEP_SUMMARY takes up to 1 MiB per step), with every failure's replay command.
 */

import { describeNeverExercised } from '../properties/exercised.js';
import { capacityHeaders, capacityHeadline, capacityRows } from './capacity-text.js';
import { formatMs } from './charts.js';
import type { CheckSection, ReportDocument, RunSection } from './document.js';

/** Escapes what would break a table cell or start Markdown syntax. */
export function escapeMarkdown(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').replace(/([*_`<>[\]])/g, '\\$1');
}

function markdownTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, numeric: ReadonlySet<number> = new Set()): string[] {
  return [
    `| ${headers.join(' | ')} |`,
    `| ${headers.map((_, index) => (numeric.has(index) ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.map((cell) => String(cell)).join(' | ')} |`),
  ];
}

function fence(lines: readonly string[]): string[] {
  return ['```sh', ...lines, '```'];
}

function checkMarkdown(check: CheckSection): string[] {
  const lines = [
    `## nasq check: ${check.failures === 0 ? '✅ all properties hold' : `❌ ${check.failures} scenario(s) failed`}`,
    '',
    `${check.seeds} runs, seed ${check.seed}, ${check.fsOps} simulated file operations, ${(check.wallMs / 1000).toFixed(1)} s.`,
    '',
    ...markdownTable(
      ['scenario', 'status', 'runs', 'wall', 'send p99', 'lock wait p99'],
      check.scenarios.map((scenario) => [
        escapeMarkdown(scenario.name),
        scenario.failures > 0 ? `❌ ${scenario.failure?.kind ?? 'failed'}` : scenario.unknown > 0 ? `⚠️ ok, ${scenario.unknown} unknown` : '✅ ok',
        `${scenario.seeds}${scenario.interrupted ? ' (budget)' : ''}`,
        `${(scenario.wallMs / 1000).toFixed(1)} s`,
        scenario.histograms === null ? '' : formatMs(scenario.histograms.send.summary.p99Ms),
        scenario.histograms === null ? '' : formatMs(scenario.histograms.lockWait.summary.p99Ms),
      ]),
      new Set([2, 3, 4, 5]),
    ),
  ];
  for (const scenario of check.scenarios) {
    const never = scenario.neverExercised ?? [];
    if (never.length > 0) lines.push('', `⚠️ ${escapeMarkdown(scenario.name)}: ${escapeMarkdown(describeNeverExercised(never, scenario.seeds))}`);
  }
  const exercised = check.scenarios.filter((scenario) => scenario.exercised !== undefined && Object.keys(scenario.exercised).length > 0);
  if (exercised.length > 0) {
    lines.push('', '<details><summary>What the runs exercised</summary>', '');
    lines.push(
      ...markdownTable(
        ['scenario', 'event', 'count', 'runs'],
        exercised.flatMap((scenario) =>
          Object.entries(scenario.exercised!).map(([name, total]) => [escapeMarkdown(scenario.name), escapeMarkdown(name), total.count, `${total.runs}/${scenario.seeds}`]),
        ),
        new Set([2, 3]),
      ),
    );
    lines.push('', '</details>');
  }
  for (const scenario of check.scenarios) {
    if (scenario.failure === null) continue;
    lines.push('', `### ❌ ${escapeMarkdown(scenario.name)} (${scenario.failure.kind})`, '');
    for (const violation of scenario.failure.violations) lines.push(`- **${escapeMarkdown(violation.checker)}**: ${escapeMarkdown(violation.explanation)}`);
    lines.push('', `Smallest failing run: ${escapeMarkdown(scenario.failure.shrunk)}. Failure file \`${scenario.failure.file}\`. Replay:`, '', ...fence(scenario.replay));
  }
  return lines;
}

function runMarkdown(run: RunSection): string[] {
  const failed = run.results.filter((result) => result.validity === 'invalid');
  const lines = [
    `## nasq run ${escapeMarkdown(run.scenario)} seed ${run.seed}: ${run.verdict === 'valid' ? '✅ valid' : run.verdict === 'invalid' ? `❌ ${run.failedKind ?? 'invalid'}` : '⚠️ unknown'}`,
    '',
    `${(run.stats.simulatedMs / 1000).toFixed(1)} simulated s, ${run.stats.fsOps} file operations, trace hash \`${run.stats.traceHash}\`; ${run.summary.sendsOk} sent, ${run.summary.acksOk} acked, ${run.summary.faultsInjected} faults.`,
    '',
    ...markdownTable(
      ['property', 'verdict', 'explanation'],
      run.results.map((result) => [escapeMarkdown(result.checker), result.validity === 'valid' ? '✅' : result.validity === 'invalid' ? '❌' : '⚠️', escapeMarkdown(result.explanation)]),
    ),
  ];
  if (run.metrics !== null) {
    const { latency, lock } = run.metrics;
    lines.push('', `Send p50 ${formatMs(latency.send.summary.p50Ms)}, p99 ${formatMs(latency.send.summary.p99Ms)}; header lock: ${lock.grants} grants, wait p99 ${formatMs(lock.wait.summary.p99Ms)}, hold p50 ${formatMs(lock.hold.summary.p50Ms)}.`);
  }
  if (failed.length > 0 || run.replay.length > 0) lines.push('', 'Replay:', '', ...fence(run.replay));
  return lines;
}

export function renderMarkdown(document: ReportDocument, options: { htmlName?: string } = {}): string {
  let lines: string[];
  if (document.kind === 'check') lines = checkMarkdown(document.check!);
  else if (document.kind === 'run') lines = runMarkdown(document.run!);
  else {
    const capacity = document.capacity!;
    lines = [`## nasq capacity: ${capacity.options.profiles.join(', ')}`, '', ...capacity.series.map((series) => `- ${escapeMarkdown(capacityHeadline(series))}`)];
    for (const series of capacity.series) {
      lines.push('', `### ${escapeMarkdown(`${series.profile}, ${series.whatIf}`)}`, '', ...markdownTable(capacityHeaders, capacityRows(series), new Set([0, 1, 2, 3, 4, 5, 6, 7, 8])));
    }
  }
  lines.push('', `<sub>${escapeMarkdown(document.command)} · ${document.generatedAt}${options.htmlName === undefined ? '' : ` · charts: ${options.htmlName}`}</sub>`);
  return `${lines.join('\n')}\n`;
}

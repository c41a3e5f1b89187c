/**
 * The HTML report: one self-contained file (inline CSS and SVG charts, no script, nothing
 * fetched), readable offline and attachable to a CI run as an artifact.
 */

import { describeNeverExercised } from '../properties/exercised.js';
import type { CapacityResult } from './capacity.js';
import { capacityHeaders, capacityHeadline, capacityRows } from './capacity-text.js';
import {
  capacityLatencyChart,
  capacityThroughputChart,
  depthChart,
  formatMs,
  histogramsChart,
  latencyOverTimeChart,
  renderSvg,
  throughputChart,
  timelineChart,
  violationZoom,
} from './charts.js';
import type { CheckSection, ReportDocument, RunSection, ScenarioSection } from './document.js';
import type { TopLevelSpec } from 'vega-lite';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character]!);
}

const styles = `
body { font: 14px/1.45 Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
header { background: #1f2937; color: #f9fafb; padding: 16px 28px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { font-size: 12px; color: #cbd5e1; }
main { padding: 12px 28px 40px; max-width: 1200px; }
h2 { margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { margin-top: 22px; }
table { border-collapse: collapse; margin: 8px 0 16px; background: white; }
th, td { border: 1px solid #e5e7eb; padding: 4px 10px; text-align: left; font-variant-numeric: tabular-nums; }
th { background: #f3f4f6; }
td.number { text-align: right; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: bold; }
.pass { background: #dcfce7; color: #166534; }
.fail { background: #fee2e2; color: #991b1b; }
.unknown { background: #fef9c3; color: #854d0e; }
pre, code { font-family: Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #111827; color: #e5e7eb; padding: 10px 12px; overflow-x: auto; border-radius: 4px; }
figure.chart { margin: 12px 0 20px; background: white; border: 1px solid #e5e7eb; padding: 8px; overflow-x: auto; }
figure.chart svg { max-width: 100%; height: auto; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: bold; }
.note { color: #555; font-size: 13px; }
`;

function statusBadge(ok: boolean | 'unknown', text: string): string {
  const kind = ok === 'unknown' ? 'unknown' : ok ? 'pass' : 'fail';
  return `<span class="status ${kind}">${escapeHtml(text)}</span>`;
}

async function chart(name: string, spec: TopLevelSpec): Promise<string> {
  const svg = await renderSvg(spec, name);
  return `<figure class="chart" data-chart="${escapeHtml(name)}">${svg}</figure>`;
}

function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, numeric: ReadonlySet<number> = new Set()): string {
  const head = `<tr>${headers.map((header) => `<th>${escapeHtml(header)}</th>`).join('')}</tr>`;
  const body = rows
    .map((row) => `<tr>${row.map((cell, index) => (numeric.has(index) ? `<td class="number">${escapeHtml(String(cell))}</td>` : `<td>${String(cell)}</td>`)).join('')}</tr>`)
    .join('\n');
  return `<table>${head}\n${body}</table>`;
}

function codeBlock(lines: readonly string[]): string {
  return `<pre>${escapeHtml(lines.join('\n'))}</pre>`;
}

async function runCharts(run: RunSection, prefix: string): Promise<string> {
  const parts: string[] = [];
  const metrics = run.metrics;
  const endMs = metrics?.toMs ?? run.stats.simulatedMs;
  if (run.timeline !== null) {
    parts.push(await chart(`${prefix}timeline`, timelineChart(run.timeline, run.faults, endMs)));
    const zoom = violationZoom(run.timeline, endMs);
    if (zoom !== undefined) parts.push(await chart(`${prefix}timeline-zoom`, timelineChart(run.timeline, run.faults, endMs, zoom)));
  }
  const span = { fromMs: metrics?.fromMs ?? 0, toMs: endMs };
  if (metrics === null) {
    parts.push('<p class="note">No metrics were collected for this run.</p>');
    return parts.join('\n');
  }
  parts.push(await chart(`${prefix}throughput`, throughputChart(metrics.series, run.faults, span)));
  parts.push(await chart(`${prefix}latency`, latencyOverTimeChart(metrics.series, run.faults, span)));
  parts.push(await chart(`${prefix}depth`, depthChart(metrics.series, run.faults, span)));
  parts.push(
    await chart(
      `${prefix}histograms`,
      histogramsChart('Call latency histograms (HdrHistogram)', [
        { name: 'send', histogram: metrics.latency.send },
        { name: 'receive (with messages)', histogram: metrics.latency.receive },
        { name: 'ack', histogram: metrics.latency.ack },
        { name: 'end to end (send to ack)', histogram: metrics.latency.endToEnd },
      ]),
    ),
  );
  if (metrics.lock.grants === 0) {
    parts.push('<p class="note" data-note="no-lock">No client was granted the header lock in this run: nothing to show of lock waits and holds.</p>');
    return parts.join('\n');
  }
  parts.push(
    await chart(
      `${prefix}lock`,
      histogramsChart(`Header lock: wait (request to grant) and hold at the server; ${metrics.lock.grants} grants, busy ${(metrics.lock.busyFraction * 100).toFixed(0)} %`, [
        { name: 'lock wait', histogram: metrics.lock.wait, zeros: metrics.lock.grantedAtOnce },
        { name: 'lock hold', histogram: metrics.lock.hold },
      ]),
    ),
  );
  return parts.join('\n');
}

function resultsTable(run: RunSection): string {
  return table(
    ['property', 'verdict', 'explanation'],
    run.results.map((result) => [
      escapeHtml(result.checker),
      statusBadge(result.validity === 'valid' ? true : result.validity === 'invalid' ? false : 'unknown', result.validity),
      escapeHtml(result.explanation) + (result.operations.length > 0 ? ` <span class="note">(operations ${escapeHtml(result.operations.slice(0, 12).join(', '))}${result.operations.length > 12 ? ', ...' : ''})</span>` : ''),
    ]),
  );
}

function faultsTable(run: RunSection): string {
  if (run.faults.length === 0) return '<p class="note">No fault was injected.</p>';
  return table(
    ['fault', 'target', 'from', 'to'],
    run.faults.map((fault) => [escapeHtml(fault.kind), escapeHtml(fault.target), `${(fault.startMs / 1000).toFixed(3)} s`, fault.endMs === null ? 'end of run' : `${(fault.endMs / 1000).toFixed(3)} s`]),
  );
}

async function runBody(run: RunSection): Promise<string> {
  const { summary, stats } = run;
  return [
    `<p>${statusBadge(run.verdict === 'valid' ? true : run.verdict === 'invalid' ? false : 'unknown', run.verdict)} seed ${run.seed}: ${(stats.simulatedMs / 1000).toFixed(1)} simulated s, ${stats.fsOps} file operations, trace hash <code>${escapeHtml(stats.traceHash)}</code></p>`,
    `<p>${summary.sendsOk} sent (+${summary.sendsInfo} unknown), ${summary.deliveries} deliveries (${summary.redeliveries} redeliveries), ${summary.acksOk} acked, ${summary.faultsInjected} faults, ${summary.commits} commits</p>`,
    run.simulationError === null ? '' : `<p>${statusBadge(false, 'simulation error')} ${escapeHtml(run.simulationError)}</p>`,
    '<h3>Properties</h3>',
    resultsTable(run),
    '<h3>Faults</h3>',
    faultsTable(run),
    run.replay.length > 0 ? `<h3>Replay</h3>${codeBlock(run.replay)}` : '',
    '<h3>Charts</h3>',
    await runCharts(run, ''),
  ].join('\n');
}

async function scenarioBody(scenario: ScenarioSection, index: number): Promise<string> {
  const parts: string[] = [];
  const prefix = `scenario-${index}-`;
  const never = scenario.neverExercised ?? [];
  if (never.length > 0) {
    parts.push(`<p>${statusBadge('unknown', 'warning')} ${escapeHtml(describeNeverExercised(never, scenario.seeds))}</p>`);
  }
  if (scenario.exercised !== undefined && Object.keys(scenario.exercised).length > 0) {
    const rows = Object.entries(scenario.exercised).map(([name, total]) => [escapeHtml(name), total.count, `${total.runs} / ${scenario.seeds}`]);
    parts.push(`<details><summary>What the runs exercised</summary>${table(['event', 'count', 'runs'], rows, new Set([1, 2]))}</details>`);
  }
  if (scenario.failure !== null) {
    const failure = scenario.failure;
    parts.push(`<p>${statusBadge(false, `failed (${failure.kind})`)} smallest failing run: ${escapeHtml(failure.shrunk)}</p>`);
    parts.push(table(['property', 'explanation'], failure.violations.map((violation) => [escapeHtml(violation.checker), escapeHtml(violation.explanation)])));
    parts.push(`<p>Failure file <code>${escapeHtml(failure.file)}</code>; replay:</p>${codeBlock(scenario.replay)}`);
    if (failure.operations.length > 0) parts.push(`<details><summary>Operations the failing properties name</summary>${codeBlock(failure.operations)}</details>`);
    if (scenario.failedRun !== null) {
      parts.push('<h4>The smallest failing run</h4>');
      parts.push(faultsTable(scenario.failedRun));
      parts.push(await runCharts(scenario.failedRun, `${prefix}failed-`));
    }
  }
  if (scenario.histograms !== null) {
    const histograms = scenario.histograms;
    parts.push(
      await chart(
        `${prefix}histograms`,
        histogramsChart(`Latency and header-lock histograms over ${scenario.measuredRuns} runs`, [
          { name: 'send', histogram: histograms.send },
          { name: 'receive (with messages)', histogram: histograms.receive },
          { name: 'ack', histogram: histograms.ack },
          { name: 'end to end', histogram: histograms.endToEnd },
          { name: 'lock wait', histogram: histograms.lockWait, zeros: histograms.lockGrantedAtOnce },
          { name: 'lock hold', histogram: histograms.lockHold },
        ]),
      ),
    );
  }
  const sample = scenario.sample;
  if (sample?.metrics != null) {
    const span = { fromMs: sample.metrics.fromMs, toMs: sample.metrics.toMs };
    parts.push(`<p class="note">First run (seed ${sample.seed}; run it alone with <code>${escapeHtml(sample.replay[0] ?? '')}</code>):</p>`);
    // One time chart per scenario: a report of every scenario of a check renders in seconds (each chart costs 0.1 - 0.3 s).
    parts.push(await chart(`${prefix}throughput`, throughputChart(sample.metrics.series, sample.faults, span)));
  }
  return parts.join('\n');
}

async function checkBody(check: CheckSection): Promise<string> {
  const rows = check.scenarios.map((scenario) => [
    `<a href="#scenario-${escapeHtml(scenario.name)}">${escapeHtml(scenario.name)}</a>`,
    scenario.failures > 0 ? statusBadge(false, `failed (${scenario.failure?.kind ?? '?'})`) : scenario.unknown > 0 ? statusBadge('unknown', `ok, ${scenario.unknown} unknown`) : statusBadge(true, 'ok'),
    scenario.seeds,
    `${(scenario.wallMs / 1000).toFixed(1)} s`,
    scenario.fsOps,
    scenario.histograms === null ? '' : formatMs(scenario.histograms.send.summary.p99Ms),
    scenario.histograms === null ? '' : formatMs(scenario.histograms.lockWait.summary.p99Ms),
    [scenario.interrupted ? 'time budget reached' : '', (scenario.neverExercised ?? []).length > 0 ? escapeHtml(`not exercised: ${scenario.neverExercised!.join(', ')}`) : '']
      .filter((note) => note !== '')
      .join('; '),
  ]);
  const parts = [
    `<p>${check.failures === 0 ? statusBadge(true, 'all properties hold') : statusBadge(false, `${check.failures} scenario(s) failed`)} ${check.seeds} runs, seed ${check.seed}, ${check.fsOps} simulated file operations, ${(check.wallMs / 1000).toFixed(1)} s</p>`,
    table(['scenario', 'status', 'runs', 'wall', 'fs ops', 'send p99', 'lock wait p99', 'note'], rows, new Set([2, 3, 4, 5, 6])),
  ];
  for (const [index, scenario] of check.scenarios.entries()) {
    const body = await scenarioBody(scenario, index);
    const open = scenario.failures > 0 ? ' open' : '';
    parts.push(`<details${open} id="scenario-${escapeHtml(scenario.name)}"><summary>${escapeHtml(scenario.name)}: ${scenario.failures > 0 ? 'failed' : 'ok'}, ${scenario.seeds} runs</summary>\n${body}\n</details>`);
  }
  return parts.join('\n');
}

async function capacityBody(capacity: CapacityResult): Promise<string> {
  const { options } = capacity;
  const parts = [
    `<p>Profiles ${escapeHtml(options.profiles.join(', '))}; clients ${escapeHtml(options.clients.join(', '))}; ${options.ratePerClient === undefined ? 'closed loop (each client sends, receives and acks back to back)' : `${options.ratePerClient} msg/s offered per client`}; batch ${options.batch}${(options.bodyBytes ?? 0) > 0 ? `; ${options.bodyBytes}-byte bodies` : ''}${options.linkMBps === undefined ? '' : `; a ${options.linkMBps} MB/s link to the share`}; ${options.slots} slots; ${options.durationMs === undefined ? 'measured for at least 5 s and 1,000 acks per point' : `${(options.durationMs / 1000).toFixed(1)} s measured per point`}; what-if: ${escapeHtml(options.whatIf.length === 0 ? 'none' : options.whatIf.join(', '))}; seed ${options.seed}; ${(capacity.wallMs / 1000).toFixed(1)} s of wall time.</p>`,
    '<ul>',
    ...capacity.series.map((series) => `<li>${escapeHtml(capacityHeadline(series))}</li>`),
    '</ul>',
    await chart('capacity-throughput', capacityThroughputChart(capacity.series)),
    await chart('capacity-latency', capacityLatencyChart(capacity.series)),
  ];
  for (const series of capacity.series) {
    parts.push(`<h3>${escapeHtml(`${series.profile}, ${series.whatIf}`)}</h3>`);
    parts.push(table(capacityHeaders, capacityRows(series), new Set([0, 1, 2, 3, 4, 5, 6, 7, 8])));
  }
  parts.push(
    '<p class="note">Knee: the point of most throughput per unit of p50 latency (Kleinrock\'s power), where more clients start to buy waiting rather than throughput. ' +
      'Bound: the header lock serializes every operation and the next waiter is granted at the instant of an unlock, so lock cycles per second cannot pass 1 / (mean hold at the server); ' +
      'times the messages a cycle moves, that bounds messages per second. The dashed line is that bound with the hold measured at each point: where the lock is busy all the time it meets the measured line, ' +
      'and a falling bound means longer holds (more work per cycle, or a slower disk), not more waiting.</p>',
  );
  return parts.join('\n');
}

export async function renderHtml(document: ReportDocument): Promise<string> {
  let body: string;
  if (document.kind === 'check') body = await checkBody(document.check!);
  else if (document.kind === 'run') body = await runBody(document.run!);
  else body = await capacityBody(document.capacity!);
  const ok = document.exitCode === 0;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(document.title)}</title>
<style>${styles}</style>
</head>
<body>
<header>
<h1>${escapeHtml(document.title)} ${statusBadge(ok, ok ? 'pass' : `exit ${document.exitCode}`)}</h1>
<div class="meta">${escapeHtml(document.command)} · ${escapeHtml(document.generatedAt)}</div>
</header>
<main>
${body}
</main>
</body>
</html>
`;
}

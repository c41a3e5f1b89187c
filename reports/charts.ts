/**
 * Charts of a report as Vega-Lite specifications, rendered to SVG in Node by Vega (no browser, no
 * canvas: text is measured by estimate). Each function takes report data only (never a live run),
 * so `nasq report DIR` draws the same charts from the saved JSON.
 *
 * Vega is loaded on first use: commands that make no report never pay for it.
 */

import type { TopLevelSpec } from 'vega-lite';
import type { CapacitySeries } from './capacity.js';
import type { FaultWindow, Timeline } from './document.js';
import { type EncodedHistogram, histogramBins } from './histogram.js';
import type { MetricsBucket } from './metrics.js';

const width = 640;
const height = 200;
const faultColor = '#d62728';

interface Renderer {
  compile(spec: TopLevelSpec): unknown;
  render(vegaSpec: unknown): Promise<string>;
}

let renderer: Promise<Renderer> | undefined;

async function loadRenderer(): Promise<Renderer> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  return {
    compile: (spec) => vegaLite.compile(spec).spec,
    render: async (vegaSpec) => {
      const view = new vega.View(vega.parse(vegaSpec as Parameters<typeof vega.parse>[0]), { renderer: 'none' });
      try {
        return await view.toSVG();
      } finally {
        view.finalize();
      }
    },
  };
}

/**
 * Renders a Vega-Lite specification to an SVG document (a string starting with `<svg`). Vega
 * numbers its clip paths with a process-wide counter; they are renamed `ID-1`, `ID-2`, ... so
 * the same chart renders to the same text in any process, and several charts in one page keep
 * apart.
 */
export async function renderSvg(spec: TopLevelSpec, id = 'chart'): Promise<string> {
  renderer ??= loadRenderer();
  const loaded = await renderer;
  return localIds(await loaded.render(loaded.compile(spec)), id);
}

function localIds(svg: string, prefix: string): string {
  const names = new Map<string, string>();
  for (const match of svg.matchAll(/\sid="([^"]+)"/g)) {
    if (!names.has(match[1]!)) names.set(match[1]!, `${prefix}-${names.size + 1}`);
  }
  if (names.size === 0) return svg;
  return svg.replace(/(\sid="|url\(#|href="#)([^")]+)/g, (whole, head: string, name: string) => {
    const renamed = names.get(name);
    return renamed === undefined ? whole : `${head}${renamed}`;
  });
}

const baseConfig = {
  font: 'Helvetica, Arial, sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'right' as const, labelLimit: 320 },
  title: { fontSize: 14, anchor: 'start' as const },
};

function seconds(timeMs: number): number {
  return Math.round(timeMs) / 1000;
}

/** A layer of shaded fault windows (whole-height rectangles) behind a time chart, x in seconds. */
function faultLayer(faults: readonly FaultWindow[], endMs: number): Record<string, unknown>[] {
  if (faults.length === 0) return [];
  const values = faults.map((fault) => ({
    start: seconds(fault.startMs),
    end: seconds(Math.max(fault.startMs + 1, fault.endMs ?? endMs)),
    fault: `${fault.kind} (${fault.target})`,
  }));
  return [
    {
      data: { values },
      mark: { type: 'rect', color: faultColor, opacity: 0.12, clip: true },
      encoding: {
        x: { field: 'start', type: 'quantitative' },
        x2: { field: 'end' },
        tooltip: [{ field: 'fault', type: 'nominal' }, { field: 'start', title: 'from (s)' }, { field: 'end', title: 'to (s)' }],
      },
    },
    {
      data: { values },
      mark: { type: 'rule', color: faultColor, strokeDash: [4, 3], opacity: 0.7, clip: true },
      encoding: { x: { field: 'start', type: 'quantitative' } },
    },
  ];
}

type SeriesField = Exclude<keyof MetricsBucket, 'timeMs'>;

/** Long-form rows (time, series, value) of some fields of the buckets, nulls left out. */
function longRows(series: readonly MetricsBucket[], fields: ReadonlyArray<readonly [SeriesField, string]>): Array<{ time: number; series: string; value: number }> {
  const rows: Array<{ time: number; series: string; value: number }> = [];
  for (const bucket of series) {
    for (const [field, label] of fields) {
      const value = bucket[field];
      if (value !== null && Number.isFinite(value)) rows.push({ time: seconds(bucket.timeMs), series: label, value });
    }
  }
  return rows;
}

/** The time span a chart shows, ms of simulated time. */
export interface TimeSpan {
  readonly fromMs: number;
  readonly toMs: number;
}

function timeChart(title: string, yTitle: string, rows: unknown[], faults: readonly FaultWindow[], span: TimeSpan, options: { log?: boolean; step?: boolean; domain?: string[] } = {}): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width,
    height,
    config: baseConfig,
    layer: [
      ...faultLayer(
        faults.filter((fault) => (fault.endMs ?? span.toMs) >= span.fromMs && fault.startMs <= span.toMs),
        span.toMs,
      ),
      {
        data: { values: rows },
        mark: { type: 'line', interpolate: options.step === true ? 'step-after' : 'linear', strokeWidth: 1.6, point: false, clip: true },
        encoding: {
          x: { field: 'time', type: 'quantitative', title: 'simulated time (s)', scale: { domain: [seconds(span.fromMs), seconds(span.toMs)], nice: false } },
          y: { field: 'value', type: 'quantitative', title: yTitle, ...(options.log === true ? { scale: { type: 'log' } } : {}) },
          color: { field: 'series', type: 'nominal', title: null, ...(options.domain === undefined ? {} : { scale: { domain: options.domain } }) },
        },
      },
    ],
  } as unknown as TopLevelSpec;
}

export function throughputChart(series: readonly MetricsBucket[], faults: readonly FaultWindow[], span: TimeSpan): TopLevelSpec {
  const rows = longRows(series, [
    ['sentPerSecond', 'sent / s'],
    ['deliveredPerSecond', 'delivered / s'],
    ['ackedPerSecond', 'acked / s'],
    ['lockGrantsPerSecond', 'lock cycles / s'],
  ]);
  return timeChart('Throughput over simulated time (faults shaded)', 'per second', rows, faults, span, { domain: ['sent / s', 'delivered / s', 'acked / s', 'lock cycles / s'] });
}

export function latencyOverTimeChart(series: readonly MetricsBucket[], faults: readonly FaultWindow[], span: TimeSpan): TopLevelSpec {
  const rows = longRows(series, [
    ['sendP50Ms', 'send p50'],
    ['sendP99Ms', 'send p99'],
    ['receiveP50Ms', 'receive p50'],
    ['receiveP99Ms', 'receive p99'],
    ['ackP50Ms', 'ack p50'],
    ['ackP99Ms', 'ack p99'],
  ]);
  return timeChart('Call latency percentiles over simulated time (faults shaded)', 'latency (ms, log)', rows, faults, span, { log: true });
}

export function depthChart(series: readonly MetricsBucket[], faults: readonly FaultWindow[], span: TimeSpan): TopLevelSpec {
  const rows = longRows(series, [
    ['unread', 'unread'],
    ['pending', 'pending (leased)'],
  ]);
  return timeChart('Queue depth over simulated time (faults shaded)', 'messages', rows, faults, span, { step: true });
}

/** One panel of a histograms chart. */
export interface HistogramPanel {
  readonly name: string;
  readonly histogram: EncodedHistogram;
  /**
   * Values recorded as 0 (a lock granted at once, stored as 1 µs): said in the panel's title and
   * left out of its bars, so the log scale shows the waits that happened.
   */
  readonly zeros?: number;
}

/** Small multiples of histograms on a log scale of ms, one panel per name. */
export function histogramsChart(title: string, histograms: readonly HistogramPanel[]): TopLevelSpec {
  const rows: Array<{ panel: string; from: number; to: number; count: number; share: number }> = [];
  const panels: string[] = [];
  for (const { name, histogram, zeros } of histograms) {
    if (histogram.summary.count === 0) continue;
    const { p50Ms, p99Ms, count } = histogram.summary;
    const atOnce = zeros === undefined || zeros === 0 ? '' : ` (${((zeros / count) * 100).toFixed(0)} % at once)`;
    const panel = `${name}: n=${count}${atOnce}, p50 ${formatMs(p50Ms)}, p99 ${formatMs(p99Ms)}`;
    panels.push(panel);
    for (const bin of histogramBins(histogram)) {
      if (zeros !== undefined && zeros > 0 && bin.toMs <= zeroBarMs) continue;
      rows.push({ panel, from: bin.fromMs, to: bin.toMs, count: bin.count, share: bin.count / count });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    config: baseConfig,
    data: { values: rows },
    facet: { field: 'panel', type: 'nominal', title: null, sort: panels, header: { labelFontSize: 11, labelAnchor: 'start' } },
    columns: 2,
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 300,
      height: 130,
      mark: { type: 'rect', color: '#4c78a8', stroke: 'white', strokeWidth: 0.5 },
      encoding: {
        x: { field: 'from', type: 'quantitative', title: 'ms (log)', scale: { type: 'log' } },
        x2: { field: 'to' },
        y: { field: 'count', type: 'quantitative', title: 'calls' },
        tooltip: [
          { field: 'from', title: 'from ms', format: '.3f' },
          { field: 'to', title: 'to ms', format: '.3f' },
          { field: 'count', title: 'count' },
          { field: 'share', title: 'share', format: '.1%' },
        ],
      },
    },
  } as unknown as TopLevelSpec;
}

/** Bars at or below this are the zeros of a panel with `zeros` (recorded as 1 µs). */
const zeroBarMs = 0.0015;

export function formatMs(valueMs: number): string {
  if (valueMs >= 10_000) return `${(valueMs / 1000).toFixed(1)} s`;
  if (valueMs >= 100) return `${valueMs.toFixed(0)} ms`;
  if (valueMs >= 1) return `${valueMs.toFixed(2)} ms`;
  return `${(valueMs * 1000).toFixed(0)} µs`;
}

const kindColors = { domain: ['open', 'send', 'receive', 'ack', 'release'], range: ['#9e9e9e', '#4c78a8', '#54a24b', '#f58518', '#b279a2'] };

/**
 * A lane per client, each operation a bar from its invocation to its completion (to the run's end
 * if it never completed, faded); the operations a failing checker names outlined in red; faults
 * shaded (the server's over every lane, a client's over its own lane).
 */
export function timelineChart(timeline: Timeline, faults: readonly FaultWindow[], endMs: number, zoom?: TimeSpan): TopLevelSpec {
  const lanes = timeline.clients;
  const operations = timeline.operations.map((operation) => ({
    client: operation.client,
    kind: operation.kind,
    start: operation.invokeMs,
    end: Math.max(operation.invokeMs + 0.05, operation.completeMs ?? endMs),
    done: operation.completeMs !== null,
    outcome: operation.outcome,
    violating: operation.violating,
    text: operation.text,
  }));
  const serverFaults = faults.filter((fault) => !lanes.includes(fault.target)).map((fault) => ({ fault: `${fault.kind} (${fault.target})`, start: fault.startMs, end: Math.max(fault.startMs + 0.5, fault.endMs ?? endMs) }));
  const clientFaults = faults.filter((fault) => lanes.includes(fault.target)).map((fault) => ({ client: fault.target, fault: fault.kind, start: fault.startMs, end: Math.max(fault.startMs + 0.5, fault.endMs ?? endMs) }));
  const y = { field: 'client', type: 'nominal', title: null, scale: { domain: lanes }, sort: lanes };
  const x = { type: 'quantitative', title: 'simulated time (ms)', ...(zoom === undefined ? {} : { scale: { domain: [zoom.fromMs, zoom.toMs], nice: false } }) };
  const layers: Record<string, unknown>[] = [];
  if (serverFaults.length > 0) {
    layers.push({
      data: { values: serverFaults },
      mark: { type: 'rect', color: faultColor, opacity: 0.1, clip: true },
      encoding: { x: { field: 'start', ...x }, x2: { field: 'end' }, tooltip: [{ field: 'fault' }] },
    });
  }
  if (clientFaults.length > 0) {
    layers.push({
      data: { values: clientFaults },
      mark: { type: 'bar', color: faultColor, opacity: 0.25, height: { band: 1 }, clip: true },
      encoding: { y, x: { field: 'start', ...x }, x2: { field: 'end' }, tooltip: [{ field: 'fault' }, { field: 'client' }] },
    });
    layers.push({
      data: { values: clientFaults },
      mark: { type: 'tick', color: faultColor, thickness: 2, clip: true },
      encoding: { y, x: { field: 'start', ...x } },
    });
  }
  layers.push({
    data: { values: operations },
    mark: { type: 'bar', height: { band: 0.6 }, clip: true },
    encoding: {
      y,
      x: { field: 'start', ...x },
      x2: { field: 'end' },
      color: { field: 'kind', type: 'nominal', title: 'operation', scale: kindColors },
      opacity: { condition: { test: 'datum.done', value: 0.9 }, value: 0.35 },
      stroke: { condition: { test: 'datum.violating', value: faultColor }, value: null },
      strokeWidth: { condition: { test: 'datum.violating', value: 2.5 }, value: 0 },
      tooltip: [{ field: 'text', title: 'operation' }],
    },
  });
  const violating = operations.filter((operation) => operation.violating);
  if (violating.length > 0) {
    layers.push({
      data: { values: violating },
      mark: { type: 'point', shape: 'triangle-down', color: faultColor, filled: true, size: 60, yOffset: -9, clip: true },
      encoding: { y, x: { field: 'start', ...x }, tooltip: [{ field: 'text', title: 'violating operation' }] },
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title:
      zoom === undefined
        ? `Per-client timeline${timeline.omitted > 0 ? ` (${timeline.operations.length} operations nearest the violations; ${timeline.omitted} left out)` : ''}: violating operations outlined in red and marked, faults shaded`
        : `The same, zoomed to the violating operations (${formatMs(zoom.fromMs)} to ${formatMs(zoom.toMs)})`,
    width: 900,
    height: Math.max(80, Math.min(1600, lanes.length * 22)),
    config: baseConfig,
    layer: layers,
  } as unknown as TopLevelSpec;
}

/** A window around the violating operations of a timeline, or undefined when none is named or it spans most of the run. */
export function violationZoom(timeline: Timeline, endMs: number): TimeSpan | undefined {
  const violating = timeline.operations.filter((operation) => operation.violating);
  if (violating.length === 0) return undefined;
  const fromMs = Math.min(...violating.map((operation) => operation.invokeMs));
  const toMs = Math.max(...violating.map((operation) => operation.completeMs ?? operation.invokeMs));
  const startMs = Math.min(...timeline.operations.map((operation) => operation.invokeMs));
  const padMs = Math.max(20, (toMs - fromMs) * 0.5);
  const zoom = { fromMs: Math.max(startMs, fromMs - padMs), toMs: Math.min(endMs, toMs + padMs) };
  return zoom.toMs - zoom.fromMs < 0.6 * (endMs - startMs) ? zoom : undefined;
}

function seriesLabel(series: CapacitySeries): string {
  return `${series.profile} ${series.whatIf}`;
}

/** Throughput against clients (log 2 axis), the knee marked, the bound (1 / hold) dashed. */
export function capacityThroughputChart(seriesList: readonly CapacitySeries[]): TopLevelSpec {
  const measured = seriesList.flatMap((series) => series.points.map((point) => ({ series: seriesLabel(series), clients: point.clients, value: point.messagesPerSecond, what: 'measured' })));
  const bounds = seriesList.flatMap((series) =>
    series.points.map((point) => ({ series: seriesLabel(series), clients: point.clients, value: point.boundCyclesPerSecond * point.messagesPerCycle, what: 'bound 1/hold' })),
  );
  const knees = seriesList.flatMap((series) => (series.knee === undefined ? [] : [{ series: seriesLabel(series), clients: series.knee.clients, value: series.knee.messagesPerSecond, label: `knee: ${series.knee.clients} clients` }]));
  const plateaus = seriesList.map((series) => ({ series: seriesLabel(series), value: series.bound.messagesPerSecond, label: `bound at peak ${series.bound.messagesPerSecond.toFixed(0)} msg/s (hold ${formatMs(series.bound.holdMs)})` }));
  const x = { field: 'clients', type: 'quantitative', title: 'clients (log 2)', scale: { type: 'log', base: 2 }, axis: { values: [...new Set(seriesList.flatMap((series) => series.points.map((point) => point.clients)))] } };
  const color = { field: 'series', type: 'nominal', title: 'profile / what-if', scale: { domain: seriesList.map(seriesLabel) } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Throughput against clients: measured (solid), analytic bound 1 / lock hold (dashed), knee (ringed)',
    width,
    height: 260,
    config: baseConfig,
    layer: [
      { data: { values: bounds }, mark: { type: 'line', strokeDash: [5, 4], strokeWidth: 1.2, opacity: 0.8 }, encoding: { x, y: { field: 'value', type: 'quantitative' }, color } },
      { data: { values: plateaus }, mark: { type: 'rule', strokeDash: [2, 2], opacity: 0.5 }, encoding: { y: { field: 'value', type: 'quantitative' }, color, tooltip: [{ field: 'label' }] } },
      {
        data: { values: measured },
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: { x, y: { field: 'value', type: 'quantitative', title: 'messages acked / s' }, color, tooltip: [{ field: 'series' }, { field: 'clients' }, { field: 'value', format: '.1f', title: 'msg/s' }] },
      },
      { data: { values: knees }, mark: { type: 'point', size: 260, strokeWidth: 2.5, filled: false }, encoding: { x, y: { field: 'value', type: 'quantitative' }, color, tooltip: [{ field: 'label' }] } },
      { data: { values: knees }, mark: { type: 'text', dy: -16, fontSize: 11 }, encoding: { x, y: { field: 'value', type: 'quantitative' }, text: { field: 'label' }, color } },
    ],
  } as unknown as TopLevelSpec;
}

/** p50 and p99 call latency against clients, both axes log. */
export function capacityLatencyChart(seriesList: readonly CapacitySeries[]): TopLevelSpec {
  const rows = seriesList.flatMap((series) =>
    series.points.flatMap((point) => [
      { series: seriesLabel(series), clients: point.clients, value: point.latency.p50Ms, percentile: 'p50' },
      { series: seriesLabel(series), clients: point.clients, value: point.latency.p99Ms, percentile: 'p99' },
    ]),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Call latency against clients: p50 (solid) and p99 (dashed)',
    width,
    height: 260,
    config: baseConfig,
    data: { values: rows.filter((row) => row.value > 0) },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 'clients', type: 'quantitative', title: 'clients (log 2)', scale: { type: 'log', base: 2 }, axis: { values: [...new Set(rows.map((row) => row.clients))] } },
      y: { field: 'value', type: 'quantitative', title: 'latency (ms, log)', scale: { type: 'log' } },
      color: { field: 'series', type: 'nominal', title: 'profile / what-if', scale: { domain: seriesList.map(seriesLabel) } },
      strokeDash: { field: 'percentile', type: 'nominal', title: 'percentile', scale: { domain: ['p50', 'p99'], range: [[1, 0], [5, 3]] } },
      tooltip: [{ field: 'series' }, { field: 'clients' }, { field: 'percentile' }, { field: 'value', format: '.2f', title: 'ms' }],
    },
  } as unknown as TopLevelSpec;
}

/**
 * Latency histograms: HdrHistogram (hdr-histogram-js) over microseconds, 2 significant digits (a
 * value is kept within 1 %), up to an hour. A histogram travels in the report JSON as
 * HdrHistogram's compressed base64 encoding with a summary beside it, so `nasq report` can
 * re-render, merge and re-bin it later.
 *
 * Why 2 digits and not HdrHistogram's usual 3: encoding deflates the whole counts array, 16 times
 * larger with 3 digits; a check with --report encodes six histograms per run, and at 3 digits that
 * cost more than the runs themselves (1.6 ms against 0.1 ms per histogram).
 */

import { JsHistogram, build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';

/** Largest value a histogram holds, µs (an hour of simulated time). */
const highestTrackableMicroseconds = 3_600_000_000;

export interface HistogramSummary {
  readonly count: number;
  readonly minMs: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export interface EncodedHistogram {
  readonly summary: HistogramSummary;
  /** HdrHistogram compressed base64 (values in µs); '' when empty. */
  readonly encoded: string;
}

/** One bar of a histogram chart: values in [fromMs, toMs). */
export interface HistogramBin {
  readonly fromMs: number;
  readonly toMs: number;
  readonly count: number;
}

export function createHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: highestTrackableMicroseconds, numberOfSignificantValueDigits: 2 });
}

/** Records a duration in ms (clamped to [1 µs, an hour]). */
export function recordMs(histogram: Histogram, valueMs: number): void {
  if (!Number.isFinite(valueMs)) throw new TypeError(`recordMs: expected a finite duration, got ${valueMs}`);
  histogram.recordValue(Math.min(highestTrackableMicroseconds, Math.max(1, Math.round(valueMs * 1000))));
}

export function summarize(histogram: Histogram): HistogramSummary {
  const count = histogram.totalCount;
  if (count === 0) return { count: 0, minMs: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
  const at = (percentile: number): number => histogram.getValueAtPercentile(percentile) / 1000;
  return {
    count,
    minMs: histogram.minNonZeroValue / 1000,
    meanMs: histogram.mean / 1000,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: histogram.maxValue / 1000,
  };
}

export function encodeHistogram(histogram: Histogram): EncodedHistogram {
  return { summary: summarize(histogram), encoded: histogram.totalCount === 0 ? '' : encodeIntoCompressedBase64(histogram) };
}

export function decodeHistogram(encoded: EncodedHistogram): Histogram {
  if (encoded.encoded === '') return createHistogram();
  return decodeFromCompressedBase64(encoded.encoded);
}

/** The sum of several encoded histograms. */
export function mergeHistograms(histograms: readonly EncodedHistogram[]): EncodedHistogram {
  const total = createHistogram();
  for (const histogram of histograms) if (histogram.summary.count > 0) total.add(decodeHistogram(histogram));
  return encodeHistogram(total);
}

/** Most bars of a histogram chart. */
const binsMaximum = 48;

/**
 * Bars on a log scale from the smallest to the largest value (HdrHistogram's buckets are
 * logarithmic too): `binsPerDecade` bars per factor of ten, at most 48.
 */
export function histogramBins(encoded: EncodedHistogram, binsPerDecade = 10): HistogramBin[] {
  if (encoded.summary.count === 0) return [];
  const histogram = decodeHistogram(encoded);
  if (!(histogram instanceof JsHistogram)) throw new TypeError('histogramBins: expected a JavaScript histogram');
  const minimum = Math.max(1, histogram.minNonZeroValue);
  const maximum = Math.max(minimum + 1, histogram.maxValue);
  const decades = Math.log10(maximum / minimum);
  const perDecade = Math.max(1, Math.min(binsPerDecade, Math.floor(binsMaximum / Math.max(decades, 1e-9))));
  const firstEdge = Math.floor(Math.log10(minimum) * perDecade);
  const lastEdge = Math.ceil(Math.log10(maximum) * perDecade + 1e-9);
  const edges: number[] = [];
  for (let edge = firstEdge; edge <= lastEdge && edges.length <= binsMaximum + 1; edge += 1) edges.push(10 ** (edge / perDecade));
  if (edges[edges.length - 1]! <= maximum) edges.push(maximum * 1.0001);
  const counts = new Array<number>(edges.length - 1).fill(0);
  const iterator = histogram.recordedValuesIterator;
  iterator.reset();
  let bin = 0;
  for (let step = 0; step < 1_000_000 && iterator.hasNext(); step += 1) {
    const value = iterator.next();
    const at = histogram.medianEquivalentValue(value.valueIteratedTo);
    while (bin < counts.length - 1 && at >= edges[bin + 1]!) bin += 1;
    counts[bin]! += value.countAtValueIteratedTo;
  }
  return counts.map((count, index) => ({ fromMs: edges[index]! / 1000, toMs: edges[index + 1]! / 1000, count }));
}

/** Exact percentile of a small sorted array (nearest rank). */
export function percentileOfSorted(sorted: readonly number[], percentile: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((percentile / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

import { describe, expect, it } from 'vitest';
import { createHistogram, decodeHistogram, encodeHistogram, histogramBins, mergeHistograms, percentileOfSorted, recordMs, summarize } from './histogram.js';

describe('latency histograms', () => {
  it('summarize within HdrHistogram precision (2 digits: 1 %), in ms', () => {
    const histogram = createHistogram();
    for (let value = 1; value <= 1000; value += 1) recordMs(histogram, value / 10); // 0.1 .. 100 ms
    const summary = summarize(histogram);
    expect(summary.count).toBe(1000);
    expect(summary.p50Ms).toBeCloseTo(50, 0);
    expect(summary.p99Ms).toBeCloseTo(99, 0);
    expect(summary.minMs).toBeCloseTo(0.1, 3);
    expect(summary.maxMs).toBeCloseTo(100, 0);
    expect(summary.meanMs).toBeCloseTo(50.05, 0);
  });

  it('survive the JSON round trip and merge by summing', () => {
    const a = createHistogram();
    const b = createHistogram();
    for (let index = 0; index < 300; index += 1) recordMs(a, 1 + index / 100);
    for (let index = 0; index < 100; index += 1) recordMs(b, 500 + index);
    const encodedA = JSON.parse(JSON.stringify(encodeHistogram(a))) as ReturnType<typeof encodeHistogram>;
    expect(decodeHistogram(encodedA).getValueAtPercentile(50)).toBe(a.getValueAtPercentile(50));
    const merged = mergeHistograms([encodedA, encodeHistogram(b), encodeHistogram(createHistogram())]);
    expect(merged.summary.count).toBe(400);
    expect(merged.summary.maxMs).toBeGreaterThanOrEqual(599);
    expect(merged.summary.p50Ms).toBeLessThan(5); // three quarters are around 1-4 ms
  });

  it('bin on a log scale: every value in exactly one bar, bars in order and adjacent', () => {
    const histogram = createHistogram();
    for (let index = 0; index < 2000; index += 1) recordMs(histogram, 0.05 * 1.005 ** index);
    const bins = histogramBins(encodeHistogram(histogram));
    expect(bins.reduce((sum, bin) => sum + bin.count, 0)).toBe(2000);
    expect(bins.length).toBeLessThanOrEqual(49);
    for (let index = 1; index < bins.length; index += 1) expect(bins[index]!.fromMs).toBeCloseTo(bins[index - 1]!.toMs, 9);
    expect(bins[0]!.fromMs).toBeLessThanOrEqual(0.05);
    expect(bins.at(-1)!.toMs).toBeGreaterThanOrEqual(summarize(histogram).maxMs);
    expect(histogramBins(encodeHistogram(createHistogram()))).toEqual([]);
  });

  it('nearest-rank percentiles of small arrays', () => {
    expect(percentileOfSorted([1, 2, 3, 4], 50)).toBe(2);
    expect(percentileOfSorted([1, 2, 3, 4], 99)).toBe(4);
    expect(percentileOfSorted([7], 50)).toBe(7);
    expect(percentileOfSorted([], 50)).toBeNaN();
  });
});

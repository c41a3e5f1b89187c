/**
 * The metrics of a run agree with what the run did: counts with the history and the summary,
 * lock grants and holds with the trace, and collecting them does not change the run.
 */

import { describe, expect, it } from 'vitest';
import { nominalConfig } from '../properties/config.js';
import { runScenario } from '../properties/run.js';
import { resolveScenarios } from '../scenarios/index.js';
import { MetricsCollector, niceBucketMs } from './metrics.js';

async function configOf(name: string, seed: number) {
  const [loaded] = await resolveScenarios(name);
  return nominalConfig(loaded!.scenario, seed);
}

describe('run metrics', () => {
  it('count what the history and the trace hold, and leave the trace hash alone', async () => {
    const config = await configOf('contention', 7);
    const plain = await runScenario(config);
    const lines: string[] = [];
    const outcome = await runScenario(config, { metrics: new MetricsCollector(), trace: { windowSize: 0, sink: { write: (line) => lines.push(line) } } });
    expect(outcome.stats.traceHash).toBe(plain.stats.traceHash);
    expect(plain.metrics).toBeUndefined();
    const metrics = outcome.metrics!;
    expect(metrics.totals.acked).toBe(outcome.summary.acksOk);
    expect(metrics.totals.sent).toBe(outcome.summary.sendsOk);
    expect(metrics.latency.ack.summary.count).toBe(outcome.summary.acksOk);

    // Lock grants and releases of the header range at the server, from the trace text.
    const timeOf = (line: string): number => Number(/ ([\d.]+)ms /.exec(line)![1]);
    const grants = lines.filter((line) => / apply \S+ lock q\/kernel @0\+16384 -> success/.test(line) && timeOf(line) >= metrics.fromMs);
    expect(metrics.lock.grants).toBe(grants.length);
    expect(metrics.lock.hold.summary.count).toBeGreaterThan(grants.length * 0.95);
    // Holds: the first grant of sender-0 to its next unlock, from the trace.
    const first = lines.findIndex((line) => / apply sender-0 lock q\/kernel @0\+16384 -> success/.test(line));
    const unlock = lines.findIndex((line, index) => index > first && / apply sender-0 unlock q\/kernel @0\+16384 -> success/.test(line));
    const holdMs = timeOf(lines[unlock]!) - timeOf(lines[first]!);
    expect(holdMs).toBeGreaterThanOrEqual(metrics.lock.hold.summary.minMs - 0.01);
    expect(holdMs).toBeLessThanOrEqual(metrics.lock.hold.summary.maxMs + 0.01);

    // The series add up to the totals; 64 clients on one lock: it is busy, and many wait.
    const perSecond = 1000 / metrics.bucketMs;
    expect(Math.round(metrics.series.reduce((sum, bucket) => sum + bucket.ackedPerSecond, 0) / perSecond)).toBe(metrics.totals.acked);
    expect(Math.round(metrics.series.reduce((sum, bucket) => sum + bucket.lockGrantsPerSecond, 0) / perSecond)).toBe(metrics.lock.grants);
    expect(metrics.lock.busyFraction).toBeGreaterThan(0.3);
    expect(metrics.lock.busyFraction).toBeLessThanOrEqual(1);
    expect(metrics.lock.wait.summary.p99Ms).toBeGreaterThan(metrics.lock.hold.summary.p99Ms);
    expect(metrics.lock.grantedAtOnce).toBeLessThan(metrics.lock.grants);
    // The queue empties by the end (the liveness phase drains it).
    const last = metrics.series.at(-1)!;
    expect(last.unread).toBe(0);
    expect(last.pending).toBe(0);
    expect(Math.max(...metrics.series.map((bucket) => bucket.unread ?? 0))).toBeGreaterThan(0);
  });

  it('name the window and buckets', async () => {
    expect(niceBucketMs(10_000, 100)).toBe(100);
    expect(niceBucketMs(12_000, 100)).toBe(200);
    expect(niceBucketMs(3, 120)).toBe(0.05);
    const outcome = await runScenario(await configOf('smoke', 3), { metrics: new MetricsCollector() });
    const metrics = outcome.metrics!;
    expect(metrics.series.length).toBeLessThanOrEqual(120);
    expect(metrics.series[0]!.timeMs).toBe(metrics.fromMs);
    expect(metrics.fromMs).toBe(outcome.history.operations[0]!.invokeMs);
    expect(metrics.toMs).toBe(outcome.stats.simulatedMs);
    expect(JSON.parse(JSON.stringify(metrics))).toEqual(metrics);
  });
});

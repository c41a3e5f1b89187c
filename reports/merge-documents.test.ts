/**
 * The report documents of the shards of a check merge into the document of the whole check: the
 * same failure (the lowest run over the shards), histograms summed over every run, shard 1's
 * example run, one exit code; and a set of documents that is not one whole check is refused.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, type CheckOptions } from '../properties/check.js';
import { MergeError } from '../properties/merge.js';
import { parseScenario } from '../scenarios/schema.js';
import { CheckReportBuilder, documentOf, type ReportDocument } from './document.js';
import { mergeCheckDocuments } from './merge-documents.js';
import { MetricsCollector } from './metrics.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'nasq-merge-documents-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A real liveness failure in some runs only: with seed 2 the lowest failing run is past run 0. */
const scenario = parseScenario(
  {
    name: 'sometimes-impatient',
    description: 'receivers too slow only when many messages are drawn',
    clients: { senders: 1, receivers: 1 },
    workload: { messages: { min: 1, max: 30 }, processMs: 60 },
    options: { faultPhaseMs: 0, settleMs: 1_500, livenessBoundMs: 50 },
  },
  'test',
);

/** A check with metrics, made into its report document as `check --report` does. */
async function documentOfCheck(options: Partial<CheckOptions>, name: string): Promise<ReportDocument> {
  const builder = new CheckReportBuilder();
  const report = await check(
    {
      scenarios: [{ scenario, source: 'test' }],
      seeds: 20,
      seed: 2,
      runOptions: { metrics: new MetricsCollector() },
      failureDirectory: join(directory, name),
      onProgress: (event) => {
        if (event.type === 'run') builder.onRun(event.scenario, event.outcome, 'npx nasq');
      },
      ...options,
    },
    () => 0,
  );
  return documentOf('check', { title: name, command: name, exitCode: report.exitCode, generatedAt: new Date(0) }, { check: builder.finish(report, new Map()) });
}

describe('merging report documents', () => {
  it('merges the shards of a check into its document: the same failure, histograms over every run', async () => {
    const whole = await documentOfCheck({}, 'whole');
    const shards = [];
    for (const index of [2, 1, 3]) shards.push({ document: await documentOfCheck({ shard: { index, count: 3 }, workers: index === 3 ? 2 : 1 }, `shard-${index}`), source: `shard-${index}` });
    const merged = mergeCheckDocuments(shards, { command: 'nasq report merge', generatedAt: new Date(0) });
    const section = merged.check!.scenarios[0]!;
    const wholeSection = whole.check!.scenarios[0]!;
    expect(merged.exitCode).toBe(3);
    expect(merged.check!.exitCode).toBe(3);
    // Every shard ran this build, and the merged document says so.
    expect(merged.check!.build).toEqual(whole.check!.build);
    expect(merged.check!.build?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(section.failure).toEqual({ ...wholeSection.failure!, file: section.failure!.file });
    const failureRun = Number(wholeSection.failure!.fastCheck.path.split(':')[0]);
    expect(failureRun, 'a failure past run 0').toBeGreaterThan(0);
    expect(section.failure!.fastCheck.path.startsWith(`${failureRun}:`)).toBe(true);
    expect(section.replay[0]).toContain(`shard-${(failureRun % 3) + 1}/`); // the shard that holds that run
    // Every run of every shard measured, and counted once.
    expect(section.measuredRuns).toBe(shards.reduce((sum, { document }) => sum + document.check!.scenarios[0]!.measuredRuns, 0));
    expect(section.histograms!.send.summary.count).toBe(shards.reduce((sum, { document }) => sum + document.check!.scenarios[0]!.histograms!.send.summary.count, 0));
    const grantedAtOnce = shards.reduce((sum, { document }) => sum + document.check!.scenarios[0]!.histograms!.lockGrantedAtOnce, 0);
    expect(grantedAtOnce).toBeGreaterThan(0);
    expect(section.histograms!.lockGrantedAtOnce).toBe(grantedAtOnce);
    // What the runs exercised, summed over the shards.
    const contended = shards.map(({ document }) => document.check!.scenarios[0]!.exercised!['header-lock:contended']!);
    expect(section.exercised!['header-lock:contended']).toEqual({
      count: contended.reduce((sum, total) => sum + total.count, 0),
      runs: contended.reduce((sum, total) => sum + total.runs, 0),
    });
    // The example run is run 0, as in the unsharded document.
    const withoutWallTime = (sample: typeof section.sample) => (sample === null ? null : { ...sample, stats: { ...sample.stats, wallMs: 0 } });
    expect(withoutWallTime(section.sample)).toEqual(withoutWallTime(wholeSection.sample));
    expect(section.sample!.config).toEqual(wholeSection.sample!.config);
  });

  it('refuses documents that are not one whole check', async () => {
    const one = await documentOfCheck({ seeds: 2, shard: { index: 1, count: 2 } }, 'refuse-1');
    expect(() => mergeCheckDocuments([{ document: one, source: 'a/report.json' }], { command: 'merge', generatedAt: new Date(0) })).toThrow(MergeError);
    expect(() => mergeCheckDocuments([{ document: one, source: 'a/report.json' }], { command: 'merge', generatedAt: new Date(0) })).toThrow(/shard 2\/2 missing/);
    const run = documentOf('run', { title: 'a run', command: 'nasq run', exitCode: 0, generatedAt: new Date(0) }, {});
    expect(() => mergeCheckDocuments([{ document: run, source: 'b/report.json' }], { command: 'merge', generatedAt: new Date(0) })).toThrow(/b\/report\.json: a run report; a merge takes the reports of nasq check/);
  });
});

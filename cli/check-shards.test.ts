/**
 * `nasq check --workers N`, `--shard I/N` and `nasq report merge`, as CI runs them: fresh
 * processes of the compiled CLI (npm test builds it first), JSON reports in files, exit codes.
 */

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nasq } from './test-support/run-nasq.js';

let directory: string;
let scenarioFile: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'nasq-shards-'));
  // A real liveness failure of the real engine in some runs only (with seed 2 the lowest is past run
  // 0: run 13 when this was written).
  scenarioFile = join(directory, 'sometimes-impatient.json');
  await writeFile(
    scenarioFile,
    JSON.stringify({
      name: 'sometimes-impatient',
      description: 'receivers too slow only when many messages are drawn',
      clients: { senders: 1, receivers: 1 },
      workload: { messages: { min: 1, max: 30 }, processMs: 60 },
      options: { faultPhaseMs: 0, settleMs: 1_500, livenessBoundMs: 50 },
    }),
  );
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

interface JsonReport {
  seeds: number;
  exitCode: number;
  shard?: { index: number; count: number };
  scenarios: Array<{
    name: string;
    seeds: number;
    failureRun?: number;
    failure?: { file: string; record: Record<string, unknown> };
    exercised: Record<string, { count: number; runs: number }>;
  }>;
}

const withoutPlace = (record: Record<string, unknown>): Record<string, unknown> => ({ ...record, file: '', replay: [] });

describe('nasq check --workers and --shard, nasq report merge', () => {
  it('writes the same failure file with 1 worker and with 2, and with 1 shard or 4 merged', async () => {
    const common = ['check', '--scenario', `${scenarioFile},clock-skew`, '--seeds', '24', '--seed', '2', '--json'];
    const one = await nasq([...common, '--workers', '1', '--failures', join(directory, 'one')]);
    const two = await nasq([...common, '--workers', '2', '--failures', join(directory, 'two')]);
    expect(one.stderr).toBe('');
    expect(one.code).toBe(3);
    expect(two.code).toBe(3);
    const oneReport = JSON.parse(one.stdout) as JsonReport;
    const twoReport = JSON.parse(two.stdout) as JsonReport;
    const failureRun = oneReport.scenarios[0]!.failureRun!;
    expect(failureRun, 'a failure past run 0').toBeGreaterThan(0);
    expect(oneReport.scenarios.map((result) => [result.name, result.seeds, result.failureRun])).toEqual([
      ['sometimes-impatient', failureRun + 1, failureRun],
      ['clock-skew', 24, undefined],
    ]);
    expect(twoReport.scenarios.map((result) => [result.name, result.seeds, result.failureRun])).toEqual(oneReport.scenarios.map((result) => [result.name, result.seeds, result.failureRun]));
    const oneFile = JSON.parse(await readFile(oneReport.scenarios[0]!.failure!.file, 'utf8')) as Record<string, unknown>;
    const twoFile = JSON.parse(await readFile(twoReport.scenarios[0]!.failure!.file, 'utf8')) as Record<string, unknown>;
    expect(withoutPlace(twoFile)).toEqual(withoutPlace(oneFile));

    // Four shards, as four CI jobs: each its own directory of artifacts (report and failure files).
    for (const index of [1, 2, 3, 4]) {
      const artifacts = join(directory, 'artifacts', `shard-${index}`);
      await mkdir(artifacts, { recursive: true });
      const shard = await nasq([...common, '--shard', `${index}/4`, '--workers', String(1 + (index % 2)), '--failures', join(artifacts, 'failures')]);
      expect([0, 3]).toContain(shard.code);
      await writeFile(join(artifacts, 'report.json'), shard.stdout);
    }
    const merged = await nasq(['report', 'merge', join(directory, 'artifacts'), '--json']);
    expect(merged.stderr).toBe('');
    expect(merged.code).toBe(3);
    const mergedReport = JSON.parse(merged.stdout) as JsonReport;
    expect(mergedReport.shard).toBeUndefined();
    expect(mergedReport.scenarios.map((result) => result.failureRun)).toEqual([failureRun, undefined]);
    expect(mergedReport.scenarios[1]!.seeds).toBe(24);
    // Every run of clock-skew counted once, whatever the shards and workers: the same events.
    expect(Object.keys(oneReport.scenarios[1]!.exercised)).toContain('fault:clock-skew');
    expect(mergedReport.scenarios[1]!.exercised).toEqual(oneReport.scenarios[1]!.exercised);
    expect(twoReport.scenarios[1]!.exercised).toEqual(oneReport.scenarios[1]!.exercised);
    expect(mergedReport.scenarios[0]!.failure!.file).toMatch(new RegExp(`shard-${(failureRun % 4) + 1}/failures/sometimes-impatient-2-\\d+\\.json$`));
    const mergedFile = JSON.parse(await readFile(mergedReport.scenarios[0]!.failure!.file, 'utf8')) as Record<string, unknown>;
    expect(withoutPlace(mergedFile)).toEqual(withoutPlace(oneFile));

    // The text form, and the failure file replays to the same trace hash.
    const text = await nasq(['report', 'merge', join(directory, 'artifacts')]);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(new RegExp(`sometimes-impatient +\\d+ runs {2}FAILED \\(liveness\\) at run ${failureRun}\n`));
    expect(text.stdout).toMatch(/clock-skew +24 runs {2}ok/);
    const replayed = await nasq(['replay', mergedReport.scenarios[0]!.failure!.file]);
    expect(replayed.code).toBe(3);
    expect(replayed.stdout).toContain(`same trace hash ${String(oneFile['traceHash'])}`);

    // The second replay line replays the counterexample through fast-check, on worker threads too.
    const fastCheck = oneFile['fastCheck'] as { seed: number; path: string };
    const path = await nasq(['check', '--scenario', scenarioFile, '--seed', String(fastCheck.seed), '--path', fastCheck.path, '--workers', '2', '--json', '--failures', join(directory, 'path')]);
    expect(path.code).toBe(3);
    const pathReport = JSON.parse(path.stdout) as JsonReport;
    expect(pathReport.scenarios[0]!.failure!.record['traceHash']).toBe(oneFile['traceHash']);
  });

  it('a merge says which scheduled fault no shard ever started', async () => {
    const late = join(directory, 'crash-too-late.json');
    const faults = [
      { kind: 'crash', atMs: 1_900, target: 'any-sender' },
      { kind: 'pause', atMs: 0, durationMs: 100, target: 'any-receiver' },
    ];
    await writeFile(late, JSON.stringify({ name: 'crash-too-late', description: 'x', clients: { senders: 1, receivers: 1 }, workload: { messages: 1 }, nemesis: { faults }, options: { faultPhaseMs: 2_000 } }));
    const artifacts = join(directory, 'late');
    await mkdir(artifacts, { recursive: true });
    for (const index of [1, 2]) {
      const shard = await nasq(['check', '--scenario', late, '--seeds', '4', '--seed', '3', '--shard', `${index}/2`, '--json', '--failures', join(artifacts, 'failures')]);
      expect(shard.code).toBe(0);
      await writeFile(join(artifacts, `shard-${index}.json`), shard.stdout);
    }
    const merged = await nasq(['report', 'merge', artifacts]);
    expect(merged.code).toBe(0);
    expect(merged.stdout).toMatch(/crash-too-late +4 runs {2}ok\n {4}not exercised: crash \(scheduled, but started in none of the 4 runs\)\n/);
  });

  it('refuses a missing shard, a bad --shard and a bad --workers with exit code 2', async () => {
    const artifacts = join(directory, 'partial');
    await mkdir(artifacts, { recursive: true });
    const shard = await nasq(['check', '--scenario', 'clock-skew', '--seeds', '4', '--seed', '3', '--shard', '1/2', '--json', '--failures', join(artifacts, 'failures')]);
    expect(shard.code).toBe(0);
    expect((JSON.parse(shard.stdout) as JsonReport).scenarios[0]!.seeds).toBe(2);
    await writeFile(join(artifacts, 'shard-1.json'), shard.stdout);
    const merged = await nasq(['report', 'merge', artifacts]);
    expect(merged.code).toBe(2);
    expect(merged.stderr).toMatch(/shard 2\/2 missing: a merge needs the report of every shard/);

    const badShard = await nasq(['check', '--scenario', 'clock-skew', '--shard', '3/2']);
    expect(badShard.code).toBe(2);
    expect(badShard.stderr).toMatch(/--shard: shard index: expected an integer from 1 to 2, got 3/);
    const badWorkers = await nasq(['check', '--scenario', 'clock-skew', '--workers', '0']);
    expect(badWorkers.code).toBe(2);
    expect(badWorkers.stderr).toMatch(/--workers: expected an integer from 1 to 256/);
    const notReport = join(directory, 'not-a-report.json');
    await writeFile(notReport, '{"hello": 1}');
    const unreadable = await nasq(['report', 'merge', notReport]);
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toMatch(/not-a-report\.json\.scenarios: expected an array of scenario results/);
  });
});

/**
 * Reports and capacity studies from the command line, as a user runs them: a fresh process per
 * command (the compiled CLI; npm test builds it first).
 */

import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReportDocument } from '../reports/document.js';
import { parseClients } from './capacity-command.js';
import { nasq as runNasq } from './test-support/run-nasq.js';

/** Capacity sweeps take a while: a longer bound than the helper's. */
const nasq = (args: string[]) => runNasq(args, { timeoutMs: 180_000 });

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'nasq-report-cli-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function documentIn(reportDirectory: string): Promise<ReportDocument> {
  return JSON.parse(await readFile(join(reportDirectory, 'report.json'), 'utf8')) as ReportDocument;
}

describe('nasq capacity', () => {
  it('sweeps 1 to 256 clients on lan-nvram in well under 2 minutes, with the knee and the analytic bound in the report', async () => {
    const report = join(directory, 'capacity');
    const result = await nasq(['capacity', '--clients', '1,2,4,...,256', '--profile', 'lan-nvram', '--report', report]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.wallMs).toBeLessThan(120_000);
    expect(result.stdout).toMatch(/^nasq capacity: lan-nvram x 9 points \(1, 2, 4, 8, 16, 32, 64, 128, 256 clients\), closed loop, batch 1$/m);
    expect(result.stdout).toMatch(/lan-nvram, healthy: peak [\d.]+ msg\/s \(\d+ lock cycles\/s\) at \d+ clients; analytic bound 1 \/ hold = 1 \/ [\d.]+ ms = \d+ cycles\/s = [\d.]+ msg\/s/);
    expect(result.stdout).toMatch(/knee at \d+ clients/);
    const document = await documentIn(report);
    expect(document.kind).toBe('capacity');
    const [series] = document.capacity!.series;
    expect(series!.points.map((point) => point.clients)).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256]);
    expect(series!.knee!.clients).toBeGreaterThanOrEqual(2);
    expect(series!.knee!.clients).toBeLessThanOrEqual(series!.plateau.clients);
    // The peak sits on the bound: the lock is busy all the time there.
    expect(series!.bound.plateauShare).toBeGreaterThan(0.95);
    expect(series!.bound.plateauShare).toBeLessThan(1.05);
    expect(series!.bound.holdMs).toBeGreaterThan(0.5);
    const summary = await readFile(join(report, 'summary.md'), 'utf8');
    expect(summary).toMatch(/analytic bound 1 \/ hold/);
    expect(summary).toMatch(/\| 256 \| [\d.]+ \| \d+ \|/);
    const files = await readdir(report);
    expect(files.sort()).toEqual(['capacity-latency.svg', 'capacity-throughput.svg', 'junit.xml', 'report.html', 'report.json', 'summary.md']);
    expect(await readFile(join(report, 'capacity-throughput.svg'), 'utf8')).toMatch(/^<svg [^>]*>.*knee: \d+ clients.*<\/svg>$/s);
  });

  it('compares healthy and degraded capacity side by side, as JSON too', async () => {
    const result = await nasq(['capacity', '--clients', '2,8', '--what-if', 'disk-failure', '--duration', '1s', '--json', '--quiet']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as { series: Array<{ whatIf: string; plateau: { messagesPerSecond: number }; bound: { holdMs: number }; points: Array<Record<string, unknown>> }> };
    expect(parsed.series.map((series) => series.whatIf)).toEqual(['healthy', 'disk-failure']);
    expect(parsed.series[1]!.plateau.messagesPerSecond).toBeLessThan(parsed.series[0]!.plateau.messagesPerSecond);
    expect(parsed.series[1]!.bound.holdMs).toBeGreaterThan(parsed.series[0]!.bound.holdMs);
    expect(parsed.series[0]!.points[0]!['metrics']).toBeUndefined(); // the time series stay in --report
  });

  it('rejects bad arguments with exit code 2 and a message that says what was expected', async () => {
    const badClients = await nasq(['capacity', '--clients', '1,two']);
    expect(badClients.code).toBe(2);
    expect(badClients.stderr).toMatch(/--clients: expected an integer from 1 to 4096, got "two"/);
    const badProfile = await nasq(['capacity', '--profile', 'tape']);
    expect(badProfile.code).toBe(2);
    expect(badProfile.stderr).toMatch(/--profile: unknown profile "tape"; expected one of lan-nvram, lan-hdd-raid6, wan-branch/);
    const badWhatIf = await nasq(['capacity', '--what-if', 'meteor']);
    expect(badWhatIf.code).toBe(2);
    expect(badWhatIf.stderr).toMatch(/--what-if: unknown fault "meteor"/);
    const badBody = await nasq(['capacity', '--body-bytes', '-1']);
    expect(badBody.code).toBe(2);
    expect(badBody.stderr).toMatch(/--body-bytes: expected an integer from 0 to 16777216, got -1/);
    const badLink = await nasq(['capacity', '--link-mbps', '0']);
    expect(badLink.code).toBe(2);
    expect(badLink.stderr).toMatch(/--link-mbps: expected MB\/s, a number above 0 and at most 1000000, got 0/);
  });

  it('reads client lists with a continued doubling', () => {
    expect(parseClients('1,2,4,...,256')).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256]);
    expect(parseClients('1,3,...,81')).toEqual([1, 3, 9, 27, 81]);
    expect(parseClients('16, 4,8')).toEqual([4, 8, 16]);
    expect(() => parseClients('...,8')).toThrow(/"\.\.\." needs two rising numbers before it/);
    expect(() => parseClients('')).toThrow(/expected client counts/);
  });
});

describe('--report of check and run, and nasq report DIR', () => {
  it('check --report --json keeps stdout pure JSON and writes the report; nasq report DIR renders it again', async () => {
    const report = join(directory, 'check');
    const result = await nasq(['check', '--scenario', 'smoke', '--seeds', '3', '--seed', '5', '--json', '--quiet', '--report', report]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ seeds: 3, failures: 0, exitCode: 0 });
    const document = await documentIn(report);
    expect(document).toMatchObject({ format: 'nasq-report', version: 1, kind: 'check', exitCode: 0 });
    expect(document.command).toBe(`nasq check --scenario smoke --seeds 3 --seed 5 --json --quiet --report ${report}`);
    const scenario = document.check!.scenarios[0]!;
    expect(scenario.measuredRuns).toBe(3);
    expect(scenario.histograms!.send.summary.count).toBeGreaterThan(0);
    expect(scenario.sample!.metrics!.series.length).toBeGreaterThan(10);
    const junit = await readFile(join(report, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testcase classname="nasq\.check\.smoke" name="3 runs of seed 5" time="[\d.]+"\/>/);

    const again = join(directory, 'check-again');
    const rendered = await nasq(['report', report, '--out', again]);
    expect(rendered.code).toBe(0);
    expect(rendered.stdout).toMatch(/^rendered the check report of /);
    for (const name of ['junit.xml', 'summary.md', 'report.html']) expect(await readFile(join(again, name), 'utf8')).toBe(await readFile(join(report, name), 'utf8'));
    const missing = await nasq(['report', join(directory, 'nowhere')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nowhere\/report\.json/);
  });

  it('run --report writes a run report with its charts', async () => {
    const report = join(directory, 'run');
    const result = await nasq(['run', 'crash-while-locked', '--seed', '2', '--report', report]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^report: .*run\/report\.html/m);
    const document = await documentIn(report);
    expect(document.kind).toBe('run');
    expect(document.run!.replay).toEqual(['npx nasq run crash-while-locked --seed 2']);
    expect(document.run!.faults.length).toBeGreaterThan(0);
    expect(document.run!.metrics!.lock.grants).toBeGreaterThan(0);
    const html = await readFile(join(report, 'report.html'), 'utf8');
    for (const chart of ['throughput', 'latency', 'depth', 'histograms', 'lock']) expect(html).toContain(`data-chart="${chart}"`);
  });
});

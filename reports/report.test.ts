/**
 * Reports end to end: a check with a real failure (a planted bug) and a passing scenario, written
 * with --report's machinery; its JUnit XML has the usual shape with the replay command in the
 * failure; its HTML report opens in headless Chromium (Debian's chromium, which .ci/run installs)
 * without console errors and shows its charts; `nasq report DIR` renders the same files again.
 */

import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckReporting } from '../cli/report-commands.js';
import type { Output } from '../cli/output.js';
import { check, type CheckReport } from '../properties/check.js';
import { plantedBugs } from '../properties/test-support/planted-bugs.js';
import { resolveScenarios } from '../scenarios/index.js';
import { runCapacity } from './capacity.js';
import { documentOf } from './document.js';
import { readReport, renderReport, reportFileNames, writeReport } from './write.js';

const chromiumPath = '/usr/bin/chromium';
/** The flags Chromium needs as root on a machine with no outside network (see .ci/run). */
const chromiumArguments = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const silentOutput: Output = { result: () => undefined, line: () => undefined, exitCode: () => undefined };

let directory: string;
let checkDirectory: string;
let capacityDirectory: string;
let report: CheckReport;
let browser: Browser;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'nasq-report-'));
  checkDirectory = join(directory, 'check');
  capacityDirectory = join(directory, 'capacity');
  const bug = plantedBugs['no-header-lock']!.runOptions;
  const reporting = new CheckReporting({ report: checkDirectory, quiet: true, json: false }, { scenarios: 2, runsPerScenario: 6 }, silentOutput);
  const common = { seeds: 6, seed: 1, failureDirectory: join(directory, 'failures'), shrinkRunsMax: 40, onProgress: (event: Parameters<typeof reporting.onProgress>[0]) => reporting.onProgress(event) };
  // One check with the bug planted in smoke, one of the real engine on contention, as one report.
  const failing = await check({ ...common, scenarios: await resolveScenarios('smoke'), runOptions: { ...bug, ...reporting.runOptions } }, () => performance.now());
  const passing = await check({ ...common, scenarios: await resolveScenarios('contention'), runOptions: reporting.runOptions }, () => performance.now());
  report = { ...failing, seeds: failing.seeds + passing.seeds, fsOps: failing.fsOps + passing.fsOps, scenarios: [...failing.scenarios, ...passing.scenarios] };
  await reporting.finish(report, bug);

  const capacity = await runCapacity({ profiles: ['lan-nvram'], clients: [1, 2, 4, 8], durationMs: 800 }, () => performance.now());
  await writeReport(capacityDirectory, documentOf('capacity', { title: 'nasq capacity: lan-nvram', command: 'nasq capacity --clients 1,2,4,8', exitCode: 0, generatedAt: new Date() }, { capacity }));

  try {
    await access(chromiumPath);
  } catch {
    throw new Error(`${chromiumPath} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`);
  }
  browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArguments });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await rm(directory, { recursive: true, force: true });
});

describe('JUnit XML', () => {
  it('has the testsuites / testsuite / testcase / failure shape, the failure holding the replay command', async () => {
    expect(report.scenarios.map((scenario) => scenario.failures)).toEqual([1, 0]);
    const xml = await readFile(join(checkDirectory, reportFileNames.junit), 'utf8');
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
    const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['testsuite', 'testcase', 'failure'].includes(name) }).parse(xml, true) as {
      testsuites: { name: string; tests: string; failures: string; errors: string; time: string; testsuite: Array<{ name: string; tests: string; failures: string; testcase: Array<{ name: string; classname: string; time: string; failure?: Array<{ message: string; type: string; '#text': string }> }> }> };
    };
    const suites = parsed.testsuites;
    expect(suites).toMatchObject({ name: 'nasq check', tests: '2', failures: '1', errors: '0' });
    expect(Number(suites.time)).toBeGreaterThan(0);
    expect(suites.testsuite.map((suite) => [suite.name, suite.tests, suite.failures])).toEqual([
      ['smoke', '1', '1'],
      ['contention', '1', '0'],
    ]);
    const [smoke, contention] = suites.testsuite;
    expect(contention!.testcase).toHaveLength(1);
    expect(contention!.testcase[0]).toMatchObject({ classname: 'nasq.check.contention', name: '6 runs of seed 1' });
    expect(contention!.testcase[0]!.failure).toBeUndefined();
    const testcase = smoke!.testcase[0]!;
    expect(testcase.classname).toBe('nasq.check.smoke');
    expect(testcase.failure).toHaveLength(1);
    const failure = testcase.failure![0]!;
    expect(failure.type).toBe('correctness');
    expect(failure.message).toMatch(/^correctness violation: .*mutual-exclusion.*; replay: npx nasq replay \S+\.json$/);
    const file = /replay: npx nasq replay (\S+\.json)$/.exec(failure.message)![1]!;
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 1, scenario: 'smoke', traceHash: expect.any(String) });
    expect(failure['#text']).toContain(`npx nasq replay ${file}`);
    expect(failure['#text']).toMatch(/npx nasq check --scenario smoke --seed 1 --path \d+(:\d+)*/);
    expect(failure['#text']).toContain('mutual-exclusion: ');
  });

  it('the Markdown summary names the failure and its replay', async () => {
    const markdown = await readFile(join(checkDirectory, reportFileNames.markdown), 'utf8');
    expect(markdown).toMatch(/^## nasq check: ❌ 1 scenario\(s\) failed/);
    expect(markdown).toMatch(/\| smoke \| ❌ correctness \| \d+ \|/);
    expect(markdown).toMatch(/\| contention \| ✅ ok \| 6 \|/);
    // What the runs exercised: 64 clients on one header lock always contend.
    expect(markdown).toMatch(/<details><summary>What the runs exercised<\/summary>/);
    expect(markdown).toMatch(/\| contention \| header-lock:contended \| \d+ \| 6\/6 \|/);
    expect(markdown).toMatch(/```sh\nnpx nasq replay \S+\.json\nnpx nasq check --scenario smoke --seed 1 --path [\d:]+\n```/);
  });
});

/** Share of a PNG's pixels that are not (nearly) white, counted by the browser itself. */
async function inkShare(png: Buffer): Promise<number> {
  const page = await browser.newPage();
  try {
    return await page.evaluate(async (base64) => {
      const image = new Image();
      image.src = `data:image/png;base64,${base64}`;
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.width;
      canvas.height = image.height;
      const context = canvas.getContext('2d')!;
      context.drawImage(image, 0, 0);
      const { data } = context.getImageData(0, 0, image.width, image.height);
      let ink = 0;
      for (let index = 0; index < data.length; index += 4) if (data[index]! < 235 || data[index + 1]! < 235 || data[index + 2]! < 235) ink += 1;
      return ink / (data.length / 4);
    }, png.toString('base64'));
  } finally {
    await page.close();
  }
}

async function openReport(path: string) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') errors.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => errors.push(`request failed: ${request.url()}`));
  const requests: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  await page.goto(`file://${path}`, { waitUntil: 'load' });
  return { page, errors, requests };
}

describe('HTML report in headless Chromium', () => {
  it('opens without console errors, self-contained, and shows the charts of a failing check', async () => {
    const { page, errors, requests } = await openReport(join(checkDirectory, reportFileNames.html));
    try {
      expect(errors).toEqual([]);
      expect(requests.filter((url) => !url.startsWith('file://'))).toEqual([]); // nothing fetched
      const charts = await page.locator('figure.chart').evaluateAll((figures) => figures.map((figure) => figure.getAttribute('data-chart')));
      for (const name of ['scenario-0-failed-timeline', 'scenario-0-failed-throughput', 'scenario-0-failed-latency', 'scenario-0-failed-depth', 'scenario-0-failed-histograms', 'scenario-1-histograms', 'scenario-1-throughput']) {
        expect(charts).toContain(name);
      }
      // The planted bug takes no lock: the failing run has no lock chart, and says why.
      expect(charts).not.toContain('scenario-0-failed-lock');
      expect(await page.locator('[data-note="no-lock"]').count()).toBe(1);
      // Every chart drew marks, with a size on the page.
      const drawn = await page.locator('figure.chart').evaluateAll((figures) =>
        figures.map((figure) => {
          const svg = figure.querySelector('svg')!;
          const box = svg.getBoundingClientRect();
          return { name: figure.getAttribute('data-chart'), marks: svg.querySelectorAll('[role="graphics-symbol"]').length, width: box.width, height: box.height };
        }),
      );
      for (const chart of drawn) {
        expect(chart.marks, `${chart.name} has marks`).toBeGreaterThan(3);
        expect(chart.width, `${chart.name} width`).toBeGreaterThan(200);
        expect(chart.height, `${chart.name} height`).toBeGreaterThan(80);
      }
      // The timeline: a lane per client of the failing run, the violating operations outlined in red.
      const timeline = page.locator('figure[data-chart="scenario-0-failed-timeline"]');
      const outlined = await timeline.locator('svg path[stroke="#d62728"]').count();
      expect(outlined).toBeGreaterThan(0);
      const lanes = await timeline.locator('svg text').allTextContents();
      expect(lanes.some((text) => /^sender-0$/.test(text))).toBe(true);
      expect(lanes.some((text) => /^receiver-0$/.test(text))).toBe(true);
      // Screenshots show ink where the charts are.
      const timelineShot = await timeline.screenshot({ path: join(directory, 'timeline.png') });
      expect(await inkShare(timelineShot)).toBeGreaterThan(0.03);
      const throughputShot = await page.locator('figure[data-chart="scenario-0-failed-throughput"]').screenshot();
      expect(await inkShare(throughputShot)).toBeGreaterThan(0.02);
      const whole = await page.screenshot({ fullPage: true, path: join(directory, 'check-report.png') });
      expect(whole.length).toBeGreaterThan(50_000);
    } finally {
      await page.close();
    }
  });

  it('opens a capacity report with its charts', async () => {
    const { page, errors } = await openReport(join(capacityDirectory, reportFileNames.html));
    try {
      expect(errors).toEqual([]);
      const throughput = page.locator('figure[data-chart="capacity-throughput"]');
      await expect(throughput.locator('svg').count()).resolves.toBe(1);
      const labels = await throughput.locator('svg text').allTextContents();
      expect(labels.some((text) => /^knee: \d+ clients$/.test(text))).toBe(true);
      expect(await inkShare(await throughput.screenshot())).toBeGreaterThan(0.02);
      expect(await page.locator('figure[data-chart="capacity-latency"] svg').count()).toBe(1);
      expect(await page.locator('main').textContent()).toMatch(/analytic bound 1 \/ hold = 1 \/ [\d.]+ ms = \d+ cycles\/s/);
    } finally {
      await page.close();
    }
  });
});

describe('nasq report DIR', () => {
  it('renders the same files again from report.json', async () => {
    const again = join(directory, 'again');
    const document = await readReport(checkDirectory);
    const written = await renderReport(again, document);
    expect(written.files.map((file) => file.slice(again.length + 1)).sort()).toEqual([reportFileNames.html, reportFileNames.junit, reportFileNames.markdown].sort());
    for (const name of [reportFileNames.junit, reportFileNames.markdown, reportFileNames.html]) {
      expect(await readFile(join(again, name), 'utf8'), name).toBe(await readFile(join(checkDirectory, name), 'utf8'));
    }
    await writeFile(join(again, reportFileNames.json), '{"format":"something-else"}');
    await expect(readReport(again)).rejects.toThrow(/not a nasq report/);
    await expect(readReport(join(directory, 'nowhere'))).rejects.toThrow(/cannot read .*report\.json/);
  });
});

/**
 * JUnit XML of a report, in the shape CI systems read (testsuites / testsuite / testcase /
 * failure): for a check, a test suite per scenario with one test case for its seed group (the
 * runs of one fast-check seed), failed with the violated properties and the replay command; for a
 * run, one test case; for a capacity sweep, a test case per profile and what-if.
 */

import type { CapacityResult } from './capacity.js';
import type { CheckSection, ReportDocument, RunSection } from './document.js';
import { capacityHeadline } from './capacity-text.js';

export function escapeXml(text: string): string {
  // XML 1.0 has no place for most control characters, even escaped.
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[character]!);
}

function seconds(wallMs: number): string {
  return (wallMs / 1000).toFixed(3);
}

interface TestCase {
  readonly name: string;
  readonly classname: string;
  readonly timeMs: number;
  readonly failure?: { readonly type: string; readonly message: string; readonly text: string };
  readonly output?: string;
}

interface TestSuite {
  readonly name: string;
  readonly timeMs: number;
  readonly cases: readonly TestCase[];
  readonly properties?: ReadonlyArray<readonly [string, string]>;
}

function renderSuites(name: string, timestamp: string, suites: readonly TestSuite[]): string {
  const tests = suites.reduce((sum, suite) => sum + suite.cases.length, 0);
  const failures = suites.reduce((sum, suite) => sum + suite.cases.filter((testCase) => testCase.failure !== undefined).length, 0);
  const time = suites.reduce((sum, suite) => sum + suite.timeMs, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${escapeXml(name)}" tests="${tests}" failures="${failures}" errors="0" skipped="0" time="${seconds(time)}" timestamp="${escapeXml(timestamp)}">`,
  ];
  for (const suite of suites) {
    const suiteFailures = suite.cases.filter((testCase) => testCase.failure !== undefined).length;
    lines.push(
      `  <testsuite name="${escapeXml(suite.name)}" tests="${suite.cases.length}" failures="${suiteFailures}" errors="0" skipped="0" time="${seconds(suite.timeMs)}" timestamp="${escapeXml(timestamp)}">`,
    );
    if (suite.properties !== undefined && suite.properties.length > 0) {
      lines.push('    <properties>');
      for (const [key, value] of suite.properties) lines.push(`      <property name="${escapeXml(key)}" value="${escapeXml(value)}"/>`);
      lines.push('    </properties>');
    }
    for (const testCase of suite.cases) {
      const open = `    <testcase classname="${escapeXml(testCase.classname)}" name="${escapeXml(testCase.name)}" time="${seconds(testCase.timeMs)}"`;
      if (testCase.failure === undefined && testCase.output === undefined) {
        lines.push(`${open}/>`);
        continue;
      }
      lines.push(`${open}>`);
      if (testCase.failure !== undefined) {
        lines.push(`      <failure type="${escapeXml(testCase.failure.type)}" message="${escapeXml(testCase.failure.message)}">${escapeXml(testCase.failure.text)}</failure>`);
      }
      if (testCase.output !== undefined) lines.push(`      <system-out>${escapeXml(testCase.output)}</system-out>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}

function checkSuites(check: CheckSection): TestSuite[] {
  return check.scenarios.map((scenario) => {
    const name = `${scenario.seeds} runs of seed ${check.seed}${scenario.interrupted ? ' (time budget reached)' : ''}`;
    let failure: TestCase['failure'];
    if (scenario.failure !== null) {
      const violated = scenario.failure.violations.map((violation) => `${violation.checker}: ${violation.explanation}`);
      const replay = scenario.replay[0] ?? '';
      failure = {
        type: scenario.failure.kind,
        message: `${scenario.failure.kind} violation: ${scenario.failure.violations.map((violation) => violation.checker).join(', ')}; replay: ${replay}`,
        text: [
          ...violated,
          `smallest failing run: ${scenario.failure.shrunk}`,
          `failure file: ${scenario.failure.file}`,
          'replay:',
          ...scenario.replay.map((line) => `  ${line}`),
          ...(scenario.failure.operations.length > 0 ? ['operations named:', ...scenario.failure.operations.map((line) => `  ${line}`)] : []),
        ].join('\n'),
      };
    }
    const output = scenario.unknown > 0 ? `${scenario.unknown} run(s) of unknown verdict (e.g. the RAID array was lost)` : undefined;
    return {
      name: scenario.name,
      timeMs: scenario.wallMs,
      cases: [{ name, classname: `nasq.check.${scenario.name}`, timeMs: scenario.wallMs, ...(failure === undefined ? {} : { failure }), ...(output === undefined ? {} : { output }) }],
    };
  });
}

function runSuites(run: RunSection): TestSuite[] {
  const failed = run.results.filter((result) => result.validity === 'invalid');
  const failure: TestCase['failure'] =
    run.verdict === 'invalid'
      ? {
          type: run.failedKind ?? 'correctness',
          message: `${run.failedKind ?? 'correctness'} violation: ${failed.map((result) => result.checker).join(', ')}; replay: ${run.replay[0] ?? ''}`,
          text: [...failed.map((result) => `${result.checker}: ${result.explanation}`), 'replay:', ...run.replay.map((line) => `  ${line}`)].join('\n'),
        }
      : undefined;
  return [
    {
      name: run.scenario,
      timeMs: run.stats.wallMs,
      cases: [{ name: `seed ${run.seed}`, classname: `nasq.run.${run.scenario}`, timeMs: run.stats.wallMs, ...(failure === undefined ? {} : { failure }) }],
    },
  ];
}

function capacitySuites(capacity: CapacityResult): TestSuite[] {
  const profiles = [...new Set(capacity.series.map((series) => series.profile))];
  return profiles.map((profile) => {
    const seriesList = capacity.series.filter((series) => series.profile === profile);
    return {
      name: `capacity ${profile}`,
      timeMs: seriesList.reduce((sum, series) => sum + series.points.reduce((total, point) => total + point.wallMs, 0), 0),
      properties: seriesList.flatMap((series) => [
        [`${series.whatIf}.peakMessagesPerSecond`, series.plateau.messagesPerSecond.toFixed(1)],
        [`${series.whatIf}.peakClients`, String(series.plateau.clients)],
        [`${series.whatIf}.kneeClients`, series.knee === undefined ? '' : String(series.knee.clients)],
        [`${series.whatIf}.boundMessagesPerSecond`, series.bound.messagesPerSecond.toFixed(1)],
        [`${series.whatIf}.lockHoldMs`, series.bound.holdMs.toFixed(3)],
      ] as Array<readonly [string, string]>),
      cases: seriesList.map((series) => ({
        name: `${series.whatIf}: ${series.points.map((point) => point.clients).join(', ')} clients`,
        classname: `nasq.capacity.${profile}`,
        timeMs: series.points.reduce((total, point) => total + point.wallMs, 0),
        output: capacityHeadline(series),
      })),
    };
  });
}

export function renderJunit(document: ReportDocument): string {
  if (document.kind === 'check') return renderSuites('nasq check', document.generatedAt, checkSuites(document.check!));
  if (document.kind === 'run') return renderSuites('nasq run', document.generatedAt, runSuites(document.run!));
  return renderSuites('nasq capacity', document.generatedAt, capacitySuites(document.capacity!));
}

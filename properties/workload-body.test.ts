/**
 * Bodies of a given size in the simulated workloads (`workload.bodyBytes`; `nasq capacity
 * --body-bytes`): a body names its message and pads to the size; a delivered body that is not
 * exactly what was sent reads as a message nobody sent; a scenario with big bodies on a slow link
 * keeps every property; the scenario file's bounds are checked.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ScenarioInput, maximumBodyBytes, parseScenario } from '../scenarios/schema.js';
import { expectScenarioHolds } from './testing.js';
import { labelOfBody, workloadBody } from './workload-body.js';

describe('workload bodies', () => {
  it('are the label alone by default, and the label, a zero byte and filler when a size is asked for', () => {
    expect(new TextDecoder().decode(workloadBody('sender-0/7', 0))).toBe('sender-0/7');
    expect(workloadBody('sender-0/7', 5).length).toBe(10);
    const big = workloadBody('sender-0/7', 1_000);
    expect(big.length).toBe(1_000);
    expect(big[10]).toBe(0);
    expect(big.subarray(11).includes(0)).toBe(false);
    for (const size of [0, 5, 11, 12, 1_000]) expect(labelOfBody(workloadBody('sender-0/7', size), size)).toBe('sender-0/7');
  });

  it('read a body that was cut short, changed or of the wrong size as one nobody sent', () => {
    const body = workloadBody('sender-1/3', 500);
    const changed = body.slice();
    changed[400] = 0x7a + 1;
    expect(labelOfBody(changed, 500)).not.toBe('sender-1/3');
    expect(labelOfBody(body.subarray(0, 499), 500)).not.toBe('sender-1/3');
    expect(labelOfBody(body, 600)).not.toBe('sender-1/3');
    expect(labelOfBody(workloadBody('sender-1/3', 0), 500)).not.toBe('sender-1/3');
  });
});

describe('a scenario with big bodies on a slow link', () => {
  let failureDirectory: string;
  beforeAll(async () => {
    failureDirectory = await mkdtemp(join(tmpdir(), 'nasq-bodies-'));
  });
  afterAll(async () => {
    await rm(failureDirectory, { recursive: true, force: true });
  });

  const scenario: ScenarioInput = {
    name: 'big-bodies',
    description: 'bodies of up to 200 kB over a 20 MB/s link shared by every client',
    clients: { senders: 2, receivers: 2 },
    workload: { messages: { min: 5, max: 20 }, bodyBytes: { min: 0, max: 200_000 }, releaseFraction: 0.1 },
    latency: { name: 'slow-link', roundTripMs: 1, serviceMs: 0.4, flushMs: 0.5, linkMBps: 20 },
    options: { faultPhaseMs: 2_000, settleMs: 60_000 },
    nemesis: { faults: [{ kind: 'crash', atMs: { min: 0, max: 1_500 }, durationMs: 300 }] },
  };

  it('keeps every property (no loss, exactly once, each delivery its own body)', async () => {
    const report = await expectScenarioHolds(scenario, { seeds: 8, seed: 11, failureDirectory });
    expect(report.failures).toBe(0);
  });

  it('refuses a body size out of bounds, saying what it expected', () => {
    for (const bodyBytes of [-1, 1.5, maximumBodyBytes + 1, { min: 0, max: 2 * maximumBodyBytes }]) {
      expect(() => parseScenario({ ...scenario, workload: { messages: 5, bodyBytes } }, 'test')).toThrow(/workload\.bodyBytes: expected integers from 0 to 16777216/);
    }
    expect(() => parseScenario({ ...scenario, latency: { name: 'x', roundTripMs: 1, serviceMs: 1, flushMs: 1, linkMBps: -1 } }, 'test')).toThrow(/latency/);
  });
});

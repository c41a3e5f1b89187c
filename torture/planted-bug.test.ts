/**
 * The torture checkers catch a planted bug on real processes: workers whose queue client acks
 * without the fencing check (UnfencedQueueClient, through the test-support worker entry). With
 * short leases and receivers that now and then hold a message past its lease, another process
 * takes the message over and the stale holder's ack still goes through: exactly-once says so,
 * and the run exits 1. The same run with the real worker passes (the settings alone are fine).
 */

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runTorture, sourceWorkerEntry, type TortureOptions } from './runner.js';

const unfencedWorker = fileURLToPath(new URL('./test-support/unfenced-worker-main.ts', import.meta.url));

let root: string;

beforeEach(async () => {
  root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-torture-bug-'));
});

afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** Short leases, receivers that take up to two leases to settle, and overstays: stale acks come often. */
const settings = (name: string): TortureOptions => ({
  directory: nodePath.join(root, name, 'queue'),
  workDirectory: nodePath.join(root, name, 'work'),
  processes: 3,
  durationMs: 8_000,
  killIntervalMs: 2_000,
  seed: 11,
  leaseMs: 300,
  workload: { overstayFraction: 0.1, processMsMaximum: 600 },
  drainTimeoutMs: 15_000,
});

describe('torture on real processes with a planted bug', () => {
  it('catches acks without fencing (exactly-once, exit 1); the real worker passes the same run', async () => {
    const [bug, control] = await Promise.all([
      runTorture({ ...settings('unfenced'), workerEntry: sourceWorkerEntry(unfencedWorker) }),
      runTorture(settings('fenced')),
    ]);
    const exactlyOnce = bug.judgement.verdicts.find((verdict) => verdict.checker === 'exactly-once')!;
    expect(exactlyOnce.validity, exactlyOnce.explanation).toBe('invalid');
    expect(exactlyOnce.explanation).toMatch(/with a lease taken over by/);
    expect(exactlyOnce.operations.length).toBeGreaterThan(0);
    expect(bug.exitCode).toBe(1);

    const failed = control.judgement.verdicts.filter((verdict) => verdict.validity !== 'valid');
    expect(failed).toEqual([]);
    expect(control.exitCode).toBe(0);
    // The control did meet what the bug trips over: acks refused by the fence.
    expect(control.judgement.figures.fencedAcks).toBeGreaterThan(0);
    expect(control.kills).toBeGreaterThan(0);
  });
});

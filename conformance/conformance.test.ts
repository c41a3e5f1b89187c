/**
 * The simulated share held against a real SMB server: every conformance case answered by the
 * simulator step for step as Samba answered it (conformance/samba-observed.json, recorded with
 * `nasq conformance --samba --record`), and as cifs-nas-model.md says. Servers broken on purpose
 * in the ways real ones differ (advisory locks, SMB1's error code, locks that outlive their
 * connection) are caught, and so are malformed cases and observation files.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nasq as runNasq } from '../cli/test-support/run-nasq.js';
import { Operation, Status, type Call } from '../sim/protocol.js';
import { SimServer } from '../sim/server.js';
import { caseDefect, conformanceCases, type ConformanceCase } from './cases.js';
import { compareCase, type CaseComparison } from './compare.js';
import { ConformanceSetupError, recordedObservations } from './samba.js';
import { compareWithServer, runCaseOnSimulator, type SimDriverOptions } from './sim-driver.js';

const recorded = recordedObservations();

function compareAll(options: SimDriverOptions = {}): Promise<CaseComparison[]> {
  return compareWithServer(conformanceCases, recorded.cases, options);
}

function differing(comparisons: readonly CaseComparison[]): string[] {
  return comparisons.filter((comparison) => comparison.differences.length > 0 || comparison.unobserved).map((comparison) => comparison.name);
}

describe('the simulator against Samba', () => {
  it('every case is well formed, and the recording has an observation of each, step for step', () => {
    for (const entry of conformanceCases) expect(caseDefect(entry)).toBeUndefined();
    expect(recorded.server).toMatch(/^Samba /);
    expect(recorded.cases.map((observed) => observed.name)).toEqual(conformanceCases.map((entry) => entry.name));
    for (const entry of conformanceCases) {
      expect(recorded.cases.find((observed) => observed.name === entry.name)!.observed).toHaveLength(entry.steps.length);
    }
  });

  it('answers every step of every case as Samba did', async () => {
    const comparisons = await compareAll();
    expect(comparisons.flatMap((comparison) => comparison.differences.map((row) => `${comparison.name} step ${row.index} ${row.step}: simulator ${row.simulator}, Samba ${row.server}`))).toEqual([]);
    expect(differing(comparisons)).toEqual([]);
  });

  it('answers as cifs-nas-model.md says, and so did Samba', async () => {
    for (const entry of conformanceCases) expect(await runCaseOnSimulator(entry), entry.name).toEqual(entry.model);
    const comparisons = await compareAll();
    expect(comparisons.flatMap((comparison) => comparison.modelNotes)).toEqual([]);
  });

});

describe('servers broken on purpose are caught', () => {
  it('advisory locks (another open reads and writes a locked range)', async () => {
    class AdvisoryServer extends SimServer {
      override execute(call: Call): Status {
        const status = super.execute(call);
        if (status !== Status.fileLockConflict) return status;
        if (call.operation === Operation.read) call.value = new Uint8Array(call.length);
        call.status = Status.success;
        return call.status;
      }
    }
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new AdvisoryServer(scheduler, trace, options) });
    expect(differing(comparisons)).toEqual(expect.arrayContaining(['owner-is-the-open', 'exclusive-lock', 'shared-lock', 'zero-length']));
  });

  it("SMB1's habit: a repeated conflicting lock answered with FILE_LOCK_CONFLICT", async () => {
    class RepeatCodeServer extends SimServer {
      private lastRefused = '';
      override execute(call: Call): Status {
        const status = super.execute(call);
        if (call.operation !== Operation.lock || status !== Status.lockNotGranted) return status;
        const key = `${call.path}:${call.position}:${call.length}`;
        const repeated = key === this.lastRefused;
        this.lastRefused = key;
        if (repeated) call.status = Status.fileLockConflict;
        return call.status;
      }
    }
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new RepeatCodeServer(scheduler, trace, options) });
    expect(differing(comparisons)).toContain('conflict-code');
  });

  it('locks that outlive their connection (a drop that keeps the session)', async () => {
    class StickyServer extends SimServer {
      override dropSession(): void {}
    }
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new StickyServer(scheduler, trace, options) });
    expect(differing(comparisons)).toEqual(['drop-releases', 'drop-wakes-waiter', 'stale-handle', 'durable-purged-by-open', 'durable-among-opens', 'durable-lease-among-opens']);
  });

  it('no durable handles (a disconnect closes every open)', async () => {
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new SimServer(scheduler, trace, { ...options, durableHandles: false }) });
    expect(differing(comparisons)).toEqual(['durable-reclaimed']);
  });

  it("the simulator's default durable handles, which keep their locks with other opens there (unlike Samba)", async () => {
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new SimServer(scheduler, trace, { ...options, durableLocksNeedSoleOpen: false }) });
    expect(differing(comparisons)).toEqual(['durable-among-opens', 'durable-lease-among-opens']);
  });

  it('a watch that reports changes from before its first wait (what the simulator did before this check)', async () => {
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new SimServer(scheduler, trace, { ...options, notifyBeforeFirstWait: true }) });
    expect(differing(comparisons)).toEqual(['notify']);
  });

  it('a plain in-place write that wakes watchers (Windows may; Samba does not)', async () => {
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new SimServer(scheduler, trace, { ...options, notifyOnPlainWrite: true }) });
    expect(differing(comparisons)).toEqual(['notify']);
  });

  it('a notify queue that never overflows (no rescan hint)', async () => {
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new SimServer(scheduler, trace, { ...options, notifyQueueLimit: 1_000_000 }) });
    expect(differing(comparisons)).toEqual(['notify-overflow']);
  });

  it('zero-length locks that never conflict (what the simulator did before this check)', async () => {
    class PointlessServer extends SimServer {
      override execute(call: Call): Status {
        if (call.operation !== Operation.lock || call.length !== 0) return super.execute(call);
        call.status = Status.success;
        return call.status;
      }
    }
    const comparisons = await compareAll({ createServer: (scheduler, trace, options) => new PointlessServer(scheduler, trace, options) });
    expect(differing(comparisons)).toEqual(['zero-length']);
  });
});

describe('bad cases and bad observation files', () => {
  const base = conformanceCases[0]!;

  it('refuses a case whose model does not match its steps, or whose steps refer to nothing', () => {
    const cases: ConformanceCase[] = [
      { ...base, model: base.model.slice(1) },
      { ...base, steps: [{ op: 'outcome', of: 0 }], model: ['PENDING'] },
      { ...base, steps: [{ op: 'read', handle: 'zz', offset: 0, length: 1 }], model: ['STATUS_SUCCESS'] },
    ];
    expect(cases.map((entry) => caseDefect(entry))).toEqual([
      `case ${base.name}: ${base.steps.length} steps but ${base.model.length - 1} model statuses`,
      `case ${base.name}: step 0 asks the outcome of step 0, which is not an earlier blocking lock or notify`,
      `case ${base.name}: step 0 uses handle zz before it is opened`,
    ]);
  });

  it('reports a recording that lacks a case, or has another number of steps, as a difference', async () => {
    const simulator = await runCaseOnSimulator(base);
    expect(compareCase(base, simulator, undefined).unobserved).toBe(true);
    expect(compareCase(base, simulator, simulator.slice(1)).differences[0]!.step).toBe(`the recorded observation has ${base.steps.length - 1} steps, the case ${base.steps.length}`);
    const flipped = simulator.map((status, index) => (index === 4 ? 'STATUS_FILE_LOCK_CONFLICT' : status));
    expect(compareCase(base, simulator, flipped).differences).toEqual([
      { index: 4, step: 'lock a2 0+100 exclusive', model: 'STATUS_LOCK_NOT_GRANTED', simulator: 'STATUS_LOCK_NOT_GRANTED', server: 'STATUS_FILE_LOCK_CONFLICT' },
    ]);
  });

  it('refuses a malformed observation file with what was expected and found', () => {
    const directory = mkdtempSync(join(tmpdir(), 'nasq-conformance-'));
    const file = (name: string, text: string): string => {
      writeFileSync(join(directory, name), text);
      return join(directory, name);
    };
    expect(() => recordedObservations(join(directory, 'missing.json'))).toThrow(ConformanceSetupError);
    expect(() => recordedObservations(file('broken.json', '{"server": '))).toThrow(/expected JSON/);
    expect(() => recordedObservations(file('shape.json', JSON.stringify({ ...recorded, dialect: 'SMB3' })))).toThrow(/at dialect: /);
    expect(() => recordedObservations(file('extra.json', JSON.stringify({ ...recorded, verdict: 'ok' })))).toThrow(/verdict/);
  });
});

describe('nasq conformance', () => {
  const nasq = (...args: string[]) => runNasq(args, { fromSources: true, timeoutMs: 50_000 });

  it('holds the simulator against the recorded Samba observations: exit 0, a line per case', async () => {
    const outcome = await nasq('conformance');
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain(`${conformanceCases.length} cases, the simulator against ${recorded.server}`);
    for (const entry of conformanceCases) expect(outcome.stdout).toContain(`ok         ${entry.name} (`);
  });

  it('says what is missing when there is no Samba to start, and refuses --record without --samba (exit 2)', async () => {
    const missing = await nasq('conformance', '--samba', '--smbd', '/nonexistent/smbd');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('expected a Samba server program at "/nonexistent/smbd"');
    const record = await nasq('conformance', '--record');
    expect(record.code).toBe(2);
    expect(record.stderr).toContain('--record: only with --samba');
  });

  it('--waiter-race N measures who gets a freed lock first on the simulated share (and --samba on Samba); a bad N exits 2', async () => {
    const race = await nasq('conformance', '--waiter-race', '16', '--json');
    expect(race.code).toBe(0);
    const report = JSON.parse(race.stdout) as { rounds: number; firstGranted: { simulatorFifo: Record<string, number>; simulatorRandom: Record<string, number> } };
    expect(report.rounds).toBe(16);
    expect(report.firstGranted.simulatorFifo).toEqual({ B: 16, C: 0, D: 0, E: 0 });
    expect(Object.values(report.firstGranted.simulatorRandom).reduce((sum, count) => sum + count, 0)).toBe(16);
    const bad = await nasq('conformance', '--waiter-race', 'many');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--waiter-race: expected an integer from 1 to 10000, got "many"');
  });
});

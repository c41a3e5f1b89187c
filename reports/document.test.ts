import { describe, expect, it } from 'vitest';
import type { RunConfig } from '../properties/config.js';
import type { Operation } from '../properties/history.js';
import { asReportDocument, faultWindows, scheduledFaultWindows, timelineOf, timelineOperationsMaximum } from './document.js';

describe('report document pieces', () => {
  it('pairs fault starts with their heals; one never healed stays open', () => {
    const windows = faultWindows([
      { timeMs: 10, kind: 'crash', target: 'sender-0', phase: 'start' },
      { timeMs: 12, kind: 'crash', target: 'sender-1', phase: 'start' },
      { timeMs: 15, kind: 'crash', target: 'sender-0', phase: 'heal' },
      { timeMs: 20, kind: 'crash', target: 'sender-0', phase: 'start' },
      { timeMs: 30, kind: 'disk-failure', target: 'server', phase: 'start' },
      { timeMs: 40, kind: 'crash', target: 'sender-1', phase: 'heal' },
    ]);
    expect(windows).toEqual([
      { kind: 'crash', target: 'sender-0', startMs: 10, endMs: 15 },
      { kind: 'crash', target: 'sender-1', startMs: 12, endMs: 40 },
      { kind: 'crash', target: 'sender-0', startMs: 20, endMs: null },
      { kind: 'disk-failure', target: 'server', startMs: 30, endMs: null },
    ]);
  });

  it('places scheduled faults from the workload start, healed at the end of the fault phase at the latest', () => {
    const config = {
      faultPhaseMs: 1_000,
      faults: [
        { kind: 'pause', atMs: 100, durationMs: 200, target: 'any-receiver', choice: 0, parameters: {} },
        { kind: 'failover', atMs: 900, durationMs: 500, target: 'server', choice: 0, parameters: {} },
        { kind: 'crash', atMs: 5_000, durationMs: 0, target: 'any-client', choice: 0, parameters: {} },
      ],
    } as unknown as RunConfig;
    expect(scheduledFaultWindows(config, 50)).toEqual([
      { kind: 'pause (scheduled)', target: 'any-receiver', startMs: 150, endMs: 350 },
      { kind: 'failover (scheduled)', target: 'server', startMs: 950, endMs: 1_050 },
      { kind: 'crash (scheduled)', target: 'any-client', startMs: 1_050, endMs: 1_050 },
    ]);
  });

  it('keeps a timeline of a long run to the operations nearest the violations', () => {
    const operations: Operation[] = Array.from({ length: timelineOperationsMaximum + 500 }, (_, index) => ({
      index,
      client: index % 2 === 0 ? 'sender-0' : 'receiver-0',
      incarnation: 1,
      kind: index % 2 === 0 ? 'send' : 'receive',
      invokeMs: index,
      invokeClockMs: index,
      invokeTrace: index,
      outcome: 'ok',
      completeMs: index + 0.5,
    }));
    const violating = new Set([3_400]);
    const timeline = timelineOf(operations, ['sender-0', 'receiver-0', 'receiver-1'], violating);
    expect(timeline.operations).toHaveLength(timelineOperationsMaximum);
    expect(timeline.omitted).toBe(500);
    expect(timeline.clients).toEqual(['sender-0', 'receiver-0']); // a lane only for clients with operations
    expect(timeline.operations.filter((operation) => operation.violating).map((operation) => operation.index)).toEqual([3_400]);
    // The ones left out are the farthest from the violation: the earliest.
    expect(timeline.operations[0]!.index).toBe(500);
    expect(timeline.operations.at(-1)!.index).toBe(timelineOperationsMaximum + 499);
    expect(timeline.operations[0]!.text).toMatch(/^#500 500\.000\.\.500\.500 sender-0\.1 send/);
  });

  it('refuses JSON that is not a report of this version', () => {
    expect(() => asReportDocument({ format: 'nasq-report', version: 2, kind: 'run' }, 'x.json')).toThrow(/report version 2; this nasq renders version 1/);
    expect(() => asReportDocument({ format: 'nasq-report', version: 1, kind: 'run' }, 'x.json')).toThrow(/a run report without its "run" section/);
    expect(() => asReportDocument([], 'x.json')).toThrow(/not a nasq report/);
  });
});

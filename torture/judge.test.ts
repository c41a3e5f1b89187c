/**
 * From history files to a judged run: the calls a process was in when it was killed are of
 * unknown outcome, a hung process's are stuck, a torn last line is ignored, a batch that filled
 * the queue part way counts only what went in, operations are in invocation order across files;
 * and the checkers judge the final directory (a lost message, a second ack, a body left behind).
 */

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import type { LogEvent } from './history-log.js';
import { historyOf, judge, type ProcessRecord, type RunRecord } from './judge.js';

let root: string;

beforeEach(async () => {
  root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-torture-judge-'));
});

afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const startMs = 1_000_000;

async function processFile(slot: number, incarnation: number, events: readonly LogEvent[], tail = ''): Promise<string> {
  const path = nodePath.join(root, `p${slot}.${incarnation}.jsonl`);
  await fs.writeFile(path, events.map((event) => `${JSON.stringify(event)}\n`).join('') + tail);
  return path;
}

function record(slot: number, incarnation: number, historyPath: string, ending: ProcessRecord['ending']): ProcessRecord {
  return { slot, incarnation, historyPath, startedAtMs: startMs, ending, stderrTail: '' };
}

describe('the history of a torture run', () => {
  it('makes the calls of a killed process info (crash), of a hung one info (pending), and skips a torn last line', async () => {
    const killed = await processFile(
      0,
      0,
      [
        { event: 'start', timeMs: startMs, pid: 1 },
        { event: 'invoke', operation: 0, kind: 'send', timeMs: startMs + 10, sends: [{ id: undefined, body: 'p0.0-m0', deliverAt: startMs + 10 }] },
        { event: 'ok', operation: 0, timeMs: startMs + 12, ids: ['1-1'] },
        { event: 'invoke', operation: 1, kind: 'send', timeMs: startMs + 20, sends: [{ id: undefined, body: 'p0.0-m1', deliverAt: startMs + 20 }] },
      ],
      '{"event":"ok","operation":1,"ti',
    );
    const hung = await processFile(1, 0, [{ event: 'invoke', operation: 0, kind: 'receive', timeMs: startMs + 15 }]);
    const run: RunRecord = {
      queueDirectory: root,
      startMs,
      healAtMs: startMs + 100,
      endMs: startMs + 200,
      processes: [record(0, 0, killed, { kind: 'killed', atMs: startMs + 30 }), record(1, 0, hung, { kind: 'hung', atMs: startMs + 190 })],
    };
    const { history, tornLines } = await historyOf(run);
    expect(tornLines).toBe(1);
    expect(history.operations.map((operation) => [operation.index, operation.client, operation.kind, operation.invokeMs, operation.outcome, operation.error])).toEqual([
      [0, 'p0', 'send', 10, 'ok', undefined],
      [1, 'p1', 'receive', 15, 'info', 'pending'],
      [2, 'p0', 'send', 20, 'info', 'crash'],
    ]);
    expect(history.operations[0]!.sends).toEqual([{ id: '1-1', body: 'p0.0-m0', deliverAt: startMs + 10 }]);
    expect(history.operations[0]!.invokeClockMs).toBe(startMs + 10);
  });

  it('keeps only the messages a batch sent before the queue was full', async () => {
    const path = await processFile(0, 0, [
      {
        event: 'invoke',
        operation: 0,
        kind: 'send',
        timeMs: startMs,
        sends: ['a', 'b', 'c'].map((body) => ({ id: undefined, body, deliverAt: startMs })),
      },
      { event: 'ok', operation: 0, timeMs: startMs + 1, ids: ['1-1', '1-2'] },
    ]);
    const { history } = await historyOf({ queueDirectory: root, startMs, healAtMs: startMs, endMs: startMs, processes: [record(0, 0, path, { kind: 'killed', atMs: startMs + 5 })] });
    expect(history.operations[0]!.sends!.map((sent) => [sent.id, sent.body])).toEqual([
      ['1-1', 'a'],
      ['1-2', 'b'],
    ]);
  });

  it('rejects a damaged line that is not the last', async () => {
    const path = await processFile(0, 0, []);
    await fs.writeFile(path, 'not json\n{"event":"start","timeMs":1,"pid":2}\n');
    await expect(historyOf({ queueDirectory: root, startMs, healAtMs: startMs, endMs: startMs, processes: [record(0, 0, path, { kind: 'killed', atMs: startMs })] })).rejects.toThrow(
      /line 1 is not JSON/,
    );
  });
});

describe('judging a run against the final queue directory', () => {
  /** One real queue: sends 1-?; the history says what the test wants it to say. */
  async function queueWith(bodies: readonly string[]): Promise<{ ids: string[]; client: QueueClient }> {
    const ports = { fs: new NodeFileSystem(root), clock: new SystemClock() };
    await createQueue(ports, 'q', { slots: 8 });
    const client = await QueueClient.open(ports, 'q');
    const ids = await client.sendBatch(bodies.map((body) => ({ body: `${body}:` })));
    return { ids, client };
  }

  const exitEvents = (timeMs: number): LogEvent[] => [{ event: 'exit', timeMs, drained: true }];

  it('valid when every sent message was acked once; a second ack and a message that vanished are caught', async () => {
    const { ids, client } = await queueWith(['p0.0-m0', 'p0.0-m1']);
    const [first, second] = await client.receiveBatch(2);
    await client.ackBatch([first!.receipt, second!.receipt]);
    await client.close();
    const events = (extraAck: boolean): LogEvent[] => [
      { event: 'invoke', operation: 0, kind: 'send', timeMs: startMs, sends: ['p0.0-m0', 'p0.0-m1'].map((body) => ({ id: undefined, body, deliverAt: startMs })) },
      { event: 'ok', operation: 0, timeMs: startMs + 1, ids },
      { event: 'invoke', operation: 1, kind: 'receive', timeMs: startMs + 2 },
      {
        event: 'ok',
        operation: 1,
        timeMs: startMs + 3,
        deliveries: [first!, second!].map((delivery, index) => ({
          id: delivery.id,
          body: `p0.0-m${index}`,
          deliverAt: startMs,
          deliveryCount: 1,
          leaseToken: delivery.receipt.leaseToken,
          leaseExpiry: startMs + 30_000,
        })),
      },
      { event: 'invoke', operation: 2, kind: 'ack', timeMs: startMs + 4, target: { id: ids[0]!, leaseToken: first!.receipt.leaseToken } },
      { event: 'ok', operation: 2, timeMs: startMs + 5 },
      ...(extraAck
        ? ([
            { event: 'invoke', operation: 3, kind: 'ack', timeMs: startMs + 6, target: { id: ids[0]!, leaseToken: first!.receipt.leaseToken } },
            { event: 'ok', operation: 3, timeMs: startMs + 7 },
          ] satisfies LogEvent[])
        : []),
      ...exitEvents(startMs + 8),
    ];
    const runOf = async (extraAck: boolean): Promise<RunRecord> => ({
      queueDirectory: nodePath.join(root, 'q'),
      startMs,
      healAtMs: startMs + 5,
      endMs: startMs + 10,
      processes: [record(0, 0, await processFile(0, 0, events(extraAck)), { kind: 'exited', atMs: startMs + 9, code: 0, signal: null })],
    });

    // The second message's ack is not in the history: it vanished (lost).
    const lost = await judge(await runOf(false));
    expect(lost.exitCode).toBe(1);
    expect(lost.verdicts.find((verdict) => verdict.checker === 'no-loss')).toMatchObject({ validity: 'invalid' });
    expect(lost.figures).toMatchObject({ sent: 2, acked: 1, lost: 1, duplicateAcks: 0 });

    const twice = await judge(await runOf(true));
    expect(twice.verdicts.find((verdict) => verdict.checker === 'exactly-once')).toMatchObject({ validity: 'invalid' });
    expect(twice.verdicts.find((verdict) => verdict.checker === 'exactly-once')!.explanation).toMatch(/acked 2 times/);
    expect(twice.figures.duplicateAcks).toBe(1);
  });

  it('a process that failed on its own is a correctness failure; one that ran out of drain time is liveness', async () => {
    await queueWith([]);
    const failed = await processFile(0, 0, [{ event: 'error', timeMs: startMs + 1, message: 'AssertionError: broken' }]);
    const slow = await processFile(1, 0, [{ event: 'exit', timeMs: startMs + 2, drained: false }]);
    const base = { queueDirectory: nodePath.join(root, 'q'), startMs, healAtMs: startMs, endMs: startMs + 5 };
    const both = await judge({
      ...base,
      processes: [
        record(0, 0, failed, { kind: 'exited', atMs: startMs + 1, code: 1, signal: null }),
        record(1, 0, slow, { kind: 'exited', atMs: startMs + 2, code: 0, signal: null }),
      ],
    });
    expect(both.exitCode).toBe(1);
    expect(both.verdicts.filter((verdict) => verdict.checker === 'processes').map((verdict) => [verdict.kind, verdict.validity])).toEqual([
      ['correctness', 'invalid'],
      ['liveness', 'invalid'],
    ]);
    expect(both.verdicts.find((verdict) => verdict.checker === 'processes')!.explanation).toMatch(/AssertionError: broken/);
    const onlySlow = await judge({ ...base, processes: [record(1, 0, slow, { kind: 'exited', atMs: startMs + 2, code: 0, signal: null })] });
    expect(onlySlow.exitCode).toBe(3);
  });
});

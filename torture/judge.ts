/**
 * Judging a torture run: the history files of every process incarnation become one History
 * (the same shape the simulator records), the queue's final files become the Observations the
 * checkers read, and the simulator's checkers judge them. Then two checks of the real world:
 * fsck on the final directory, and every process ended the way it should (killed by the runner,
 * or exited 0 after draining).
 *
 * Time: an operation's `invokeMs`/`completeMs` are ms since the run started; its clock times are
 * the process's wall clock (Date.now), the clock its leases are on. All processes run on this
 * machine, so they share one clock: the skew bound is a few ms of rounding, not a real skew.
 *
 * What real disk cannot show: the simulator notes every write of the kernel file and whether the
 * writer held the lock at that moment; here only the final file can be read. So
 * `mutual-exclusion` is not run, and `header-invariants` judges the final kernel file only.
 */

import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { isNasqError } from '../engine/errors.js';
import { SlotState, messageIdOf, slotFlagFilling } from '../engine/format.js';
import { fsck, type FsckReport } from '../engine/fsck.js';
import { kernelViolations, readKernelImage } from '../engine/kernel-image.js';
import { queueLayout } from '../engine/queue.js';
import { runCheckers, type CheckConfig, type CheckerName, type Observations, type PropertyKind, type Validity } from '../properties/checkers.js';
import { History, formatOperation, type Operation } from '../properties/history.js';
import { createHistogram, recordMs, summarize, type HistogramSummary } from '../reports/histogram.js';
import { readHistoryLog, type LogEvent } from './history-log.js';
import { queuePorts } from './setup.js';

/** How a process incarnation ended. */
export type ProcessEnding =
  /** SIGKILLed by the runner during the chaos. */
  | { readonly kind: 'killed'; readonly atMs: number }
  /** Ended on its own: 0 after draining; anything else is an error of the process. */
  | { readonly kind: 'exited'; readonly atMs: number; readonly code: number | null; readonly signal: string | null }
  /** Still running when the drain time was over: SIGKILLed, its open calls are stuck. */
  | { readonly kind: 'hung'; readonly atMs: number };

export interface ProcessRecord {
  readonly slot: number;
  readonly incarnation: number;
  readonly historyPath: string;
  /** Wall-clock time it was started, ms since the epoch. */
  readonly startedAtMs: number;
  readonly ending: ProcessEnding;
  /** The end of its standard error (bounded). */
  readonly stderrTail: string;
}

export interface RunRecord {
  readonly queueDirectory: string;
  /** Wall-clock times, ms since the epoch: start, heal (the kills stop), end (every process ended). */
  readonly startMs: number;
  readonly healAtMs: number;
  readonly endMs: number;
  readonly processes: readonly ProcessRecord[];
}

/** One verdict: a checker of the simulator, or one of the real-disk checks (`fsck`, `processes`). */
export interface Verdict {
  readonly checker: CheckerName | 'fsck' | 'processes';
  readonly kind: PropertyKind;
  readonly validity: Validity;
  readonly explanation: string;
  /** The operations the verdict names, one line each (at most `operationsShownMaximum`). */
  readonly operations: string[];
}

export interface TortureFigures {
  readonly operations: number;
  /** Messages whose send returned. */
  readonly sent: number;
  /** Messages of sends whose outcome is unknown (their process was killed during the call). */
  readonly sentUnknown: number;
  /** Messages with a successful ack. */
  readonly acked: number;
  /** Messages gone from the queue after an ack of unknown outcome (killed during the ack): it took effect. */
  readonly ackedUnknown: number;
  readonly deliveries: number;
  /** Deliveries after the first of a message (after a kill, a release, or a lease that ran out). */
  readonly redeliveries: number;
  /** Acks refused by the fence (the lease was taken over). */
  readonly fencedAcks: number;
  readonly releases: number;
  /** Sent messages neither acked nor dead-lettered nor in the queue at the end. */
  readonly lost: number;
  /** Messages acked successfully more than once. */
  readonly duplicateAcks: number;
  /** Sent messages still in the queue at the end. */
  readonly remaining: number;
  readonly deadLettered: number;
  /** Body files no slot refers to at the end: bodies of sends killed before their commit. */
  readonly orphanBodies: number;
}

export interface TortureLatency {
  /** One send call (one message or a batch), ok only. */
  readonly send: HistogramSummary;
  /** One receive call that returned at least one message. */
  readonly receive: HistogramSummary;
  /** One ack, ok only. */
  readonly ack: HistogramSummary;
  /** From when a message was due (its send began, or its delivery time if later) to its first successful ack. */
  readonly endToEnd: HistogramSummary;
}

export interface Judgement {
  readonly history: History;
  readonly observations: Observations;
  readonly verdicts: Verdict[];
  /** Checkers the simulator has and real disk cannot run, with the reason. */
  readonly notChecked: Array<{ readonly checker: CheckerName; readonly why: string }>;
  readonly figures: TortureFigures;
  readonly latency: TortureLatency;
  readonly fsck: FsckReport | { readonly error: string };
  /** Lines of history files cut short by a kill during the append. */
  readonly tornLines: number;
  /** 0 every property held, 1 a correctness property failed, 3 only liveness failed. */
  readonly exitCode: 0 | 1 | 3;
}

/** Checks of the real disk: a few ms of rounding between processes' readings of one clock. */
export const tortureCheckConfig: CheckConfig = { skewBoundMs: 5, livenessBoundMs: 5_000, durable: false };

/** The simulator's checkers that judge a torture history (all but mutual-exclusion). */
export const tortureCheckers: readonly CheckerName[] = ['header-invariants', 'no-loss', 'exactly-once', 'justified-redelivery', 'time-order', 'liveness'];

const notChecked: Judgement['notChecked'] = [
  {
    checker: 'mutual-exclusion',
    why: 'needs a view of every write of the kernel file and of who held the lock at that moment, which only the simulator has (header-invariants and exactly-once catch most of what a writer without the lock breaks)',
  },
];

/** Most operations a verdict names. */
const operationsShownMaximum = 5;

export function clientName(slot: number): string {
  return `p${slot}`;
}

type Draft = { -readonly [K in keyof Operation]: Operation[K] } & { sortKey: [number, number, number, number] };

/** Builds the history of a run from its processes' history files. */
export async function historyOf(run: RunRecord): Promise<{ history: History; tornLines: number; errors: Map<ProcessRecord, string>; drained: Map<ProcessRecord, boolean> }> {
  const drafts: Draft[] = [];
  let tornLines = 0;
  const errors = new Map<ProcessRecord, string>();
  const drained = new Map<ProcessRecord, boolean>();
  for (const record of run.processes) {
    let events: LogEvent[];
    try {
      const parsed = await readHistoryLog(record.historyPath);
      events = parsed.events;
      if (parsed.tornTail) tornLines += 1;
    } catch (error) {
      // Killed before it created its file: it did nothing.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const open = new Map<number, Draft>();
    for (const event of events) {
      switch (event.event) {
        case 'invoke': {
          const draft: Draft = {
            index: 0,
            client: clientName(record.slot),
            incarnation: record.incarnation,
            kind: event.kind,
            invokeMs: event.timeMs - run.startMs,
            invokeClockMs: event.timeMs,
            invokeTrace: 0,
            ...(event.sends === undefined ? {} : { sends: event.sends.map((sent) => ({ id: undefined, body: sent.body, deliverAt: sent.deliverAt })) }),
            ...(event.target === undefined ? {} : { target: { id: event.target.id, leaseToken: event.target.leaseToken } }),
            sortKey: [event.timeMs, record.slot, record.incarnation, event.operation],
          };
          open.set(event.operation, draft);
          drafts.push(draft);
          break;
        }
        case 'ok':
        case 'fail':
        case 'info': {
          const draft = open.get(event.operation);
          if (draft === undefined) throw new Error(`${record.historyPath}: a completion of operation ${event.operation}, which was never invoked`);
          open.delete(event.operation);
          draft.outcome = event.event;
          draft.completeMs = event.timeMs - run.startMs;
          draft.completeClockMs = event.timeMs;
          draft.completeTrace = 0;
          if (event.event === 'ok') {
            if (event.ids !== undefined && draft.sends !== undefined) {
              // A batch that filled the queue part way lists only what went in: the rest was not sent.
              draft.sends = draft.sends.slice(0, event.ids.length).map((sent, index) => ({ ...sent, id: event.ids![index] }));
            }
            if (event.deliveries !== undefined) draft.deliveries = event.deliveries.map((delivery) => ({ ...delivery }));
          } else {
            draft.error = event.error;
          }
          break;
        }
        case 'error':
          errors.set(record, event.message);
          break;
        case 'exit':
          drained.set(record, event.drained);
          break;
        default:
          break;
      }
    }
    // Calls the process was in when it ended: unknown outcome. A killed process crashed in them;
    // one that hung past the drain was stuck in them (a liveness failure).
    for (const draft of open.values()) {
      draft.outcome = 'info';
      draft.error = record.ending.kind === 'hung' ? 'pending' : 'crash';
    }
  }
  drafts.sort((a, b) => a.sortKey[0] - b.sortKey[0] || a.sortKey[1] - b.sortKey[1] || a.sortKey[2] - b.sortKey[2] || a.sortKey[3] - b.sortKey[3]);
  const history = new History({ nowMs: () => 0, tracePosition: () => 0 });
  for (const [index, draft] of drafts.entries()) {
    const { sortKey: _sortKey, ...operation } = draft;
    operation.index = index;
    history.operations.push(operation);
  }
  return { history, tornLines, errors, drained };
}

/** What is in the queue directory at the end: ids in the kernel, in the dead letters, with a body file. */
async function finalState(directory: string): Promise<{ kernel: Uint8Array | undefined; remainingIds: Set<string>; deadIds: Set<string>; bodyIds: Set<string> }> {
  const remainingIds = new Set<string>();
  let kernel: Uint8Array | undefined;
  try {
    kernel = new Uint8Array(await fs.readFile(nodePath.join(directory, queueLayout.kernel)));
    for (const slot of readKernelImage(kernel).slots) {
      if (slot === undefined || slot.state === SlotState.empty || slot.flags === slotFlagFilling) continue;
      remainingIds.add(messageIdOf(slot));
    }
  } catch (error) {
    // A kernel that cannot be read is reported by header-invariants (kernelViolations) below.
    if (!isNasqError(error) && (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const deadIds = new Set<string>();
  for (const name of await fs.readdir(nodePath.join(directory, queueLayout.dead))) {
    const dead = /^(\d+-\d+)\.json$/.exec(name);
    if (dead !== null) deadIds.add(dead[1]!);
  }
  const bodyIds = new Set<string>();
  for (const name of await fs.readdir(nodePath.join(directory, queueLayout.messages))) {
    if (/^\d+-\d+$/.test(name)) bodyIds.add(name);
  }
  return { kernel, remainingIds, deadIds, bodyIds };
}

function clientEventsOf(run: RunRecord): Observations['clientEvents'] {
  const events: Array<Observations['clientEvents'][number]> = [];
  for (const record of run.processes) {
    const client = clientName(record.slot);
    if (record.incarnation > 0) events.push({ timeMs: record.startedAtMs - run.startMs, client, event: 'restart' });
    // A process that died (killed, or exited with an error) crashed: what it held comes back.
    const { ending } = record;
    const crashed = ending.kind !== 'exited' || ending.code !== 0;
    if (crashed) events.push({ timeMs: ending.atMs - run.startMs, client, event: 'crash' });
  }
  return events.sort((a, b) => a.timeMs - b.timeMs);
}

function figuresOf(history: History, observations: Observations, orphanBodies: number): { figures: TortureFigures; latency: TortureLatency } {
  const okSends = new Map<string, Operation>();
  let sentUnknown = 0;
  const okAcks = new Map<string, Operation[]>();
  const otherAcks = new Set<string>();
  let deliveries = 0;
  let redeliveries = 0;
  let fencedAcks = 0;
  let releases = 0;
  const send = createHistogram();
  const receive = createHistogram();
  const ack = createHistogram();
  const endToEnd = createHistogram();
  for (const operation of history.operations) {
    const durationMs = (operation.completeMs ?? operation.invokeMs) - operation.invokeMs;
    switch (operation.kind) {
      case 'send':
        if (operation.outcome === 'ok') {
          recordMs(send, durationMs);
          for (const sent of operation.sends ?? []) if (sent.id !== undefined) okSends.set(sent.id, operation);
        } else if (operation.outcome === 'info') {
          sentUnknown += operation.sends?.length ?? 0;
        }
        break;
      case 'receive':
        if (operation.outcome === 'ok' && (operation.deliveries?.length ?? 0) > 0) {
          recordMs(receive, durationMs);
          for (const delivered of operation.deliveries!) {
            deliveries += 1;
            if (delivered.deliveryCount > 1) redeliveries += 1;
          }
        }
        break;
      case 'ack': {
        const id = operation.target!.id;
        if (operation.outcome === 'ok') {
          recordMs(ack, durationMs);
          okAcks.set(id, [...(okAcks.get(id) ?? []), operation]);
        } else if (operation.outcome === 'info') {
          otherAcks.add(id);
        } else if (operation.error === 'LEASE_LOST') {
          fencedAcks += 1;
        }
        break;
      }
      case 'release':
        if (operation.outcome === 'ok') releases += 1;
        break;
      default:
        break;
    }
  }
  let lost = 0;
  let remaining = 0;
  let ackedUnknown = 0;
  for (const [id, sendOperation] of okSends) {
    const acks = okAcks.get(id);
    if (acks !== undefined) {
      const sent = sendOperation.sends!.find((candidate) => candidate.id === id)!;
      const dueMs = Math.max(sendOperation.invokeClockMs, sent.deliverAt);
      recordMs(endToEnd, Math.max(0, acks[0]!.completeClockMs! - dueMs));
      continue;
    }
    if (observations.deadIds.has(id)) continue;
    if (observations.remainingIds.has(id)) remaining += 1;
    else if (otherAcks.has(id)) ackedUnknown += 1;
    else lost += 1;
  }
  const duplicateAcks = [...okAcks.values()].filter((acks) => acks.length > 1).length;
  const deadLettered = [...observations.deadIds].filter((id) => okSends.has(id)).length;
  return {
    figures: {
      operations: history.operations.length,
      sent: okSends.size,
      sentUnknown,
      acked: okAcks.size,
      ackedUnknown,
      deliveries,
      redeliveries,
      fencedAcks,
      releases,
      lost,
      duplicateAcks,
      remaining,
      deadLettered,
      orphanBodies,
    },
    latency: { send: summarize(send), receive: summarize(receive), ack: summarize(ack), endToEnd: summarize(endToEnd) },
  };
}

function fsckVerdict(report: FsckReport | { error: string }): Verdict {
  if ('error' in report) return { checker: 'fsck', kind: 'correctness', validity: 'invalid', explanation: `fsck failed: ${report.error}`, operations: [] };
  const problems = [...report.violations, ...report.badBodies.map((bad) => `the body of ${bad.id} is ${bad.problem}`)];
  if (problems.length > 0) {
    return { checker: 'fsck', kind: 'correctness', validity: 'invalid', explanation: `fsck finds the queue damaged: ${problems.slice(0, operationsShownMaximum).join('; ')}`, operations: [] };
  }
  const orphans = report.orphans.length === 0 ? '' : `; ${report.orphans.length} orphan bodies of sends killed before their commit (moved to the dead letters after judging)`;
  return { checker: 'fsck', kind: 'correctness', validity: 'valid', explanation: `the final queue directory is sound${orphans}`, operations: [] };
}

/** Why a process failed, in a line: the error it recorded, else the error line of its stderr (a crash before it could record). */
function failureOf(recorded: string | undefined, stderrTail: string): string {
  if (recorded !== undefined) return recorded.split('\n').slice(0, 2).map((line) => line.trim()).join(' ');
  const lines = stderrTail.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  return lines.find((line) => /\b\w*Error\b/.test(line)) ?? lines.at(-1) ?? 'nothing on stderr';
}

function processesVerdict(run: RunRecord, errors: Map<ProcessRecord, string>, drained: Map<ProcessRecord, boolean>): Verdict[] {
  const failed: string[] = [];
  const hung: string[] = [];
  const undrained: string[] = [];
  for (const record of run.processes) {
    const name = `${clientName(record.slot)}.${record.incarnation}`;
    const { ending } = record;
    if (ending.kind === 'hung') hung.push(name);
    if (ending.kind !== 'exited') continue;
    if (ending.code !== 0) {
      failed.push(`${name} ended with ${ending.code ?? ending.signal}: ${failureOf(errors.get(record), record.stderrTail)}`);
    } else if (drained.get(record) !== true) {
      undrained.push(name);
    }
  }
  const verdicts: Verdict[] = [];
  if (failed.length > 0) {
    const shown = failed.slice(0, operationsShownMaximum).join('; ');
    verdicts.push({ checker: 'processes', kind: 'correctness', validity: 'invalid', explanation: `${failed.length} process(es) failed on their own: ${shown}`, operations: [] });
  }
  if (hung.length > 0 || undrained.length > 0) {
    const parts = [
      hung.length > 0 ? `${hung.length} process(es) still running when the drain time was over (killed): ${hung.slice(0, operationsShownMaximum).join(', ')}` : '',
      undrained.length > 0 ? `${undrained.length} process(es) ran out of drain time before the queue was empty: ${undrained.slice(0, operationsShownMaximum).join(', ')}` : '',
    ].filter((part) => part !== '');
    verdicts.push({ checker: 'processes', kind: 'liveness', validity: 'invalid', explanation: parts.join('; '), operations: [] });
  }
  if (verdicts.length === 0) {
    const killed = run.processes.filter((record) => record.ending.kind === 'killed').length;
    verdicts.push({
      checker: 'processes',
      kind: 'correctness',
      validity: 'valid',
      explanation: `every process was killed by the runner (${killed}) or drained the queue and exited 0 (${run.processes.length - killed})`,
      operations: [],
    });
  }
  return verdicts;
}

export function exitCodeOf(verdicts: readonly Verdict[]): 0 | 1 | 3 {
  const invalid = verdicts.filter((verdict) => verdict.validity === 'invalid');
  if (invalid.some((verdict) => verdict.kind === 'correctness')) return 1;
  return invalid.length > 0 ? 3 : 0;
}

/** Judges a finished run: its history against the final state of its queue directory. */
export async function judge(run: RunRecord): Promise<Judgement> {
  const { history, tornLines, errors, drained } = await historyOf(run);
  const state = await finalState(run.queueDirectory);
  let fsckReport: FsckReport | { error: string };
  try {
    fsckReport = await fsck(queuePorts(run.queueDirectory), '.', { lockWaitMs: 10_000 });
  } catch (error) {
    fsckReport = { error: error instanceof Error ? error.message : String(error) };
  }
  const violations = state.kernel === undefined ? ['the kernel file is gone'] : kernelViolations(state.kernel);
  const endMs = run.endMs - run.startMs;
  const observations: Observations = {
    kernelViolations: violations.length === 0 ? [] : [{ timeMs: endMs, tracePosition: 0, client: 'the final kernel file', violations }],
    unlockedWrites: [],
    generationBreaks: [],
    remainingIds: state.remainingIds,
    deadIds: state.deadIds,
    bodyIds: state.bodyIds,
    clientEvents: clientEventsOf(run),
    healAtMs: run.healAtMs - run.startMs,
    endMs,
    arrayLost: false,
    powerLossesMs: [],
  };
  const results = runCheckers({ history, observations, config: tortureCheckConfig }, tortureCheckers);
  const verdicts: Verdict[] = results.map((result) => ({
    checker: result.checker,
    kind: result.kind,
    validity: result.validity,
    explanation:
      result.checker === 'header-invariants' && result.validity === 'valid'
        ? 'the final kernel file is consistent (counts, groups, links, order, checksums); the writes before it cannot be watched on real disk'
        : result.explanation,
    operations: result.operations.slice(0, operationsShownMaximum).map((index) => formatOperation(history.operations[index]!)),
  }));
  verdicts.push(fsckVerdict(fsckReport), ...processesVerdict(run, errors, drained));
  const orphanBodies = 'error' in fsckReport ? 0 : fsckReport.orphans.length;
  const { figures, latency } = figuresOf(history, observations, orphanBodies);
  return { history, observations, verdicts, notChecked, figures, latency, fsck: fsckReport, tornLines, exitCode: exitCodeOf(verdicts) };
}

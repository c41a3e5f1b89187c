/**
 * The engine on real disk: NodeFileSystem (real fcntl byte-range locks) and SystemClock, with
 * clients in separate OS processes (engine/test-support/disk-worker.ts, run through tsx).
 *
 * - Four processes send and receive 2,000 messages concurrently on one queue: every message is
 *   acked exactly once, none is lost, the kernel's invariants hold, fsck finds it clean.
 * - A process is SIGKILLed at a point of a lock cycle (holding the header lock, in the middle of
 *   the commit write, after a journal flush, mid-send, between receive and ack, mid-ack): the
 *   survivors go on once the lease runs out, fsck finds the queue clean or repairs it, nothing
 *   whose send returned is lost and nothing is acked twice.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import { fsck } from './fsck.js';
import { kernelViolations } from './kernel-image.js';
import type { Ports } from './ports.js';
import { QueueClient, createQueue, queueLayout } from './queue.js';
import type { MixedPlan, VictimPlan, WorkerPlan } from './test-support/disk-worker.js';

const repository = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..');
const workerScript = nodePath.join(repository, 'engine', 'test-support', 'disk-worker.ts');
const decoder = new TextDecoder();

interface WorkerEvent {
  event: 'sent' | 'received' | 'acked' | 'stopped' | 'done' | 'error';
  messages?: Array<[string, string, number?]>;
  point?: string;
  message?: string;
}

interface Worker {
  readonly child: ChildProcess;
  readonly events: WorkerEvent[];
  readonly stderr: string[];
  /** Resolves with the exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** Resolves when the worker reports that it stopped at its stop point. */
  readonly stopped: Promise<string>;
}

const workers: Worker[] = [];
let root: string;
let ports: Ports;

beforeEach(async () => {
  root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-real-disk-'));
  ports = { fs: new NodeFileSystem(root, { lockPollIntervalMsMax: 10 }), clock: new SystemClock() };
});

afterEach(async () => {
  for (const worker of workers.splice(0)) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await worker.exited;
  }
  await fs.rm(root, { recursive: true, force: true });
});

/** Starts a worker process: `node --import tsx disk-worker.ts PLAN` (tsx resolves from the repository). */
function startWorker(plan: WorkerPlan): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', workerScript, JSON.stringify(plan)], {
    cwd: repository,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: WorkerEvent[] = [];
  const stderr: string[] = [];
  let onStopped: (point: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    onStopped = resolve;
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const event = JSON.parse(line) as WorkerEvent;
    events.push(event);
    if (event.event === 'stopped') onStopped(event.point!);
  });
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const worker = { child, events, stderr, exited, stopped };
  workers.push(worker);
  return worker;
}

/** The failure text of a worker, for assertion messages. */
function describeWorker(worker: Worker): string {
  const errors = worker.events.filter((event) => event.event === 'error').map((event) => event.message);
  return `${errors.join('\n')}\n${worker.stderr.join('')}`.trim();
}

/** Waits for a promise, failing with `what` after `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every message of some kind of event, over several workers, as [id, body] pairs in order. */
function messagesOf(sources: readonly Worker[], kind: WorkerEvent['event']): Array<[string, string]> {
  return sources.flatMap((worker) =>
    worker.events.filter((event) => event.event === kind).flatMap((event) => (event.messages ?? []).map(([id, body]) => [id, body] as [string, string])),
  );
}

async function kernelBytes(): Promise<Uint8Array> {
  return new Uint8Array(await fs.readFile(nodePath.join(root, 'q', queueLayout.kernel)));
}

async function bodyFiles(): Promise<string[]> {
  return fs.readdir(nodePath.join(root, 'q', queueLayout.messages));
}

/** Counts of each id in a list. */
function tally(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

interface MixedOutcome {
  codes: Array<number | string>;
  started: Worker[];
}

async function runMixed(workerCount: number, messagesPerWorker: number, plantedBug?: 'no-lock'): Promise<MixedOutcome> {
  await createQueue(ports, 'q', { slots: 64, maximumDeliveries: 100 });
  const doneDirectory = nodePath.join(root, 'done');
  await fs.mkdir(doneDirectory);
  const started = Array.from({ length: workerCount }, (_, worker) =>
    startWorker({
      mode: 'mixed',
      root,
      directory: 'q',
      worker,
      workers: workerCount,
      messages: messagesPerWorker,
      seed: 1_000 + worker,
      leaseMs: 30_000,
      doneDirectory,
      deadlineMs: plantedBug === undefined ? 45_000 : 10_000,
      ...(plantedBug === undefined ? {} : { plantedBug }),
    } satisfies MixedPlan),
  );
  const codes = await within(Promise.all(started.map((worker) => worker.exited)), 50_000, 'the workers to finish');
  return { codes, started };
}

/**
 * What is wrong with the outcome of a mixed run, in words (empty when every message was acked
 * exactly once with its own body, and the kernel and fsck are clean).
 */
async function mixedProblems({ codes, started }: MixedOutcome, expectedMessages: number): Promise<string[]> {
  const problems: string[] = [];
  for (const [index, code] of codes.entries()) {
    if (code !== 0) problems.push(`worker ${index} exited with ${code}: ${describeWorker(started[index]!)}`);
  }
  const sent = messagesOf(started, 'sent');
  const acked = messagesOf(started, 'acked');
  const bodyById = new Map(sent);
  // Every send that returned handed out a fresh id, and every body went out once.
  if (bodyById.size !== sent.length) problems.push(`${sent.length - bodyById.size} ids were handed out twice`);
  if (new Set(sent.map(([, body]) => body)).size !== expectedMessages) problems.push(`${sent.length} sends returned, expected ${expectedMessages}`);
  // Exactly once: every message acked, none twice, each with the body it was sent with.
  const ackCounts = tally(acked.map(([id]) => id));
  const twice = [...ackCounts].filter(([, count]) => count > 1);
  if (twice.length > 0) problems.push(`${twice.length} messages acked more than once, e.g. ${twice[0]![0]}`);
  const lost = [...bodyById.keys()].filter((id) => !ackCounts.has(id));
  if (lost.length > 0) problems.push(`${lost.length} messages never acked, e.g. ${lost[0]}`);
  const wrongBodies = [...messagesOf(started, 'received'), ...acked].filter(([id, body]) => bodyById.get(id) !== body);
  if (wrongBodies.length > 0) problems.push(`${wrongBodies.length} deliveries with a body not sent under their id, e.g. ${wrongBodies[0]!.join(' ')}`);
  const violations = kernelViolations(await kernelBytes());
  if (violations.length > 0) problems.push(`kernel: ${violations.join('; ')}`);
  try {
    const report = await fsck(ports, 'q', { lockWaitMs: 1_000 });
    if (!report.clean || report.messages !== 0 || report.orphans.length > 0) {
      problems.push(`fsck: ${JSON.stringify({ clean: report.clean, messages: report.messages, orphans: report.orphans.length, violations: report.violations })}`);
    }
  } catch (error) {
    problems.push(`fsck threw ${String(error)}`);
  }
  const leftOver = await bodyFiles();
  if (leftOver.length > 0) problems.push(`${leftOver.length} body files left over`);
  return problems;
}

describe('four OS processes on one queue on real disk', () => {
  it('send and receive 2,000 messages concurrently: each acked exactly once, none lost, kernel and fsck clean', async () => {
    const outcome = await runMixed(4, 500);
    expect(await mixedProblems(outcome, 2_000)).toEqual([]);
    // The processes really did work on each other's messages.
    const senderOf = new Map(outcome.started.flatMap((worker, index) => messagesOf([worker], 'sent').map(([id]) => [id, index] as const)));
    const ackedAcross = outcome.started.flatMap((worker, index) => messagesOf([worker], 'acked').filter(([id]) => senderOf.get(id) !== index));
    expect(ackedAcross.length).toBeGreaterThan(200);
  });

  it('catches a planted bug: clients that skip the header lock', async () => {
    const outcome = await runMixed(4, 150, 'no-lock');
    expect((await mixedProblems(outcome, 600)).length).toBeGreaterThan(0);
  });
});

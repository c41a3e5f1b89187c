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
import { headerRegionSize } from './format.js';
import { listDeadLetters } from './dead-letters.js';
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
  messages?: Array<[string, string, number?, number?]>;
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
      deadlineMs: plantedBug === undefined ? 45_000 : 3_000,
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
    const outcome = await runMixed(4, 100, 'no-lock');
    expect((await mixedProblems(outcome, 400)).length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// SIGKILL at a point of a lock cycle

const victimLeaseMs = 1_000;

interface KillCase {
  readonly scenario: VictimPlan['scenario'];
  /** The point the victim stops at. */
  readonly point: string;
  /** The victim holds the header lock while stopped: a survivor's operation waits for the kill. */
  readonly holdsLock: boolean;
  /**
   * Messages whose body the victim deleted in an ack that never returned: the ack took effect
   * (never delivered again), by the design of the ack order (body first, then the slot).
   */
  readonly ackedByTheDead: (received: readonly string[]) => string[];
  /**
   * What fsck says right after the kill, before anyone else touches the queue: clean; a torn
   * header copy plus missing bodies (then repaired here, by a rebuild); or only the missing body
   * of an interrupted ack (left to the survivors' reclaim).
   */
  readonly fsckAfterKill: 'clean' | 'torn-copy' | 'missing-body';
}

const killCases: KillCase[] = [
  { scenario: 'hold-lock', point: 'after-lock', holdsLock: true, ackedByTheDead: () => [], fsckAfterKill: 'clean' },
  // The ack batch deleted all three bodies, then its commit was torn: the header copy in force is
  // the one before, where the three are pending with bodies gone. fsck reports the torn copy and
  // the missing bodies; its repair rebuilds without them.
  { scenario: 'torn-header', point: 'torn-header-write', holdsLock: true, ackedByTheDead: (received) => [...received], fsckAfterKill: 'torn-copy' },
  { scenario: 'slot-area', point: 'after-slot-area-write', holdsLock: true, ackedByTheDead: () => [], fsckAfterKill: 'clean' },
  { scenario: 'mid-send', point: 'before-lock', holdsLock: false, ackedByTheDead: () => [], fsckAfterKill: 'clean' },
  { scenario: 'between-receive-and-ack', point: 'between-receive-and-ack', holdsLock: false, ackedByTheDead: () => [], fsckAfterKill: 'clean' },
  // The first body was deleted under the lock, the commit never came: the survivors' reclaim finds
  // it gone once the lease runs out and frees the slot. Meanwhile fsck sees a pending message
  // without a body, and says so (it is left to the reclaim here, not repaired).
  { scenario: 'mid-ack', point: 'after-body-unlink', holdsLock: true, ackedByTheDead: (received) => received.slice(0, 1), fsckAfterKill: 'missing-body' },
];

describe('SIGKILL in the middle of an operation, on real disk', () => {
  it.each(killCases)('killed at $point ($scenario): survivors go on, nothing returned is lost or acked twice', async (killCase) => {
    await createQueue(ports, 'q', { slots: 32 });
    const survivor = await QueueClient.open(ports, 'q', { leaseMs: 30_000, lockWaitMs: 20_000, pollIntervalMs: 100 });
    try {
      const returnedSends: string[] = [];
      for (let index = 0; index < 6; index += 1) returnedSends.push(await survivor.send(`parent-${index}`));

      const victim = startWorker({ mode: 'victim', root, directory: 'q', scenario: killCase.scenario, count: 3, leaseMs: victimLeaseMs });
      const point = await within(Promise.race([victim.stopped, victim.exited.then((code) => `exited ${code}`)]), 20_000, 'the victim to stop');
      expect(point, describeWorker(victim)).toBe(killCase.point);
      const victimSent = messagesOf([victim], 'sent').map(([id]) => id);
      const victimReceived = messagesOf([victim], 'received').map(([id]) => id);
      returnedSends.push(...victimSent);

      // A survivor's look at the header while the victim is stopped: it waits exactly when the
      // victim holds the lock (a shared lock against its exclusive one), and changes nothing.
      let settled = false;
      const statDuringStop = survivor.stat().finally(() => {
        settled = true;
      });
      if (killCase.holdsLock) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(settled).toBe(false);
      } else {
        await within(statDuringStop, 5_000, 'a look at the header while the victim is stopped without the lock');
      }
      victim.child.kill('SIGKILL');
      expect(await victim.exited).toBe('SIGKILL');
      // The kernel released the dead process's fcntl lock: the waiting look goes through.
      await within(statDuringStop, 5_000, 'the look that waited for the lock');

      const ackedByTheDead = killCase.ackedByTheDead(victimReceived);
      if (killCase.fsckAfterKill === 'clean') {
        const report = await fsck(ports, 'q');
        expect(report.violations).toEqual([]);
        expect(report.clean).toBe(true);
      } else if (killCase.fsckAfterKill === 'torn-copy') {
        // The torn copy is rewritten from the one in force (a second commit of the same state);
        // nothing is rebuilt, leases survive, and the bodies the dying ack deleted are
        // interrupted acks that the engine finishes when their leases run out.
        const report = await fsck(ports, 'q', { repair: true });
        expect(report.clean).toBe(false);
        expect(report.violations).toEqual([expect.stringMatching(/not in force/)]);
        expect(report.repaired).toMatchObject({ recommitted: true, rebuilt: false });
        expect(report.interruptedAcks.sort()).toEqual([...ackedByTheDead].sort());
        expect((await fsck(ports, 'q')).violations).toEqual([]);
      } else {
        const report = await fsck(ports, 'q');
        expect(report.violations).toEqual([]);
        expect(report.badBodies).toEqual([]);
        expect(report.interruptedAcks).toEqual(ackedByTheDead);
        expect(report.clean).toBe(true);
      }

      // The survivor drains the queue; what the victim held comes back once its lease runs out.
      const expected = new Set(returnedSends.filter((id) => !ackedByTheDead.includes(id)));
      const acked: string[] = [];
      const deliveries: Array<{ id: string; deliveryCount: number; at: number }> = [];
      const deadline = Date.now() + 15_000;
      while (acked.length < expected.size && Date.now() < deadline) {
        const batch = await survivor.receiveBatch(8, { waitMs: 500 });
        for (const delivery of batch) deliveries.push({ id: delivery.id, deliveryCount: delivery.deliveryCount, at: Date.now() });
        const outcomes = await survivor.ackBatch(batch.map((delivery) => delivery.receipt));
        expect(outcomes.every((outcome) => outcome === 'acked')).toBe(true);
        acked.push(...batch.map((delivery) => delivery.id));
      }
      expect([...tally(acked)].filter(([, count]) => count > 1)).toEqual([]);
      expect(new Set(acked)).toEqual(expected);
      expect(await survivor.receive({ waitMs: 200 })).toBeNull();
      // Messages the victim held (and did not ack) came back only after its lease.
      const leaseExpiryOf = new Map(
        victim.events.filter((event) => event.event === 'received').flatMap((event) => event.messages!.map(([id, , , expiry]) => [id, expiry!] as const)),
      );
      const held = victimReceived.filter((id) => !ackedByTheDead.includes(id));
      for (const id of held) {
        const redelivery = deliveries.find((entry) => entry.id === id);
        expect(redelivery?.deliveryCount, id).toBe(2);
        expect(redelivery!.at).toBeGreaterThanOrEqual(leaseExpiryOf.get(id)!);
      }

      // The interrupted acks are finished by the first receive after their leases run out.
      const lastLease = Math.max(0, ...ackedByTheDead.map((id) => leaseExpiryOf.get(id) ?? 0));
      if (lastLease > Date.now()) await new Promise((resolve) => setTimeout(resolve, lastLease - Date.now() + 20));
      expect(await survivor.receive()).toBeNull();

      // At the end: a sound kernel; fsck clean, after removing the body of an interrupted send.
      expect(kernelViolations(await kernelBytes())).toEqual([]);
      const check = await fsck(ports, 'q');
      expect(check).toMatchObject({ clean: true, violations: [], messages: 0, badBodies: [] });
      if (killCase.scenario === 'mid-send') {
        expect(check.orphans).toHaveLength(1);
        const repair = await fsck(ports, 'q', { repair: true, orphanGraceMs: 0 });
        expect(repair.repaired).toMatchObject({ rebuilt: false, deadLetteredOrphans: [check.orphans[0]!.id] });
      } else {
        expect(check.orphans).toEqual([]);
      }
      expect(await bodyFiles()).toEqual([]);
    } finally {
      await survivor.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The durable option

interface RecordedCall {
  method: string;
  path: string;
  /** For write: 'header' or 'slots' (where in the kernel file); for writeFile and unlink: whether it syncs. */
  detail: string;
}

/** NodeFileSystem calls, recorded with what matters for durability. */
function recording(inner: NodeFileSystem): { fs: NodeFileSystem; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const fs = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const first = args[0];
        const path = typeof first === 'string' ? first : ((first as { path?: string }).path ?? '');
        let detail = '';
        if (property === 'write') detail = (args[1] as number) < headerRegionSize ? 'header' : 'slots';
        if (property === 'writeFile') detail = (args[2] as { sync?: boolean } | undefined)?.sync === true ? 'sync' : 'no-sync';
        if (property === 'unlink') detail = (args[1] as { sync?: boolean } | undefined)?.sync === true ? 'sync' : 'no-sync';
        if (property === 'rename') detail = (args[2] as { sync?: boolean } | undefined)?.sync === true ? 'sync' : 'no-sync';
        calls.push({ method: String(property), path, detail });
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { fs, calls };
}

/** The calls in words, without reads of the kernel (how many slots a cycle reads varies). */
const described = (calls: readonly RecordedCall[]): string[] =>
  calls.filter((call) => call.method !== 'read').map((call) => [call.method, call.detail].filter((part) => part !== '').join(' '));

describe('the durable option on real disk', () => {
  it('durable: the body is flushed before the commit, and the kernel after each commit, before unlock', async () => {
    await createQueue(ports, 'q', { slots: 16 });
    const recorder = recording(ports.fs as NodeFileSystem);
    const client = await QueueClient.open({ fs: recorder.fs, clock: ports.clock }, 'q', { durable: true, journalSoftLimit: 1 });
    try {
      recorder.calls.length = 0;
      await client.send('one');
      expect(described(recorder.calls)).toEqual(['writeFile sync', 'lock', 'write header', 'sync', 'unlock', 'setTimes']);

      recorder.calls.length = 0;
      const delivery = await client.receive();
      await client.ack(delivery!.receipt);
      expect(described(recorder.calls)).toEqual([
        ...['lock', 'write header', 'sync', 'unlock', 'readFile'],
        ...['lock', 'unlink sync', 'write header', 'sync', 'unlock'],
      ]);

      // Acking three at once: the last delete flushes the directory (and with it the two before).
      for (const body of ['x', 'y', 'z']) await client.send(body);
      const three = [await client.receive(), await client.receive(), await client.receive()];
      recorder.calls.length = 0;
      await client.ackBatch(three.map((delivery) => delivery!.receipt));
      expect(described(recorder.calls)).toEqual(['lock', 'unlink no-sync', 'unlink no-sync', 'unlink sync', 'write header', 'sync', 'unlock']);

      // A journal flush: the slot-area writes are flushed before the header write commits them.
      await client.sendBatch([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
      recorder.calls.length = 0;
      await client.receive();
      const kernelCalls = described(recorder.calls.filter((call) => call.path.endsWith('kernel')));
      const slotWrite = kernelCalls.indexOf('write slots');
      expect(slotWrite).toBeGreaterThan(0);
      expect(kernelCalls.slice(slotWrite + 1)).toEqual(['sync', 'write header', 'sync', 'unlock']);
    } finally {
      await client.close();
    }
  });

  it('durable: a message dead-lettered by a receiver is in dead/ on stable storage before the commit frees its slot', async () => {
    await createQueue(ports, 'q', { slots: 16, maximumDeliveries: 1 });
    const recorder = recording(ports.fs as NodeFileSystem);
    const client = await QueueClient.open({ fs: recorder.fs, clock: ports.clock }, 'q', { durable: true, leaseMs: 1 });
    try {
      await client.send('once only');
      expect(await client.receive()).not.toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 20)); // the 1 ms lease runs out
      recorder.calls.length = 0;
      expect(await client.receive()).toBeNull(); // delivered once already: to the dead letters
      // The record (dead/ID.json), then the body renamed from msg/ID to dead/ID.
      const deadCalls = described(recorder.calls.filter((call) => call.path.includes('/dead/') || call.method === 'rename'));
      expect(deadCalls).toEqual(['writeFile sync', 'rename sync']);
      const kernelCommit = described(recorder.calls).lastIndexOf('write header');
      expect(described(recorder.calls).indexOf('rename sync')).toBeLessThan(kernelCommit);
      expect((await listDeadLetters(ports, 'q')).map((letter) => letter.reason)).toEqual(['too-many-deliveries']);
    } finally {
      await client.close();
    }
  });

  it('not durable (the default): nothing is flushed', async () => {
    await createQueue(ports, 'q', { slots: 16 });
    const recorder = recording(ports.fs as NodeFileSystem);
    const client = await QueueClient.open({ fs: recorder.fs, clock: ports.clock }, 'q');
    try {
      recorder.calls.length = 0;
      await client.send('one');
      const delivery = await client.receive();
      await client.ack(delivery!.receipt);
      expect(recorder.calls.filter((call) => call.method === 'sync')).toEqual([]);
      expect(described(recorder.calls.filter((call) => call.method === 'writeFile' || call.method === 'unlink'))).toEqual(['writeFile no-sync', 'unlink no-sync']);
    } finally {
      await client.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Notification across processes

describe('the notification file across processes on real disk', () => {
  it('a receiver waiting in one process wakes on a send from another, long before its poll interval', async () => {
    await createQueue(ports, 'q', { slots: 16 });
    // The poll interval is a minute: only the notification can wake the receiver in time.
    const receiver = await QueueClient.open(ports, 'q', { pollIntervalMs: 60_000 });
    try {
      const sender = startWorker({ mode: 'sender', root, directory: 'q', count: 3, gapMs: 400 });
      const received: Array<{ id: string; atMs: number }> = [];
      for (let index = 0; index < 3; index += 1) {
        const delivery = await receiver.receive({ waitMs: 20_000 });
        expect(delivery, describeWorker(sender)).not.toBeNull();
        received.push({ id: delivery!.id, atMs: Date.now() });
        await receiver.ack(delivery!.receipt);
      }
      expect(await within(sender.exited, 10_000, 'the sender to exit')).toBe(0);
      const sent = sender.events.filter((event) => event.event === 'sent').map((event) => event.messages![0]!);
      expect(received.map((entry) => entry.id)).toEqual(sent.map(([id]) => id));
      for (const [index, [, , sentAtMs]] of sent.entries()) {
        // Measured here: a few ms (inotify on the notify directory); the bound leaves room for a loaded machine.
        expect(received[index]!.atMs - sentAtMs!).toBeLessThan(2_000);
      }
    } finally {
      await receiver.close();
    }
  });
});

/**
 * Chaos on real disk: several OS processes send and receive on one queue while this script
 * SIGKILLs one of them at random moments and starts a replacement, over and over. At the end it
 * checks the history and the files:
 *
 * - no message acked twice (every returned ack is counted);
 * - every message whose send returned was acked, or was in an ack of a process killed during it
 *   (outcome unknown: its body was deleted, so the ack took effect);
 * - every acked message was sent (by a send that returned, or one a killed process was in);
 * - the kernel's invariants hold, fsck is clean after removing the bodies of interrupted sends,
 *   and nothing went to the dead letters.
 *
 * Too long for the unit tests; run by hand:
 *   node --import tsx torture/disk-chaos.ts [--workers 6] [--messages 3000] [--kills 20]
 *     [--lease-ms 2000] [--seed 1] [--deadline-ms 600000]
 * Exit code 0 when every check holds, 1 otherwise (the problems are printed).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import { fsck } from '../engine/fsck.js';
import { kernelViolations } from '../engine/kernel-image.js';
import { createQueue, queueLayout } from '../engine/queue.js';
import type { MixedPlan } from '../engine/test-support/disk-worker.js';

const repository = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..');
const workerScript = nodePath.join(repository, 'engine', 'test-support', 'disk-worker.ts');

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index === -1) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isFinite(value) || value < 0) {
    process.stderr.write(`disk-chaos: --${name} expects a number >= 0, got ${String(process.argv[index + 1])}\n`);
    process.exit(2);
  }
  return value;
}

const workerCount = option('workers', 6);
const messagesPerWorker = Math.ceil(option('messages', 3000) / workerCount);
const kills = option('kills', 20);
const leaseMs = option('lease-ms', 2_000);
const seed = option('seed', 1);
const deadlineMs = option('deadline-ms', 600_000);

interface Event {
  event: string;
  messages?: Array<[string, string]>;
  message?: string;
}

interface Process {
  readonly number: number;
  readonly child: ChildProcess;
  readonly events: Event[];
  readonly exited: Promise<number | string>;
  killed: boolean;
}

const random = seedrandom(String(seed));

async function main(): Promise<void> {
  const root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-chaos-'));
  const ports = { fs: new NodeFileSystem(root), clock: new SystemClock() };
  await createQueue(ports, 'q', { slots: 128, maximumDeliveries: 1_000 });
  const doneDirectory = nodePath.join(root, 'done');
  await fs.mkdir(doneDirectory);
  const started = Date.now();
  const processes: Process[] = [];
  const current: Process[] = [];

  const sentBodies = (number: number): number =>
    new Set(
      processes
        .filter((entry) => entry.number === number)
        .flatMap((entry) => entry.events.filter((event) => event.event === 'sent').flatMap((event) => event.messages!.map(([, body]) => body))),
    ).size;

  const start = (number: number): Process => {
    const plan: MixedPlan = {
      mode: 'mixed',
      root,
      directory: 'q',
      worker: number,
      workers: workerCount,
      messages: messagesPerWorker,
      firstBody: sentBodies(number),
      seed: Math.floor(random() * 1e9),
      leaseMs,
      doneDirectory,
      deadlineMs: deadlineMs - (Date.now() - started),
    };
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript, JSON.stringify(plan)], { cwd: repository, stdio: ['ignore', 'pipe', 'inherit'] });
    const events: Event[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => events.push(JSON.parse(line) as Event));
    const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    const entry: Process = { number, child, events, exited, killed: false };
    processes.push(entry);
    current[number] = entry;
    return entry;
  };

  for (let number = 0; number < workerCount; number += 1) start(number);
  for (let kill = 0; kill < kills; kill += 1) {
    // A replacement takes most of a second to start (tsx): give each generation time to work.
    await new Promise((resolve) => setTimeout(resolve, 800 + random() * 1_700));
    const alive = current.filter((entry) => entry.child.exitCode === null && entry.child.signalCode === null);
    if (alive.length === 0) break;
    const victim = alive[Math.floor(random() * alive.length)]!;
    victim.killed = true;
    victim.child.kill('SIGKILL');
    await victim.exited;
    start(victim.number);
    const last = victim.events[victim.events.length - 1];
    process.stderr.write(`kill ${kill + 1}/${kills}: worker ${victim.number} after ${victim.events.length} events, the last '${last?.event ?? 'none'}'\n`);
  }
  // Wait for the last generation, and every process ever started.
  for (const entry of [...processes]) await entry.exited;

  const problems: string[] = [];
  for (const entry of processes) {
    const code = await entry.exited;
    if (!entry.killed && code !== 0) {
      const errors = entry.events.filter((event) => event.event === 'error').map((event) => event.message);
      problems.push(`worker ${entry.number} exited with ${code}: ${errors.join('; ')}`);
    }
  }
  const messages = (entries: readonly Process[], kind: string): Array<[string, string]> =>
    entries.flatMap((entry) => entry.events.filter((event) => event.event === kind).flatMap((event) => event.messages!));
  const sent = new Map(messages(processes, 'sent'));
  const ackCounts = new Map<string, number>();
  for (const [id] of messages(processes, 'acked')) ackCounts.set(id, (ackCounts.get(id) ?? 0) + 1);
  // Acks a killed process was in the middle of: their outcome is unknown.
  const unknownAcks = new Set<string>();
  for (const entry of processes.filter((candidate) => candidate.killed)) {
    const ackedHere = new Set(messages([entry], 'acked').map(([id]) => id));
    for (const [id] of messages([entry], 'acking')) if (!ackedHere.has(id)) unknownAcks.add(id);
  }
  const twice = [...ackCounts].filter(([, count]) => count > 1);
  if (twice.length > 0) problems.push(`${twice.length} messages acked twice, e.g. ${twice[0]![0]}`);
  const lost = [...sent.keys()].filter((id) => !ackCounts.has(id) && !unknownAcks.has(id));
  if (lost.length > 0) problems.push(`${lost.length} messages whose send returned were never acked, e.g. ${lost.slice(0, 5).join(', ')}`);
  const killedNumbers = new Set(processes.filter((entry) => entry.killed).map((entry) => entry.number));
  const received = new Map(messages(processes, 'received'));
  const unexplained = [...ackCounts.keys()].filter((id) => {
    if (sent.has(id)) return false;
    // Sent by a send a killed process was in: its body names the worker number.
    const number = Number(/^w(\d+)-/.exec(received.get(id) ?? '')?.[1] ?? -1);
    return !killedNumbers.has(number);
  });
  if (unexplained.length > 0) problems.push(`${unexplained.length} acked messages nobody sent, e.g. ${unexplained[0]}`);

  const kernel = new Uint8Array(await fs.readFile(nodePath.join(root, 'q', queueLayout.kernel)));
  const violations = kernelViolations(kernel);
  if (violations.length > 0) problems.push(`kernel: ${violations.join('; ')}`);
  const check = await fsck(ports, 'q');
  if (check.violations.length > 0 || check.badBodies.length > 0 || check.messages > 0) {
    problems.push(`fsck: ${JSON.stringify({ violations: check.violations, badBodies: check.badBodies, messages: check.messages })}`);
  }
  const repair = await fsck(ports, 'q', { repair: true, orphanGraceMs: 0 });
  const leftOver = await fs.readdir(nodePath.join(root, 'q', queueLayout.messages));
  if (leftOver.length > 0) problems.push(`${leftOver.length} body files left after repair`);
  const dead = await fs.readdir(nodePath.join(root, 'q', queueLayout.dead));
  if (dead.length > 0) problems.push(`${dead.length} files in the dead letters`);

  const summary = {
    workers: workerCount,
    processesStarted: processes.length,
    killed: processes.filter((entry) => entry.killed).length,
    sendsReturned: sent.size,
    acked: ackCounts.size,
    unknownAcks: unknownAcks.size,
    ackedWithoutReturnedSend: [...ackCounts.keys()].filter((id) => !sent.has(id)).length,
    orphansRemoved: repair.repaired.deletedOrphans.length,
    seconds: Math.round((Date.now() - started) / 1000),
    problems,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  await fs.rm(root, { recursive: true, force: true });
  process.exit(problems.length === 0 ? 0 : 1);
}

await main();

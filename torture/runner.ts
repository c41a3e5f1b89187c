/**
 * `nasq torture`: the engine in real OS processes on a real directory, killed at random.
 *
 * 1. Setup (setup.ts): the directory is checked (writable, empty or an empty queue, working
 *    byte-range locks) and the queue is created; a bad directory stops the run before anything starts.
 * 2. Chaos: N worker processes (worker.ts) send and receive through NodeFileSystem on the queue,
 *    each appending its history to its own file. About every kill interval (drawn from 0.5 to 1.5
 *    times it, seeded) the runner SIGKILLs one process, chosen at random (seeded), and starts a
 *    new incarnation of it in its place. A process that dies on its own is restarted too, and
 *    reported.
 * 3. Heal and drain: at the end of the duration the kills stop and the processes stop sending;
 *    they receive and ack until every one has stopped sending and nothing is unread or pending
 *    (what killed processes held comes back when its lease runs out), then exit.
 * 4. Judge (judge.ts): the simulator's checkers on the histories and the final directory, fsck,
 *    and how every process ended.
 *
 * The runner is the real world's driver: it uses ambient time and timers (engine/ does not).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import type { LockDetection } from '../adapters/detect-locks.js';
import { fsck } from '../engine/fsck.js';
import { judge, type Judgement, type ProcessEnding, type ProcessRecord, type RunRecord } from './judge.js';
import { TortureSetupError, prepareQueue, queuePorts, type PreparedQueue } from './setup.js';
import { doneFile, type WorkerPlan, type WorkloadOptions } from './worker.js';

/** How to start a worker process: `node ...nodeArguments script PLAN_JSON` in `cwd`. */
export interface WorkerEntry {
  readonly script: string;
  /** Node options before the script, e.g. ['--import', 'tsx'] to run TypeScript sources. */
  readonly nodeArguments: readonly string[];
  /** Working directory of the processes (where `--import tsx` is resolved from). */
  readonly cwd: string;
}

export interface TortureOptions {
  /** The queue directory: empty or missing (a queue is created), or an empty queue (reused). */
  readonly directory: string;
  /** Worker processes running at once (1 to 64). */
  readonly processes: number;
  /** Length of the chaos, ms: the kills and the sends stop after it (the heal). */
  readonly durationMs: number;
  /** Mean time between two kills, ms (each gap is drawn from 0.5 to 1.5 times it). */
  readonly killIntervalMs: number;
  /** Seeds the kills (when, whom) and each process's workload. */
  readonly seed: number;
  /** Lease of a received message, ms. Default 2,000. */
  readonly leaseMs?: number;
  /** Slots of a queue created for the run. Default 256. */
  readonly slots?: number;
  /** Deliveries before a message is dead-lettered, for a queue created for the run. Default 1,000. */
  readonly maximumDeliveries?: number;
  /**
   * Where the history files (`histories/`) and the processes' control files (`control/`) go;
   * both are replaced. Default: a temporary directory, removed after a run that passed and
   * kept (its path in the result) after one that failed.
   */
  readonly workDirectory?: string;
  /** Longest drain after the heal, ms. Default the larger of 30 s and 10 leases. */
  readonly drainTimeoutMs?: number;
  /** The worker processes' entry. Default: worker-main next to this module (compiled JS, or the sources through tsx). */
  readonly workerEntry?: WorkerEntry;
  /** The workload's knobs (worker.ts `WorkloadOptions`). */
  readonly workload?: Partial<WorkloadOptions>;
  /** fdatasync every history append. Default true. */
  readonly historySync?: boolean;
  /** The lock probe. Default detectLocks (a test passes a stand-in). */
  readonly detectLocks?: (directory: string) => Promise<LockDetection>;
  /** Called about every `progressIntervalMs` during the run. */
  readonly onProgress?: (progress: TortureProgress) => void;
  /** Default 10,000 ms. */
  readonly progressIntervalMs?: number;
  /** Aborting kills every process and ends the run with a TortureInterrupted error. */
  readonly signal?: AbortSignal;
}

export interface TortureProgress {
  readonly phase: 'chaos' | 'drain';
  readonly elapsedMs: number;
  /** Until the heal (chaos), or until the drain gives up (drain). */
  readonly remainingMs: number;
  readonly kills: number;
  readonly running: number;
}

export interface TortureResult {
  readonly options: {
    readonly processes: number;
    readonly durationMs: number;
    readonly killIntervalMs: number;
    readonly seed: number;
    readonly leaseMs: number;
    readonly drainTimeoutMs: number;
  };
  readonly queue: PreparedQueue;
  /** Wall-clock start, ISO 8601. */
  readonly startedAt: string;
  readonly wallMs: number;
  /** The chaos (start to heal) and the drain (heal to the last process's end), ms. */
  readonly chaosMs: number;
  readonly drainMs: number;
  readonly processesStarted: number;
  readonly kills: number;
  /** Processes that died on their own during the chaos and were started again. */
  readonly unexpectedExits: number;
  /** The runner gave up after too many processes failed on their own: the run was cut short. */
  readonly gaveUp: boolean;
  readonly judgement: Judgement;
  /** Orphan bodies (of sends killed before their commit) moved to the dead letters after a run that passed. */
  readonly orphansRemoved: number;
  /** Where the history files are, or null when they were removed with their temporary directory. */
  readonly historyDirectory: string | null;
  readonly exitCode: 0 | 1 | 3;
}

export class TortureInterrupted extends Error {
  constructor() {
    super('the torture run was interrupted');
    this.name = 'TortureInterrupted';
  }
}

export const processesMaximum = 64;
const killIntervalMsMinimum = 10;
const durationMsMaximum = 7 * 24 * 3_600_000;
const leaseMsMinimum = 100;
/**
 * Processes that may fail on their own before the runner gives up on the run (a queue the
 * workers cannot open, a worker that cannot start): it stops the chaos, kills the rest, judges.
 */
const unexpectedExitsMinimumMaximum = 10;
/** After the drain time, processes get this long to exit before they are killed as hung, ms. */
const hungGraceMs = 10_000;
/** The end of a process's standard error kept for the report, characters. */
const stderrTailMaximum = 4_000;

const repositoryRoot = (): string => {
  const here = fileURLToPath(import.meta.url);
  // torture/runner.ts in the sources; dist/torture/runner.js in the package.
  return here.endsWith('.ts') ? nodePath.resolve(nodePath.dirname(here), '..') : nodePath.resolve(nodePath.dirname(here), '..', '..');
};

/** The worker of this package: compiled JS from dist/, or the TypeScript sources through tsx when the runner runs from them. */
export function defaultWorkerEntry(): WorkerEntry {
  const here = fileURLToPath(import.meta.url);
  const fromSources = here.endsWith('.ts');
  return {
    script: nodePath.join(nodePath.dirname(here), fromSources ? 'worker-main.ts' : 'worker-main.js'),
    nodeArguments: fromSources ? ['--import', 'tsx'] : [],
    cwd: repositoryRoot(),
  };
}

/** A worker entry in the TypeScript sources (a test's), run through tsx from the repository root. */
export function sourceWorkerEntry(script: string): WorkerEntry {
  return { script: nodePath.resolve(script), nodeArguments: ['--import', 'tsx'], cwd: repositoryRoot() };
}

function validate(options: TortureOptions): void {
  const check = (ok: boolean, what: string, expected: string, given: unknown): void => {
    if (!ok) throw new TortureSetupError(`${what}: expected ${expected}, got ${JSON.stringify(given)}`);
  };
  const { processes, durationMs, killIntervalMs, seed } = options;
  check(Number.isInteger(processes) && processes >= 1 && processes <= processesMaximum, 'processes', `an integer from 1 to ${processesMaximum}`, processes);
  check(Number.isFinite(durationMs) && durationMs > 0 && durationMs <= durationMsMaximum, 'duration', 'a duration above 0 and at most 7 days', durationMs);
  check(Number.isFinite(killIntervalMs) && killIntervalMs >= killIntervalMsMinimum, 'kill interval', `a duration of at least ${killIntervalMsMinimum} ms`, killIntervalMs);
  check(Number.isSafeInteger(seed), 'seed', 'an integer', seed);
  const leaseMs = options.leaseMs ?? 2_000;
  check(Number.isFinite(leaseMs) && leaseMs >= leaseMsMinimum, 'lease', `a duration of at least ${leaseMsMinimum} ms`, leaseMs);
  if (options.drainTimeoutMs !== undefined) check(Number.isFinite(options.drainTimeoutMs) && options.drainTimeoutMs > 0, 'drain timeout', 'a duration above 0', options.drainTimeoutMs);
}

interface Running {
  readonly slot: number;
  readonly incarnation: number;
  readonly historyPath: string;
  readonly startedAtMs: number;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: string | null; atMs: number }>;
  stderrTail: string;
  /** Set when the runner kills it (the chaos) or gives up on it (hung). */
  ending: ProcessEnding | undefined;
}

const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Runs a torture: setup, chaos, heal, drain, judge. Throws TortureSetupError before anything starts on bad input. */
export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  validate(options);
  const leaseMs = options.leaseMs ?? 2_000;
  const drainTimeoutMs = options.drainTimeoutMs ?? Math.max(30_000, 10 * leaseMs);
  const queue = await prepareQueue(options.directory, {
    slots: options.slots ?? 256,
    maximumDeliveries: options.maximumDeliveries ?? 1_000,
    ...(options.detectLocks === undefined ? {} : { detectLocks: options.detectLocks }),
  });
  const temporary = options.workDirectory === undefined;
  const workDirectory = options.workDirectory ?? (await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-torture-')));
  const historyDirectory = nodePath.join(workDirectory, 'histories');
  const controlDirectory = nodePath.join(workDirectory, 'control');
  for (const directory of [historyDirectory, controlDirectory]) {
    await fs.rm(directory, { recursive: true, force: true });
    await fs.mkdir(directory, { recursive: true });
  }
  const entry = options.workerEntry ?? defaultWorkerEntry();
  const { signal } = options;
  const aborted = (): boolean => signal?.aborted === true;

  const startMs = Date.now();
  const healAtMs = startMs + options.durationMs;
  const drainUntilMs = healAtMs + drainTimeoutMs;
  const records: ProcessRecord[] = [];
  const current: Running[] = [];
  let kills = 0;
  let unexpectedExits = 0;
  const unexpectedExitsMaximum = Math.max(unexpectedExitsMinimumMaximum, 2 * options.processes);
  let stopping = false;
  // Cut short by the runner itself (too many processes failed on their own), or by the caller.
  const giveUp = new AbortController();
  const cutShort = (): void => giveUp.abort();
  signal?.addEventListener('abort', cutShort, { once: true });

  const start = (slot: number, incarnation: number): Running => {
    const historyPath = nodePath.join(historyDirectory, `p${slot}.${incarnation}.jsonl`);
    const plan: WorkerPlan = {
      queueDirectory: queue.directory,
      slot,
      incarnation,
      processes: options.processes,
      seed: options.seed,
      historyPath,
      controlDirectory,
      healAtMs,
      drainUntilMs,
      leaseMs,
      historySync: options.historySync ?? true,
      ...(options.workload === undefined ? {} : { workload: options.workload }),
    };
    const child = spawn(process.execPath, [...entry.nodeArguments, entry.script, JSON.stringify(plan)], { cwd: entry.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: string | null; atMs: number }>((resolve) => {
      child.once('exit', (code, exitSignal) => resolve({ code, signal: exitSignal, atMs: Date.now() }));
      child.once('error', (error) => {
        running.stderrTail += `cannot start the process: ${error.message}\n`;
        resolve({ code: null, signal: null, atMs: Date.now() });
      });
    });
    const running: Running = { slot, incarnation, historyPath, startedAtMs: Date.now(), child, exited, stderrTail: '', ending: undefined };
    child.stderr?.on('data', (chunk: Buffer) => {
      running.stderrTail = (running.stderrTail + chunk.toString('utf8')).slice(-stderrTailMaximum);
    });
    current[slot] = running;
    void exited.then((exit) => {
      records.push({
        slot,
        incarnation,
        historyPath,
        startedAtMs: running.startedAtMs,
        ending: running.ending ?? { kind: 'exited', atMs: exit.atMs, code: exit.code, signal: exit.signal },
        stderrTail: running.stderrTail,
      });
      // Killed by the runner, or the run is ending (a Ctrl-C reaches the whole process group): no restart.
      if (running.ending !== undefined || stopping || giveUp.signal.aborted) return;
      // It ended on its own. During the chaos that is an error of the process (reported by the
      // judge): start it again so the run goes on. After the heal, it will not send again: say
      // so for it, so the others can finish their drain.
      if (exit.atMs < healAtMs) {
        unexpectedExits += 1;
        if (unexpectedExits >= unexpectedExitsMaximum) {
          giveUp.abort();
          return;
        }
        start(slot, incarnation + 1);
      } else if (exit.code !== 0) {
        void fs.writeFile(doneFile(controlDirectory, slot), '').catch(() => undefined);
      }
    });
    return running;
  };

  const progress = (): void => {
    const now = Date.now();
    const chaos = now < healAtMs;
    options.onProgress?.({
      phase: chaos ? 'chaos' : 'drain',
      elapsedMs: now - startMs,
      remainingMs: Math.max(0, chaos ? healAtMs - now : drainUntilMs - now),
      kills,
      running: current.filter((running) => running.child.exitCode === null && running.child.signalCode === null).length,
    });
  };
  const progressTimer = options.onProgress === undefined ? undefined : setInterval(progress, options.progressIntervalMs ?? 10_000);

  try {
    for (let slot = 0; slot < options.processes; slot += 1) start(slot, 0);

    // The chaos: a kill about every interval, none at or after the heal.
    const random = seedrandom(`torture/${options.seed}`);
    const gapMs = (): number => options.killIntervalMs * (0.5 + random());
    for (let nextKillMs = startMs + gapMs(); nextKillMs < healAtMs && !giveUp.signal.aborted; nextKillMs += gapMs()) {
      await sleep(nextKillMs - Date.now(), giveUp.signal);
      if (giveUp.signal.aborted) break;
      const victim = current[Math.floor(random() * options.processes)]!;
      // Already gone on its own (and being restarted): this kill is skipped.
      if (victim.child.exitCode !== null || victim.child.signalCode !== null || victim.ending !== undefined) continue;
      victim.ending = { kind: 'killed', atMs: Date.now() };
      victim.child.kill('SIGKILL');
      await victim.exited;
      kills += 1;
      start(victim.slot, victim.incarnation + 1);
    }

    // Heal and drain: wait for every process to finish its drain, then for stragglers.
    const allEnded = async (): Promise<void> => {
      // A process that ended on its own during the chaos is replaced in `current`: wait until the set is stable.
      for (;;) {
        const waiting = [...current];
        await Promise.all(waiting.map((running) => running.exited));
        if (waiting.every((running, slot) => current[slot] === running)) return;
      }
    };
    let ended = false;
    const everyoneEnded = allEnded().then(() => {
      ended = true;
    });
    const drainWait = new AbortController();
    const stopWaiting = (): void => drainWait.abort();
    giveUp.signal.addEventListener('abort', stopWaiting, { once: true });
    if (!giveUp.signal.aborted) await Promise.race([everyoneEnded, sleep(drainUntilMs + hungGraceMs - Date.now(), drainWait.signal)]);
    giveUp.signal.removeEventListener('abort', stopWaiting);
    drainWait.abort();
    if (!ended) {
      stopping = true;
      for (const running of current) {
        if (running.child.exitCode !== null || running.child.signalCode !== null) continue;
        running.ending = giveUp.signal.aborted ? { kind: 'killed', atMs: Date.now() } : { kind: 'hung', atMs: Date.now() };
        running.child.kill('SIGKILL');
      }
      await everyoneEnded;
    }
    if (aborted()) throw new TortureInterrupted();
  } catch (error) {
    stopping = true;
    for (const running of current) if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
    await Promise.all(current.map((running) => running.exited));
    if (temporary) await fs.rm(workDirectory, { recursive: true, force: true });
    throw error;
  } finally {
    if (progressTimer !== undefined) clearInterval(progressTimer);
    signal?.removeEventListener('abort', cutShort);
  }
  // The exit handlers record each process; let the last ones run.
  await new Promise((resolve) => setImmediate(resolve));
  const endMs = Date.now();

  const run: RunRecord = {
    queueDirectory: queue.directory,
    startMs,
    healAtMs,
    endMs,
    processes: [...records].sort((a, b) => a.slot - b.slot || a.incarnation - b.incarnation),
  };
  const judgement = await judge(run);
  let orphansRemoved = 0;
  if (judgement.exitCode === 0 && judgement.figures.orphanBodies > 0) {
    // Leave the queue as clean as it was found: the bodies of sends killed before their commit.
    const repair = await fsck(queuePorts(queue.directory), '.', { repair: true, orphanGraceMs: 0 });
    orphansRemoved = repair.repaired.deadLetteredOrphans.length;
  }
  await fs.rm(controlDirectory, { recursive: true, force: true });
  let keptHistories: string | null = historyDirectory;
  if (temporary && judgement.exitCode === 0) {
    await fs.rm(workDirectory, { recursive: true, force: true });
    keptHistories = null;
  }
  return {
    options: { processes: options.processes, durationMs: options.durationMs, killIntervalMs: options.killIntervalMs, seed: options.seed, leaseMs, drainTimeoutMs },
    queue,
    startedAt: new Date(startMs).toISOString(),
    wallMs: endMs - startMs,
    chaosMs: healAtMs - startMs,
    drainMs: endMs - healAtMs,
    processesStarted: records.length,
    kills,
    unexpectedExits,
    gaveUp: giveUp.signal.aborted,
    judgement,
    orphansRemoved,
    historyDirectory: keptHistories,
    exitCode: judgement.exitCode,
  };
}

/**
 * The simulation: one seeded run of many virtual clients against one simulated CIFS share.
 *
 * ```ts
 * const simulation = new Simulation({ seed: 42 });
 * for (let index = 0; index < 8; index += 1) {
 *   simulation.addClient(`worker-${index}`, async ({ fs, clock }) => {
 *     const handle = await fs.open('counter', { create: true });
 *     await fs.lock(handle, { offset: 0, length: 8 }, { waitMs: 1000 });
 *     // ... read, modify, write ...
 *     await fs.unlock(handle, { offset: 0, length: 8 });
 *   });
 * }
 * simulation.at(5, (sim) => sim.crash('worker-3'));
 * const { reason, stats } = await simulation.run();
 * console.log(stats.traceHash, stats.simulatedMs, stats.fsOps);
 * ```
 *
 * Same seed, same options, same client code: same trace hash. Controls (crash, restart, drop a
 * session, move a client's clock) can be called between runs or from actions scheduled with `at`,
 * which is what a nemesis builds on.
 */

import { type Host, nodeHost } from '../adapters/host.js';
import { assert } from '../engine/errors.js';
import { type ClientEnvironment, type ClientMain, type ClientOptions, ClientRuntime, VirtualClient } from './client.js';
import { type EventHandler, SimEvent } from './event-queue.js';
import { FixedLatency, type FixedLatencyOptions, type LatencyModel } from './latency.js';
import { Operation, operationNames, statusNames } from './protocol.js';
import { RandomStreams, type RunSeed, describeValue, validateRunSeed } from './random.js';
import { Scheduler, type StopReason, type TieBreak } from './scheduler.js';
import { type ServerOptions, SimServer } from './server.js';
import { Trace, TraceKind, type TraceOptions } from './trace.js';

export interface SimulationOptions {
  /** The run's seed: every random choice of the run derives from it. Required. */
  readonly seed: RunSeed;
  /** The simulated server (timestamps, notify queue, durable handles). Default: its defaults. */
  readonly server?: ServerOptions;
  /** A latency model, or options of the fixed one. Default: `new FixedLatency()` (LAN, 0.1 ms each way). */
  readonly latency?: LatencyModel | FixedLatencyOptions;
  /** Trace window and sink. Default: a 4096-record window, no sink. */
  readonly trace?: TraceOptions;
  /** How simultaneous events are ordered: 'seeded' (default) or 'sequence' (scheduling order). */
  readonly tieBreak?: TieBreak;
  /** Host hook for yields and stall detection. Default `nodeHost`; null runs without both. */
  readonly host?: Host | null;
  /** Events between yields to the host. Default 4096. */
  readonly eventsPerHostTurn?: number;
  /** What a client whose main throws does to the run: 'fail-run' (default) or 'record' (keep going). */
  readonly clientErrors?: 'fail-run' | 'record';
  /** Default attribute-cache lifetime of clients (Linux cifs actimeo), ms. Default 1000; 0 disables. */
  readonly actimeoMs?: number;
  /** Time of a call that never leaves the client (cache hit, bad argument), ms. Default 0.001. */
  readonly localOperationMs?: number;
  /** Extra time of the first call after a dropped session (reconnect and reclaim), ms. Default 1. */
  readonly reconnectMs?: number;
  /** Delay before the call in flight when a session drops fails with SHARE_UNAVAILABLE, ms. Default 0. */
  readonly sessionLossNoticeMs?: number;
  /**
   * Resolution of the clients' `clock.now()`, ms. Default 1: whole milliseconds, as Date.now()
   * (the engine relies on it). 0 gives the exact virtual time (sub-millisecond tests).
   */
  readonly clockResolutionMs?: number;
  /**
   * Builds the simulated share. Default `new SimServer(scheduler, trace, server)`. The benchmarks
   * pass `NullServer` (null-server.ts), a share that does nothing, to measure the scheduler alone.
   */
  readonly createServer?: (scheduler: Scheduler, trace: Trace, options: ServerOptions | undefined) => SimServer;
}

const knownOptions = new Set([
  'seed',
  'server',
  'latency',
  'trace',
  'tieBreak',
  'host',
  'eventsPerHostTurn',
  'clientErrors',
  'actimeoMs',
  'localOperationMs',
  'reconnectMs',
  'sessionLossNoticeMs',
  'clockResolutionMs',
  'createServer',
]);

export interface RunOptions {
  /**
   * 'finished' (default): until every client has settled (finished, failed, or crashed without a
   * pending restart); a state where clients wait but no event is left is a deadlock and fails
   * the run. 'quiescent': until no event is left at all.
   */
  readonly until?: 'finished' | 'quiescent';
  /** Also stop before the first event after this virtual time, ms. Default: no limit. */
  readonly untilMs?: number;
  /** Also stop after this many events in total (all runs). Default: no limit. */
  readonly maxEvents?: number;
}

export interface SimulationStats {
  readonly seed: RunSeed;
  /** Virtual time now, ms. */
  readonly simulatedMs: number;
  /** Events dispatched. */
  readonly events: number;
  /** File-system port calls made by clients. */
  readonly fsOps: number;
  /** Clock port calls (sleepUntil, waitForChange). */
  readonly clockOps: number;
  /** Requests the server applied. */
  readonly serverRequests: number;
  /** Wall time spent in runs, ms. */
  readonly wallMs: number;
  /** Running hash of the trace: equal for equal runs. */
  readonly traceHash: string;
  readonly traceRecords: number;
  readonly clients: { readonly total: number; readonly finished: number; readonly failed: number; readonly crashed: number; readonly live: number };
}

export interface RunResult {
  readonly reason: StopReason;
  readonly stats: SimulationStats;
}

export interface CrashOptions {
  /**
   * When the server notices and drops the crashed client's session, ms after the crash. Default 0
   * (a process crash resets its TCP connection at once). Until then its requests on the wire still
   * apply and its locks stay held.
   */
  readonly dropSessionAfterMs?: number;
}

export interface RestartOptions {
  /** Delay before the new incarnation starts, ms. Default 0. */
  readonly afterMs?: number;
}

/** A scheduled action of the run (a nemesis step, a check). */
export type SimulationAction = (simulation: Simulation) => void;

const ControlKind = { action: 1, dropSession: 2, restart: 3 } as const;

function nonNegativeMs(name: string, value: unknown, fallback: number): number {
  const resolved = value ?? fallback;
  if (typeof resolved !== 'number' || !(resolved >= 0) || !Number.isFinite(resolved)) {
    throw new TypeError(`${name}: expected a finite number of ms >= 0, got ${describeValue(resolved)}`);
  }
  return resolved;
}

export class Simulation implements ClientEnvironment, EventHandler {
  readonly seed: RunSeed;
  readonly random: RandomStreams;
  readonly scheduler: Scheduler;
  readonly trace: Trace;
  readonly server: SimServer;
  readonly latency: LatencyModel;
  readonly epochMs: number;
  readonly localOperationMs: number;
  readonly reconnectMs: number;
  readonly sessionLossNoticeMs: number;
  readonly clockResolutionMs: number;
  private readonly defaultActimeoMs: number;
  private readonly clientErrors: 'fail-run' | 'record';
  private readonly clientList: VirtualClient[] = [];
  private readonly clientsByName = new Map<string, VirtualClient>();
  private readonly mains = new Map<VirtualClient, ClientMain>();
  private liveClients = 0;
  private runMode: 'finished' | 'quiescent' = 'finished';
  private fsOps = 0;
  private clockOps = 0;

  constructor(options: SimulationOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`Simulation: expected an options object with a seed, got ${describeValue(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!knownOptions.has(key)) {
        throw new TypeError(`Simulation: unknown option ${JSON.stringify(key)}; expected one of ${[...knownOptions].join(', ')}`);
      }
    }
    validateRunSeed(options.seed);
    this.seed = options.seed;
    this.random = new RandomStreams(options.seed);
    const host = options.host === undefined ? nodeHost : options.host;
    this.scheduler = new Scheduler({
      random: this.random.stream('scheduler/tiebreak'),
      tieBreak: options.tieBreak,
      host,
      eventsPerHostTurn: options.eventsPerHostTurn,
    });
    this.trace = new Trace(options.trace);
    this.trace.setNames({
      operation: (code) => operationNames[code] ?? String(code),
      status: (code) => statusNames[code] ?? String(code),
      client: (index) => this.clientList[index]?.name ?? `client-${index}`,
    });
    this.server = options.createServer === undefined ? new SimServer(this.scheduler, this.trace, options.server) : options.createServer(this.scheduler, this.trace, options.server);
    if (this.server.options.randomLockWaiterOrder) this.server.lockWaiterRandom = this.random.stream('server/lock-waiters');
    this.epochMs = this.server.options.epochMs;
    const latency = options.latency;
    this.latency =
      latency !== undefined && typeof (latency as LatencyModel).requestDelayMs === 'function'
        ? (latency as LatencyModel)
        : new FixedLatency((latency ?? {}) as FixedLatencyOptions);
    this.defaultActimeoMs = nonNegativeMs('actimeoMs', options.actimeoMs, 1000);
    this.localOperationMs = nonNegativeMs('localOperationMs', options.localOperationMs, 0.001);
    this.reconnectMs = nonNegativeMs('reconnectMs', options.reconnectMs, 1);
    this.sessionLossNoticeMs = nonNegativeMs('sessionLossNoticeMs', options.sessionLossNoticeMs, 0);
    this.clockResolutionMs = nonNegativeMs('clockResolutionMs', options.clockResolutionMs, 1);
    const clientErrors = options.clientErrors ?? 'fail-run';
    if (clientErrors !== 'fail-run' && clientErrors !== 'record') {
      throw new TypeError(`clientErrors: expected 'fail-run' or 'record', got ${describeValue(clientErrors)}`);
    }
    this.clientErrors = clientErrors;
  }

  /** Virtual time now, ms since the start of the run. */
  get nowMs(): number {
    return this.scheduler.nowMs;
  }

  /** Every client, in the order added. */
  get clients(): readonly VirtualClient[] {
    return this.clientList;
  }

  client(name: string): VirtualClient {
    const client = this.clientsByName.get(name);
    if (client === undefined) throw new TypeError(`no client named ${JSON.stringify(name)}`);
    return client;
  }

  /** Adds a client that runs `main` from `options.startAtMs` (default now). */
  addClient(name: string, main: ClientMain, options: ClientOptions = {}): VirtualClient {
    this.assertNoClientRunning('addClient');
    if (typeof name !== 'string' || name.length === 0) throw new TypeError(`addClient: expected a non-empty name, got ${describeValue(name)}`);
    if (this.clientsByName.has(name)) throw new TypeError(`addClient: a client named ${JSON.stringify(name)} exists`);
    if (typeof main !== 'function') throw new TypeError(`addClient: expected a main function, got ${describeValue(main)}`);
    for (const key of Object.keys(options)) {
      if (key !== 'startAtMs' && key !== 'actimeoMs' && key !== 'clockOffsetMs') {
        throw new TypeError(`addClient: unknown option ${JSON.stringify(key)}; expected startAtMs, actimeoMs or clockOffsetMs`);
      }
    }
    const startAtMs = options.startAtMs ?? this.scheduler.nowMs;
    if (typeof startAtMs !== 'number' || !(startAtMs >= this.scheduler.nowMs) || !Number.isFinite(startAtMs)) {
      throw new TypeError(`addClient: startAtMs must be a finite time >= now (${this.scheduler.nowMs}), got ${describeValue(startAtMs)}`);
    }
    const actimeoMs = nonNegativeMs('addClient actimeoMs', options.actimeoMs, this.defaultActimeoMs);
    const clockOffsetMs = options.clockOffsetMs ?? 0;
    if (typeof clockOffsetMs !== 'number' || !Number.isFinite(clockOffsetMs)) {
      throw new TypeError(`addClient: clockOffsetMs must be a finite number, got ${describeValue(clockOffsetMs)}`);
    }
    const client = new VirtualClient(
      name,
      this.clientList.length,
      this.random.stream(`client/${name}/latency`),
      this.random.stream(`client/${name}/workload`),
      actimeoMs,
      clockOffsetMs,
    );
    this.clientList.push(client);
    this.clientsByName.set(name, client);
    this.mains.set(client, main);
    const runtime = new ClientRuntime(this, client, main);
    client.runtime = runtime;
    this.liveClients += 1;
    this.scheduler.withdrawStop();
    runtime.scheduleStart(startAtMs);
    return client;
  }

  /**
   * Crashes a client now: its code stops at its current await (the pending call never returns).
   * The server drops its session (now, or `dropSessionAfterMs` later): non-durable opens close
   * and their locks go; durable ones linger for the server's durable timeout.
   */
  crash(target: VirtualClient | string, options: CrashOptions = {}): void {
    this.assertNoClientRunning('crash');
    const client = this.resolve(target);
    const runtime = client.runtime;
    if (runtime === null || !runtime.alive) throw new TypeError(`crash: client ${JSON.stringify(client.name)} is not running (${client.status})`);
    const dropAfterMs = nonNegativeMs('crash dropSessionAfterMs', options.dropSessionAfterMs, 0);
    runtime.kill();
    client.status = 'crashed';
    client.runtime = null;
    this.liveClients -= 1;
    this.trace.record(this.scheduler.nowMs, TraceKind.control, client.index, Operation.clientCrash, 0, runtime.incarnation, 0, 0, '');
    const session = runtime.session;
    if (dropAfterMs === 0) {
      this.server.dropSession(session);
    } else {
      this.scheduler.schedule(new SimEvent(this, ControlKind.dropSession, session), this.scheduler.nowMs + dropAfterMs);
    }
    this.checkAllSettled();
  }

  /** Starts a new incarnation of a settled or crashed client (a fresh session), with `main` or its last one. */
  restart(target: VirtualClient | string, main?: ClientMain, options: RestartOptions = {}): void {
    this.assertNoClientRunning('restart');
    const client = this.resolve(target);
    if (client.runtime !== null || client.restartPending) {
      throw new TypeError(`restart: client ${JSON.stringify(client.name)} is still running or already restarting (${client.status})`);
    }
    if (main !== undefined) {
      if (typeof main !== 'function') throw new TypeError(`restart: expected a main function, got ${describeValue(main)}`);
      this.mains.set(client, main);
    }
    const afterMs = nonNegativeMs('restart afterMs', options.afterMs, 0);
    client.restartPending = true;
    this.liveClients += 1;
    this.scheduler.withdrawStop();
    this.scheduler.schedule(new SimEvent(this, ControlKind.restart, client), this.scheduler.nowMs + afterMs);
  }

  /**
   * Drops a running client's session as a network failure would: the server closes its
   * non-durable opens and releases their locks at once; the client, alive, still believes it holds
   * them. Its call in flight fails with SHARE_UNAVAILABLE; its next call reconnects.
   */
  dropSession(target: VirtualClient | string): void {
    this.assertNoClientRunning('dropSession');
    const client = this.resolve(target);
    const runtime = client.runtime;
    if (runtime === null) throw new TypeError(`dropSession: client ${JSON.stringify(client.name)} is not running (${client.status})`);
    this.server.dropSession(runtime.session);
  }

  /** Moves a client's clock (offset from the server's clock, ms); its timers follow its clock. */
  setClockOffset(target: VirtualClient | string, offsetMs: number): void {
    this.assertNoClientRunning('setClockOffset');
    const client = this.resolve(target);
    if (typeof offsetMs !== 'number' || !Number.isFinite(offsetMs)) {
      throw new TypeError(`setClockOffset: expected a finite number of ms, got ${describeValue(offsetMs)}`);
    }
    client.clockOffsetMs = offsetMs;
    this.trace.record(this.scheduler.nowMs, TraceKind.control, client.index, Operation.clockSet, 0, 0, offsetMs, 0, '');
    client.runtime?.clockChanged();
  }

  /** Runs `action` at virtual time `timeMs` (not in the past), between two events. */
  at(timeMs: number, action: SimulationAction): void {
    if (typeof timeMs !== 'number' || !(timeMs >= this.scheduler.nowMs) || !Number.isFinite(timeMs)) {
      throw new TypeError(`at: expected a finite time >= now (${this.scheduler.nowMs}), got ${describeValue(timeMs)}`);
    }
    if (typeof action !== 'function') throw new TypeError(`at: expected a function, got ${describeValue(action)}`);
    this.scheduler.schedule(new SimEvent(this, ControlKind.action, action), timeMs);
  }

  /** Runs until the condition of `options` holds. Rejects if the run fails. */
  async run(options: RunOptions = {}): Promise<RunResult> {
    for (const key of Object.keys(options)) {
      if (key !== 'until' && key !== 'untilMs' && key !== 'maxEvents') {
        throw new TypeError(`run: unknown option ${JSON.stringify(key)}; expected until, untilMs or maxEvents`);
      }
    }
    const until = options.until ?? 'finished';
    if (until !== 'finished' && until !== 'quiescent') {
      throw new TypeError(`run: until must be 'finished' or 'quiescent', got ${describeValue(until)}`);
    }
    const untilMs = options.untilMs ?? Number.POSITIVE_INFINITY;
    if (typeof untilMs !== 'number' || Number.isNaN(untilMs)) throw new TypeError(`run: untilMs must be a number, got ${describeValue(untilMs)}`);
    const maxEvents = options.maxEvents ?? Number.POSITIVE_INFINITY;
    if (typeof maxEvents !== 'number' || !(maxEvents >= 0)) throw new TypeError(`run: maxEvents must be a number >= 0, got ${describeValue(maxEvents)}`);
    this.runMode = until;
    if (until === 'finished' && this.liveClients === 0 && this.clientList.length > 0) this.scheduler.requestStop('finished');
    const reason = await this.scheduler.run({
      untilMs,
      maxEvents,
      whenEmpty: () => this.whenEmpty(),
    });
    return { reason, stats: this.stats() };
  }

  stats(): SimulationStats {
    let finished = 0;
    let failed = 0;
    let crashed = 0;
    for (const client of this.clientList) {
      if (client.status === 'finished') finished += 1;
      else if (client.status === 'failed') failed += 1;
      else if (client.status === 'crashed') crashed += 1;
    }
    return {
      seed: this.seed,
      simulatedMs: this.scheduler.nowMs,
      events: this.scheduler.events,
      fsOps: this.fsOps,
      clockOps: this.clockOps,
      serverRequests: this.server.requestsApplied,
      wallMs: this.scheduler.wallMs,
      traceHash: this.trace.hash(),
      traceRecords: this.trace.count,
      clients: { total: this.clientList.length, finished, failed, crashed, live: this.liveClients },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // ClientEnvironment.

  countCall(isFileSystem: boolean): void {
    if (isFileSystem) this.fsOps += 1;
    else this.clockOps += 1;
  }

  clientSettled(runtime: ClientRuntime, failed: boolean, outcome: unknown): void {
    const client = runtime.client;
    assert(client.runtime === runtime, 'clientSettled: not the current incarnation');
    client.runtime = null;
    client.status = failed ? 'failed' : 'finished';
    if (failed) client.error = outcome;
    else client.result = outcome;
    this.liveClients -= 1;
    assert(this.liveClients >= 0, 'clientSettled: live clients below zero');
    // The client's sessions end with it: a process that exits closes its files, durable or not.
    for (const retired of runtime.retiredSessions) this.server.endSession(retired);
    this.server.endSession(runtime.session);
    if (failed && this.clientErrors === 'fail-run') {
      const message = outcome instanceof Error ? outcome.message : String(outcome);
      this.scheduler.fail(new Error(`client "${client.name}" failed: ${message}`, { cause: outcome }));
      return;
    }
    this.checkAllSettled();
    this.scheduler.endClientTurn(runtime);
  }

  // ---------------------------------------------------------------------------------------------
  // Controls scheduled in virtual time.

  handleEvent(event: SimEvent): void {
    switch (event.kind) {
      case ControlKind.action:
        this.trace.record(this.scheduler.nowMs, TraceKind.control, -1, Operation.control, 0, 0, 0, 0, '');
        (event.subject as SimulationAction)(this);
        return;
      case ControlKind.dropSession:
        this.server.dropSession(event.subject as Parameters<SimServer['dropSession']>[0]);
        return;
      case ControlKind.restart: {
        const client = event.subject as VirtualClient;
        client.restartPending = false;
        const main = this.mains.get(client)!;
        const runtime = new ClientRuntime(this, client, main);
        client.runtime = runtime;
        client.status = 'scheduled';
        this.trace.record(this.scheduler.nowMs, TraceKind.control, client.index, Operation.clientRestart, 0, runtime.incarnation, 0, 0, '');
        runtime.scheduleStart(this.scheduler.nowMs);
        return;
      }
      default:
        assert(false, () => `simulation: unknown control kind ${event.kind}`);
    }
  }

  private whenEmpty(): StopReason | Error {
    if (this.runMode === 'quiescent' || this.liveClients === 0) return this.runMode === 'quiescent' ? 'quiescent' : 'finished';
    const waiting = this.clientList
      .filter((client) => client.runtime !== null || client.restartPending)
      .map((client) => `  ${client.name}: waiting for ${client.runtime?.describeWait() ?? 'its restart'}`);
    return new Error(`deadlock at ${this.scheduler.nowMs} ms: no event is left but ${this.liveClients} client(s) have not finished:\n${waiting.join('\n')}`);
  }

  private checkAllSettled(): void {
    if (this.liveClients === 0 && this.runMode === 'finished' && this.scheduler.isRunning) this.scheduler.requestStop('finished');
  }

  private resolve(target: VirtualClient | string): VirtualClient {
    if (typeof target === 'string') return this.client(target);
    if (!(target instanceof VirtualClient) || this.clientList[target.index] !== target) {
      throw new TypeError(`expected a client of this simulation or its name, got ${describeValue(target)}`);
    }
    return target;
  }

  private assertNoClientRunning(operation: string): void {
    const running = this.scheduler.runningClient;
    if (running !== null) {
      throw new TypeError(`${operation}: cannot be called from a client's code (client "${running.name}" is running); schedule it with at()`);
    }
  }
}

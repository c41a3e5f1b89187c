/**
 * Virtual clients: each runs an async main function given the engine's `Ports`, made of its own
 * simulated file system (one SMB session to the simulated server) and its own virtual clock.
 *
 * A port call becomes a `Call`: it travels to the server (request latency), is applied there at
 * arrival, and its reply travels back (reply latency), unless it is lost because the client
 * crashed or its connection dropped in between. Only then does the client's promise settle; the
 * client's code then runs until its next port call. See scheduler.ts for the stepping.
 *
 * Client-side behaviour modelled here:
 * - The attribute cache (Linux cifs `actimeo`): `stat` answers from a per-client cache younger
 *   than `actimeoMs` without asking the server, so another client's change of size or mtime can
 *   stay invisible that long. The client's own changes to a path drop its cache entry.
 * - Bounded lock waits: a lock with `waitMs` is a blocking request; when the bound passes on the
 *   client's clock the client sends a cancel; a request the server cancels fails with
 *   LOCK_NOT_GRANTED (the port's contract). A grant that crosses the cancel wins.
 * - Notify waits: the server keeps the request; at the deadline the client stops waiting (the
 *   server forgets the request in the same instant, so no change is lost: it stays queued).
 * - Reconnect: after the server dropped its session, the next call opens a new session (paying
 *   `reconnectMs` extra) and reclaims the client's durable handles that still exist. Non-durable
 *   handles of the old session answer CLOSED_HANDLE; the call in flight when the session dropped
 *   fails with SHARE_UNAVAILABLE after `sessionLossNoticeMs`.
 */

import { NasqError, assert } from '../engine/errors.js';
import type {
  ByteRange,
  Clock,
  FileHandle,
  FileStat,
  FileSystem,
  LockOptions,
  OpenOptions,
  Ports,
  WaitResult,
  WatchFilter,
  WatchHandle,
  WriteFileOptions,
  UnlinkOptions,
  RenameOptions,
} from '../engine/ports.js';
import { isReadBuffer } from '../engine/ports.js';
import { type EventHandler, SimEvent } from './event-queue.js';
import type { LatencyModel } from './latency.js';
import { AdmissionStep, opensFile, touchesStorage } from './nas.js';
import { Call, CallFlag, CallPhase, type CallOwner, Operation, Status, operationNames, statusErrorCodes, statusNames } from './protocol.js';
import type { RandomStream } from './random.js';
import type { Scheduler } from './scheduler.js';
import {
  NotifyFilter,
  type ServerOpen,
  type ServerSession,
  type ServerWatch,
  type SessionListener,
  type SimServer,
  normalizePath,
} from './server.js';
import { TraceKind, type Trace, digestBytesSample, digestNumber, digestString, digestWord, emptyDigest } from './trace.js';

/** What a client's main function receives besides its ports. */
export interface ClientContext {
  readonly name: string;
  /** Position of the client in the simulation (stable across restarts). */
  readonly index: number;
  /** 1 for the first run, 2 after the first restart, ... */
  readonly incarnation: number;
  /** A seeded stream of the client's own, for its workload decisions. */
  readonly random: RandomStream;
}

/** A client program: runs engine code on the given ports. */
export type ClientMain = (ports: Ports, context: ClientContext) => unknown;

export type ClientStatus = 'scheduled' | 'running' | 'finished' | 'failed' | 'crashed';

export interface ClientOptions {
  /** Virtual time at which the client starts, ms. Default: now. */
  readonly startAtMs?: number;
  /** Attribute cache lifetime (Linux cifs actimeo), ms. Default: the simulation's (1000). 0 disables it. */
  readonly actimeoMs?: number;
  /** Offset of the client's clock from the server's, ms. Default 0. */
  readonly clockOffsetMs?: number;
}

/** What clients need from the simulation. */
export interface ClientEnvironment {
  readonly scheduler: Scheduler;
  readonly server: SimServer;
  readonly trace: Trace;
  readonly latency: LatencyModel;
  readonly epochMs: number;
  /** Time a call that never leaves the client takes (cache hits, argument errors), ms. */
  readonly localOperationMs: number;
  /** Extra time of the first call after a dropped session (reconnect), ms. */
  readonly reconnectMs: number;
  /** How long after its session dropped a client's call in flight fails, ms. */
  readonly sessionLossNoticeMs: number;
  /** Resolution of the clients' `clock.now()`, ms (1, as Date.now(); 0 for exact virtual time). */
  readonly clockResolutionMs: number;
  countCall(isFileSystem: boolean): void;
  clientSettled(runtime: ClientRuntime, failed: boolean, outcome: unknown): void;
}

/** A client of the simulation: its identity, status and clock, stable across crashes and restarts. */
export class VirtualClient {
  readonly name: string;
  readonly index: number;
  status: ClientStatus = 'scheduled';
  /** What the last incarnation's main returned. */
  result: unknown = undefined;
  /** What the last incarnation's main threw. */
  error: unknown = undefined;
  incarnation = 0;
  clockOffsetMs: number;
  actimeoMs: number;
  /** The running incarnation, or null before the start and after a crash or the end. */
  runtime: ClientRuntime | null = null;
  /** A restart is scheduled (the client counts as live until it happens). */
  restartPending = false;
  readonly latencyRandom: RandomStream;
  readonly workloadRandom: RandomStream;

  constructor(name: string, index: number, latencyRandom: RandomStream, workloadRandom: RandomStream, actimeoMs: number, clockOffsetMs: number) {
    this.name = name;
    this.index = index;
    this.latencyRandom = latencyRandom;
    this.workloadRandom = workloadRandom;
    this.actimeoMs = actimeoMs;
    this.clockOffsetMs = clockOffsetMs;
  }

  /**
   * The client's clock now (server epoch + virtual time + its offset), floored to the clock's
   * resolution (whole milliseconds by default, as Date.now()).
   */
  clockNowMs(environment: ClientEnvironment): number {
    const exact = environment.epochMs + this.clockOffsetMs + environment.scheduler.nowMs;
    const resolution = environment.clockResolutionMs;
    return resolution === 0 ? exact : Math.floor(exact / resolution) * resolution;
  }
}

const RuntimeEvent = {
  /** A request reaches the server. */
  arrival: 1,
  /** A reply (or a local completion) reaches the client. */
  reply: 2,
  /** A client-side bound passes (lock wait, notify deadline). */
  deadline: 3,
  /** The cancel of a waiting lock reaches the server. */
  cancelArrival: 4,
  /** The client's main starts. */
  start: 5,
} as const;

let capturedResolve: ((value: unknown) => void) | null = null;
let capturedReject: ((error: unknown) => void) | null = null;
function captureSettlers(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** A promise that never settles: the answer to calls made after the run failed. */
const neverSettles: Promise<never> = new Promise<never>(() => {});

function makeError(call: Call): NasqError {
  let status: Status = call.status;
  // A blocking lock whose bound passed: the port contract says LOCK_NOT_GRANTED.
  if (status === Status.cancelled && call.operation === Operation.lock) status = Status.lockNotGranted;
  const code = statusErrorCodes[status];
  assert(code !== undefined, () => `no error code for status ${statusNames[status] ?? status}`);
  const operation = operationNames[call.operation] ?? String(call.operation);
  const limit = Error.stackTraceLimit;
  // A simulated error's stack would only show the scheduler; skipping it keeps errors cheap.
  Error.stackTraceLimit = 0;
  try {
    return new NasqError(code, `${operation} ${call.path}: ${statusNames[status]}${call.injected ? ' (injected fault)' : ''}`, {
      injected: call.injected,
      details: { operation, path: call.path, status: statusNames[status], position: call.position, length: call.length },
    });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function invalidArgument(message: string): NasqError {
  return new NasqError('INVALID_ARGUMENT', message);
}

/** A file handle of the simulated file system. */
export class SimFileHandle implements FileHandle {
  readonly path: string;
  readonly normalizedPath: string;
  readonly open: ServerOpen;
  readonly runtime: ClientRuntime;
  /** Lock sequence numbers handed out on this handle (durable handles only). */
  lockSequences = 0;
  /**
   * The trace digest of (operation, path, open) of this handle's calls, by operation code: every
   * call on the handle names the same path and open, so it is hashed once per operation, not per
   * call. Bit `operation` of `digestedOperations` says whether the entry is filled.
   */
  private readonly identityDigests: number[] = [];
  private digestedOperations = 0;

  constructor(path: string, normalizedPath: string, open: ServerOpen, runtime: ClientRuntime) {
    this.path = path;
    this.normalizedPath = normalizedPath;
    this.open = open;
    this.runtime = runtime;
  }

  /** The digest of what a call of `operation` on this handle names (as `digestCall` would fold it). */
  identityDigest(operation: Operation): number {
    assert(operation < 32, 'identityDigest: handle operations have codes below 32');
    const bit = 1 << operation;
    if ((this.digestedOperations & bit) !== 0) return this.identityDigests[operation]!;
    while (this.identityDigests.length <= operation) this.identityDigests.push(0);
    const digest = digestIdentity(operation, this.normalizedPath, '', this.open);
    this.identityDigests[operation] = digest;
    this.digestedOperations |= bit;
    return digest;
  }
}

export class SimWatchHandle implements WatchHandle {
  readonly path: string;
  readonly watch: ServerWatch;
  readonly runtime: ClientRuntime;

  constructor(path: string, watch: ServerWatch, runtime: ClientRuntime) {
    this.path = path;
    this.watch = watch;
    this.runtime = runtime;
  }
}

interface CachedStat {
  readonly stat: FileStat;
  readonly fetchedAtMs: number;
}

/**
 * One incarnation of a client: its session, its ports and its in-flight call. A crash ends the
 * incarnation; a restart makes a new one.
 */
export class ClientRuntime implements EventHandler, CallOwner, SessionListener {
  readonly client: VirtualClient;
  readonly name: string;
  readonly ports: Ports;
  readonly incarnation: number;
  alive = true;
  session: ServerSession;
  private readonly environment: ClientEnvironment;
  private readonly main: ClientMain;
  private outstanding: Call | null = null;
  /** The last delivered call's record, for the next call (one call at a time: one spare suffices). */
  private spareCall: Call | null = null;
  private callEvent: SimEvent;
  private readonly deadlineEvent: SimEvent;
  private readonly cancelEvent: SimEvent;
  private readonly startEvent: SimEvent;
  private readonly statCache = new Map<string, CachedStat>();
  /** Earlier sessions of this incarnation (dropped; their durable opens may linger). */
  readonly retiredSessions: ServerSession[] = [];

  constructor(environment: ClientEnvironment, client: VirtualClient, main: ClientMain) {
    this.environment = environment;
    this.client = client;
    this.name = client.name;
    this.main = main;
    client.incarnation += 1;
    this.incarnation = client.incarnation;
    this.session = environment.server.connect(client.name, client.index);
    this.session.listener = this;
    this.callEvent = new SimEvent(this, RuntimeEvent.reply);
    this.deadlineEvent = new SimEvent(this, RuntimeEvent.deadline);
    this.cancelEvent = new SimEvent(this, RuntimeEvent.cancelArrival);
    this.startEvent = new SimEvent(this, RuntimeEvent.start);
    this.ports = { fs: new SimFileSystem(this), clock: new SimClock(this) };
  }

  /** Schedules the start of main at `timeMs`. */
  scheduleStart(timeMs: number): void {
    this.environment.scheduler.schedule(this.startEvent, timeMs);
  }

  /** What the client is waiting for, for deadlock reports. */
  describeWait(): string {
    const call = this.outstanding;
    if (call === null) return this.startEvent.scheduled ? 'its start' : 'nothing (running or settled)';
    const phase = ['', 'request in flight', 'waiting at the server', 'reply in flight', 'waiting locally', 'done'][call.phase];
    return `${operationNames[call.operation]} ${call.path} (${phase})`;
  }

  // ---------------------------------------------------------------------------------------------
  // Calls.

  /** Starts a port call: checks the turn and counts it. Returns null if the run has failed. */
  begin(operation: Operation, isFileSystem: boolean): Call | null {
    if (!this.environment.scheduler.checkClientTurn(this)) return null;
    assert(this.alive, () => `client "${this.name}" made a call after it crashed`);
    assert(this.outstanding === null, () => `client "${this.name}" made a second port call while one is outstanding`);
    this.environment.countCall(isFileSystem);
    const spare = this.spareCall;
    if (spare === null) return new Call(operation, this, this.session);
    this.spareCall = null;
    spare.reuse(operation, this.session);
    return spare;
  }

  /** Sends a call to the server. */
  send(call: Call): Promise<unknown> {
    const environment = this.environment;
    let extraMs = 0;
    if (!this.session.active) {
      // The previous session dropped: reconnect first (and reclaim durable handles at arrival).
      const previous = this.session;
      this.retiredSessions.push(previous);
      this.session = environment.server.connect(this.client.name, this.client.index);
      this.session.listener = this;
      call.reconnectFrom = previous;
      extraMs = environment.reconnectMs;
      this.statCache.clear();
    }
    call.session = this.session;
    call.digest = digestCall(call);
    call.phase = CallPhase.request;
    const event = this.freshCallEvent();
    event.kind = RuntimeEvent.arrival;
    event.subject = call;
    call.event = event;
    let departMs = environment.scheduler.nowMs + extraMs;
    const link = environment.latency.linkBytesPerMs;
    // The bytes a write carries go onto the shared link first (a slow link queues them).
    if (link !== undefined && call.data !== null && call.data.length > 0) departMs = environment.server.nas.transfer(true, departMs, call.data.length / link);
    environment.scheduler.schedule(event, departMs + environment.latency.requestDelayMs(call.operation, this.client.latencyRandom, call));
    if (call.deadlineClientMs !== Number.POSITIVE_INFINITY) this.scheduleDeadline(call);
    return this.suspend(call);
  }

  /** Completes a call on the client alone after `delayMs` (a cache hit, a bad argument, a sleep). */
  local(call: Call, status: Status, value: unknown, delayMs: number): Promise<unknown> {
    return this.localAt(call, status, value, this.environment.scheduler.nowMs + Math.max(0, delayMs));
  }

  /** Completes a call on the client alone at virtual time `timeMs` (or now, if that is past). */
  localAt(call: Call, status: Status, value: unknown, timeMs: number): Promise<unknown> {
    call.status = status;
    call.value = value;
    call.digest = digestCall(call);
    call.phase = CallPhase.local;
    const event = this.freshCallEvent();
    event.kind = RuntimeEvent.reply;
    event.subject = call;
    call.event = event;
    this.environment.scheduler.schedule(event, Math.max(this.environment.scheduler.nowMs, timeMs));
    return this.suspend(call);
  }

  /** Fails a call on the client with an operating error (bad argument) after the local delay. */
  reject(call: Call, error: NasqError): Promise<unknown> {
    call.value = error;
    return this.local(call, Status.invalidParameter, error, this.environment.localOperationMs);
  }

  private suspend(call: Call): Promise<unknown> {
    this.outstanding = call;
    const promise = new Promise<unknown>(captureSettlers);
    call.resolve = capturedResolve;
    call.reject = capturedReject;
    capturedResolve = null;
    capturedReject = null;
    this.environment.scheduler.endClientTurn(this);
    return promise;
  }

  /** The per-incarnation call event, or a fresh one if a stale copy is still scheduled. */
  private freshCallEvent(): SimEvent {
    if (this.callEvent.scheduled) this.callEvent = new SimEvent(this, RuntimeEvent.reply);
    return this.callEvent;
  }

  private scheduleDeadline(call: Call): void {
    const environment = this.environment;
    const virtualMs = this.virtualTimeOf(call.deadlineClientMs);
    this.deadlineEvent.subject = call;
    environment.scheduler.schedule(this.deadlineEvent, Math.max(environment.scheduler.nowMs, virtualMs));
  }

  /** The client's clock moved (skew hook): re-aim its timers at the new client time. */
  clockChanged(): void {
    const call = this.outstanding;
    if (call === null) return;
    const scheduler = this.environment.scheduler;
    if (this.deadlineEvent.scheduled) {
      scheduler.cancel(this.deadlineEvent);
      this.scheduleDeadline(call);
    }
    if (call.operation === Operation.sleepUntil && call.phase === CallPhase.local && call.event !== null && call.event.scheduled) {
      scheduler.cancel(call.event);
      scheduler.schedule(call.event, Math.max(scheduler.nowMs, this.virtualTimeOf(call.deadlineClientMs)));
    }
  }

  handleEvent(event: SimEvent): void {
    switch (event.kind) {
      case RuntimeEvent.arrival:
        this.arrive(event.subject as Call);
        return;
      case RuntimeEvent.reply: {
        // A paused client takes no reply; a reply on the wire waits out a partition or a stalled server.
        const call = event.subject as Call;
        const nas = this.environment.server.nas;
        if (nas.mayHold) {
          let heldUntil = nas.frozenUntil(this.client.index);
          if (call.phase === CallPhase.reply) heldUntil = Math.max(heldUntil, nas.replyHeldUntil(this.client.index));
          if (this.hold(event, heldUntil)) return;
        }
        this.deliver(call);
        return;
      }
      case RuntimeEvent.deadline:
        if (this.hold(event, this.environment.server.nas.frozenUntil(this.client.index))) return;
        this.deadlinePassed(event.subject as Call);
        return;
      case RuntimeEvent.cancelArrival: {
        if (this.hold(event, this.environment.server.nas.requestHeldUntil(this.client.index))) return;
        const call = event.subject as Call;
        const environment = this.environment;
        environment.trace.record(environment.scheduler.nowMs, TraceKind.apply, this.client.index, Operation.lockCancel, 0, call.digest, call.position, call.length, call.path);
        environment.server.cancelLock(call);
        return;
      }
      case RuntimeEvent.start:
        if (this.hold(event, this.environment.server.nas.frozenUntil(this.client.index))) return;
        this.start();
        return;
      default:
        assert(false, () => `client runtime: unknown event kind ${event.kind}`);
    }
  }

  /** Puts an event that cannot happen yet back in the queue until `untilMs`; false if it may happen now. */
  private hold(event: SimEvent, untilMs: number): boolean {
    const scheduler = this.environment.scheduler;
    if (untilMs <= scheduler.nowMs) return false;
    scheduler.schedule(event, untilMs);
    return true;
  }

  private arrive(call: Call): void {
    const environment = this.environment;
    const server = environment.server;
    const nas = server.nas;
    const event = call.event!;
    // On the way in: a partition or a stalled server (failover) holds the request on the wire.
    if (nas.mayHold && this.hold(event, nas.requestHeldUntil(this.client.index))) return;
    const nowMs = environment.scheduler.nowMs;
    if ((call.admission & AdmissionStep.oplockBreak) === 0 && opensFile(call.operation)) {
      // An open of a file another client holds waits for that client's oplock break.
      call.admission |= AdmissionStep.oplockBreak;
      if (this.hold(event, nowMs + server.oplockBreakDelayMs(call))) return;
    }
    const cost = environment.latency.server;
    if (cost === undefined) {
      call.serviceEndMs = nowMs;
    } else if ((call.admission & AdmissionStep.worker) === 0) {
      // Queue for a worker (first in, first out); the effect applies when the service starts.
      call.admission |= AdmissionStep.worker;
      let serviceMs = cost.serviceMs(call);
      const storage = touchesStorage(call.operation);
      if (storage) serviceMs *= nas.raid.storageFactor(nowMs);
      const startMs = nas.reserveWorker(cost.workers, nowMs, serviceMs, storage);
      call.serviceEndMs = startMs + serviceMs + (storage ? nas.storageStallMs(startMs) : 0);
      if (this.hold(event, startMs)) return;
    }
    if (call.reconnectFrom !== null) {
      // The first request of a new session: reclaim the durable opens still waiting in any
      // earlier session of this incarnation (a second drop may have come before the first reclaim).
      call.reconnectFrom = null;
      const session = call.session as ServerSession;
      if (session.active) {
        for (const retired of this.retiredSessions) {
          if (retired.opens.size > 0) server.reclaimDurable(retired, session);
        }
      }
    }
    const status = server.execute(call);
    environment.trace.record(
      environment.scheduler.nowMs,
      TraceKind.apply,
      this.client.index,
      call.operation,
      status,
      digestResult(call),
      call.position,
      call.length,
      call.path,
    );
    if (status === Status.pending) {
      call.phase = CallPhase.atServer;
      return;
    }
    this.sendReply(call);
  }

  /** The server completed a call it had left waiting. */
  serverCompleted(call: Call): void {
    const environment = this.environment;
    environment.trace.record(environment.scheduler.nowMs, TraceKind.apply, this.client.index, call.operation, call.status, digestResult(call), call.position, call.length, call.path);
    this.sendReply(call);
  }

  private sendReply(call: Call): void {
    const environment = this.environment;
    if (!this.alive || call !== this.outstanding) {
      // The client crashed (or gave up on this call): the effect happened, the reply is lost.
      call.phase = CallPhase.done;
      environment.trace.record(environment.scheduler.nowMs, TraceKind.lost, this.client.index, call.operation, call.status, call.digest, call.position, call.length, call.path);
      return;
    }
    call.phase = CallPhase.reply;
    const event = this.freshCallEvent();
    event.kind = RuntimeEvent.reply;
    event.subject = call;
    call.event = event;
    // The reply leaves when the server's work on the request is done.
    const nowMs = environment.scheduler.nowMs;
    let leaveMs = call.serviceEndMs > nowMs ? call.serviceEndMs : nowMs;
    const link = environment.latency.linkBytesPerMs;
    // The bytes a read returns go back over the shared link (a slow link queues them).
    if (link !== undefined && call.status === Status.success && call.value instanceof Uint8Array && call.value.length > 0) {
      leaveMs = environment.server.nas.transfer(false, leaveMs, call.value.length / link);
    }
    environment.scheduler.schedule(event, leaveMs + environment.latency.replyDelayMs(call.operation, this.client.latencyRandom, call));
  }

  private deliver(call: Call): void {
    const environment = this.environment;
    const scheduler = environment.scheduler;
    assert(this.alive && call === this.outstanding, () => `client "${this.name}": a reply for a call that is not outstanding`);
    const wasLocal = call.phase === CallPhase.local;
    call.phase = CallPhase.done;
    call.event = null;
    this.outstanding = null;
    if (this.deadlineEvent.scheduled) scheduler.cancel(this.deadlineEvent);
    if (this.cancelEvent.scheduled) scheduler.cancel(this.cancelEvent);
    environment.trace.record(scheduler.nowMs, wasLocal ? TraceKind.local : TraceKind.reply, this.client.index, call.operation, call.status, call.digest, call.position, call.length, call.path);
    const resolve = call.resolve!;
    const reject = call.reject!;
    call.resolve = null;
    call.reject = null;
    const status = call.status;
    if (status === Status.success) {
      resolve(this.clientValue(call, wasLocal));
    } else if (call.value instanceof NasqError) {
      reject(call.value);
    } else {
      reject(makeError(call));
    }
    // Nothing refers to a delivered call any more: its record serves the client's next call (what
    // it holds is dropped now, not kept until then).
    call.data = null;
    call.into = null;
    call.value = undefined;
    call.target = null;
    this.spareCall = call;
    scheduler.beginClientTurn(this);
  }

  /** Turns a server result into what the port returns (handles, cached attributes). */
  private clientValue(call: Call, wasLocal: boolean): unknown {
    switch (call.operation) {
      case Operation.open:
        return new SimFileHandle(call.targetPath, call.path, call.value as ServerOpen, this);
      case Operation.watch:
        return new SimWatchHandle(call.targetPath, call.value as ServerWatch, this);
      case Operation.stat:
        if (!wasLocal && this.client.actimeoMs > 0) {
          this.statCache.set(call.path, { stat: call.value as FileStat, fetchedAtMs: this.environment.scheduler.nowMs });
        }
        return call.value;
      default:
        return call.value;
    }
  }

  private deadlinePassed(call: Call): void {
    const environment = this.environment;
    if (call !== this.outstanding) return;
    if (call.phase === CallPhase.request) {
      // The request is still on the wire: the server will answer it as if it could not wait.
      call.deadlinePassed = true;
      return;
    }
    if (call.phase !== CallPhase.atServer) return; // the reply is already on its way
    if (call.operation === Operation.lock) {
      this.cancelEvent.subject = call;
      environment.scheduler.schedule(this.cancelEvent, environment.scheduler.nowMs + environment.latency.requestDelayMs(Operation.lockCancel, this.client.latencyRandom, call));
    } else {
      assert(call.operation === Operation.waitForChange, 'deadlinePassed: unexpected operation');
      environment.server.cancelNotify(call);
      call.status = Status.success;
      call.value = 'timeout' satisfies WaitResult;
      call.phase = CallPhase.local;
      this.deliver(call);
    }
  }

  /** The server dropped this client's session (not a crash: the client lives on). */
  sessionDropped(session: ServerSession): void {
    if (!this.alive || session !== this.session) return;
    const call = this.outstanding;
    if (call === null || call.session !== session || call.phase === CallPhase.local) return;
    const environment = this.environment;
    const scheduler = environment.scheduler;
    // The request or reply on the dead connection is gone; a request not yet applied never will be.
    if (call.event !== null && call.event.scheduled) scheduler.cancel(call.event);
    if (this.cancelEvent.scheduled) {
      // The bound had passed and the cancel was on its way: a replay must not wait again.
      scheduler.cancel(this.cancelEvent);
      call.deadlinePassed = true;
    }
    environment.trace.record(scheduler.nowMs, TraceKind.lost, this.client.index, call.operation, call.status, call.digest, call.position, call.length, call.path);
    if (call.lockSequence !== 0) {
      // A lock or unlock on a durable handle: the client reconnects and replays it with the same
      // lock sequence number; the server answers a replay of an applied request without
      // applying it twice (MS-SMB2 3.3.5.14). The client's bound keeps running.
      this.retiredSessions.push(session);
      this.session = environment.server.connect(this.client.name, this.client.index);
      this.session.listener = this;
      this.statCache.clear();
      call.reconnectFrom = session;
      call.session = this.session;
      call.phase = CallPhase.request;
      call.admission = 0;
      const replay = this.freshCallEvent();
      replay.kind = RuntimeEvent.arrival;
      replay.subject = call;
      call.event = replay;
      scheduler.schedule(
        replay,
        scheduler.nowMs + environment.sessionLossNoticeMs + environment.reconnectMs + environment.latency.requestDelayMs(call.operation, this.client.latencyRandom, call),
      );
      return;
    }
    if (this.deadlineEvent.scheduled) scheduler.cancel(this.deadlineEvent);
    call.status = Status.userSessionDeleted;
    call.injected = session.droppedByFault;
    call.value = undefined;
    call.phase = CallPhase.reply;
    const event = this.freshCallEvent();
    event.kind = RuntimeEvent.reply;
    event.subject = call;
    call.event = event;
    scheduler.schedule(event, scheduler.nowMs + environment.sessionLossNoticeMs);
  }

  /**
   * Ends this incarnation where it stands: its pending promise never settles. A request already
   * on the wire still reaches the server (its reply is lost); the caller drops the session.
   */
  kill(): void {
    if (!this.alive) return;
    this.alive = false;
    const scheduler = this.environment.scheduler;
    if (this.startEvent.scheduled) scheduler.cancel(this.startEvent);
    if (this.deadlineEvent.scheduled) scheduler.cancel(this.deadlineEvent);
    if (this.cancelEvent.scheduled) scheduler.cancel(this.cancelEvent);
    const call = this.outstanding;
    this.outstanding = null;
    if (call !== null) {
      call.resolve = null;
      call.reject = null;
      if (call.event !== null && call.event.scheduled && call.phase !== CallPhase.request) {
        // A reply (or a local wake-up) for a dead client: it never arrives.
        scheduler.cancel(call.event);
        this.environment.trace.record(scheduler.nowMs, TraceKind.lost, this.client.index, call.operation, call.status, call.digest, call.position, call.length, call.path);
      }
    }
  }

  private start(): void {
    const environment = this.environment;
    environment.trace.record(environment.scheduler.nowMs, TraceKind.control, this.client.index, Operation.clientStart, 0, this.incarnation, 0, 0, '');
    this.client.status = 'running';
    environment.scheduler.beginClientTurn(this);
    const context: ClientContext = {
      name: this.client.name,
      index: this.client.index,
      incarnation: this.incarnation,
      random: this.client.workloadRandom,
    };
    const main = this.main;
    const ports = this.ports;
    Promise.resolve()
      .then(() => main(ports, context))
      .then(
        (value) => this.settled(false, value),
        (error: unknown) => this.settled(true, error),
      );
  }

  private settled(failed: boolean, outcome: unknown): void {
    if (!this.alive) return;
    const environment = this.environment;
    const scheduler = environment.scheduler;
    if (scheduler.runningClient !== this) {
      if (scheduler.hasFailed) return;
      scheduler.fail(
        new Error(
          `client "${this.name}" settled outside its turn: it made a port call it did not await (${this.describeWait()})`,
        ),
      );
      return;
    }
    this.alive = false;
    environment.trace.record(scheduler.nowMs, TraceKind.control, this.client.index, failed ? Operation.clientFail : Operation.clientFinish, 0, this.incarnation, 0, 0, '');
    environment.clientSettled(this, failed, outcome);
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers for the ports.

  handleOf(call: Call, handle: FileHandle): SimFileHandle | null {
    if (!(handle instanceof SimFileHandle) || handle.runtime !== this) return null;
    call.target = handle.open;
    call.path = handle.normalizedPath;
    call.identityDigest = handle.identityDigest(call.operation);
    return handle;
  }

  invalidateCache(path: string): void {
    if (this.statCache.size > 0) this.statCache.delete(path);
  }

  cachedStat(path: string): FileStat | undefined {
    const actimeoMs = this.client.actimeoMs;
    if (actimeoMs <= 0) return undefined;
    const cached = this.statCache.get(path);
    if (cached === undefined) return undefined;
    if (this.environment.scheduler.nowMs - cached.fetchedAtMs >= actimeoMs) {
      this.statCache.delete(path);
      return undefined;
    }
    return cached.stat;
  }

  get localOperationMs(): number {
    return this.environment.localOperationMs;
  }

  clockNowMs(): number {
    return this.client.clockNowMs(this.environment);
  }

  /** The virtual time at which this client's clock reads `clientTimeMs`. */
  virtualTimeOf(clientTimeMs: number): number {
    return clientTimeMs - this.environment.epochMs - this.client.clockOffsetMs;
  }
}

/** The digest of what a call names: its operation, path, target path and target (an open or a watch). */
function digestIdentity(operation: number, path: string, targetPath: string, target: { readonly id: number } | null): number {
  let digest = digestWord(emptyDigest, operation);
  if (path.length > 0) digest = digestString(digest, path);
  if (targetPath.length > 0) digest = digestString(digest, targetPath);
  if (target !== null) digest = digestWord(digest, target.id);
  return digest;
}

function digestCall(call: Call): number {
  let digest = call.identityDigest >= 0 ? call.identityDigest : digestIdentity(call.operation, call.path, call.targetPath, call.target as { id: number } | null);
  digest = digestNumber(digest, call.position);
  digest = digestNumber(digest, call.length);
  digest = digestWord(digest, call.flags);
  if (call.data !== null) digest = digestBytesSample(digest, call.data);
  if (call.operation === Operation.setTimes) digest = digestNumber(digestNumber(digest, call.atimeMs), call.mtimeMs);
  return digest;
}

/** The call's digest with what the server answered folded in. */
function digestResult(call: Call): number {
  let digest = digestWord(call.digest, call.status);
  const value = call.value;
  if (value instanceof Uint8Array) {
    digest = digestBytesSample(digest, value);
  } else if (typeof value === 'string') {
    digest = digestString(digest, value);
  } else if (call.operation === Operation.stat && value !== undefined && value !== null) {
    const stat = value as FileStat;
    digest = digestNumber(digestNumber(digest, stat.size), stat.mtimeMs);
  } else if (Array.isArray(value)) {
    digest = digestWord(digest, value.length);
  } else if (value !== null && typeof value === 'object' && 'id' in value) {
    digest = digestWord(digest, (value as { id: number }).id);
  }
  return digest;
}

function validPath(call: Call, path: string, name: string): boolean {
  const normalized = normalizePath(path);
  if (normalized === null) {
    call.path = typeof path === 'string' ? path : '';
    call.value = invalidArgument(`${name}: invalid path ${JSON.stringify(path)}`);
    return false;
  }
  call.path = normalized;
  return true;
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The simulated file system of one client incarnation (one SMB session). */
export class SimFileSystem implements FileSystem {
  private readonly runtime: ClientRuntime;

  constructor(runtime: ClientRuntime) {
    this.runtime = runtime;
  }

  open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.open, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'open')) return this.fail(call);
    call.targetPath = path;
    if (options.create === true) call.flags |= CallFlag.create;
    if (options.exclusive === true) call.flags |= CallFlag.exclusive;
    if (options.durable === true) call.flags |= CallFlag.durable;
    if (options.create === true) runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<FileHandle>;
  }

  close(handle: FileHandle): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.close, true);
    if (call === null) return neverSettles;
    if (runtime.handleOf(call, handle) === null) return this.badHandle(call, 'close');
    runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<void>;
  }

  read(handle: FileHandle, position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.read, true);
    if (call === null) return neverSettles;
    if (runtime.handleOf(call, handle) === null) return this.badHandle(call, 'read');
    if (!isOffset(position) || !isOffset(length)) {
      call.value = invalidArgument(`read: position and length must be non-negative safe integers, got ${position} and ${length}`);
      return this.fail(call);
    }
    if (!isReadBuffer(into, length)) {
      call.value = invalidArgument(`read: into must be a Uint8Array of at least ${length} bytes, got ${into instanceof Uint8Array ? `${into.length} bytes` : typeof into}`);
      return this.fail(call);
    }
    call.position = position;
    call.length = length;
    // The server reads into it when the request arrives (the client waits for the reply meanwhile).
    if (into !== undefined) call.into = into;
    return runtime.send(call) as Promise<Uint8Array>;
  }

  write(handle: FileHandle, position: number, data: Uint8Array): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.write, true);
    if (call === null) return neverSettles;
    if (runtime.handleOf(call, handle) === null) return this.badHandle(call, 'write');
    if (!isOffset(position) || !(data instanceof Uint8Array)) {
      call.value = invalidArgument(`write: expected a non-negative safe integer position and a Uint8Array, got ${position} and ${typeof data}`);
      return this.fail(call);
    }
    call.position = position;
    call.length = data.length;
    // No copy: as with Node's fs, the buffer must not change until the call settles (the server
    // copies the bytes into the file when the request arrives).
    call.data = data;
    runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<void>;
  }

  sync(handle: FileHandle): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.sync, true);
    if (call === null) return neverSettles;
    if (runtime.handleOf(call, handle) === null) return this.badHandle(call, 'sync');
    return runtime.send(call) as Promise<void>;
  }

  truncate(handle: FileHandle, length: number): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.truncate, true);
    if (call === null) return neverSettles;
    if (runtime.handleOf(call, handle) === null) return this.badHandle(call, 'truncate');
    if (!isOffset(length)) {
      call.value = invalidArgument(`truncate: length must be a non-negative safe integer, got ${length}`);
      return this.fail(call);
    }
    call.length = length;
    runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<void>;
  }

  lock(handle: FileHandle, range: ByteRange, options: LockOptions = {}): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.lock, true);
    if (call === null) return neverSettles;
    if (runtime.handleOf(call, handle) === null) return this.badHandle(call, 'lock');
    const offset = range?.offset;
    const length = range?.length;
    // Offsets beyond 2^53 cannot be represented exactly; the 64-bit overflow check is the server's.
    if (typeof offset !== 'number' || typeof length !== 'number' || !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) {
      call.value = invalidArgument(`lock: offset and length must be non-negative integers, got ${offset} and ${length}`);
      return this.fail(call);
    }
    const mode = options.mode ?? 'exclusive';
    if (mode !== 'exclusive' && mode !== 'shared') {
      call.value = invalidArgument(`lock: mode must be 'exclusive' or 'shared', got ${JSON.stringify(mode)}`);
      return this.fail(call);
    }
    const waitMs = options.waitMs ?? 0;
    if (typeof waitMs !== 'number' || !(waitMs >= 0)) {
      call.value = invalidArgument(`lock: waitMs must be a number >= 0, got ${waitMs}`);
      return this.fail(call);
    }
    call.position = offset;
    call.length = length;
    this.sequence(call, handle as SimFileHandle);
    if (mode === 'shared') call.flags |= CallFlag.shared;
    if (waitMs > 0) {
      call.flags |= CallFlag.blocking;
      if (waitMs !== Number.POSITIVE_INFINITY) call.deadlineClientMs = runtime.clockNowMs() + waitMs;
    }
    return runtime.send(call) as Promise<void>;
  }

  unlock(handle: FileHandle, range: ByteRange): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.unlock, true);
    if (call === null) return neverSettles;
    if (runtime.handleOf(call, handle) === null) return this.badHandle(call, 'unlock');
    const offset = range?.offset;
    const length = range?.length;
    if (typeof offset !== 'number' || typeof length !== 'number' || !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) {
      call.value = invalidArgument(`unlock: offset and length must be non-negative integers, got ${offset} and ${length}`);
      return this.fail(call);
    }
    call.position = offset;
    call.length = length;
    this.sequence(call, handle as SimFileHandle);
    return runtime.send(call) as Promise<void>;
  }

  /** Durable handles number their lock requests so a replay after a reconnect applies once. */
  private sequence(call: Call, handle: SimFileHandle): void {
    if (!handle.open.durable) return;
    handle.lockSequences += 1;
    call.lockSequence = handle.lockSequences;
  }

  readFile(path: string): Promise<Uint8Array> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.readFile, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'readFile')) return this.fail(call);
    return runtime.send(call) as Promise<Uint8Array>;
  }

  writeFile(path: string, data: Uint8Array, options: WriteFileOptions = {}): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.writeFile, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'writeFile')) return this.fail(call);
    if (!(data instanceof Uint8Array)) {
      call.value = invalidArgument(`writeFile: data must be a Uint8Array, got ${typeof data}`);
      return this.fail(call);
    }
    call.data = data;
    call.length = data.length;
    if (options.exclusive === true) call.flags |= CallFlag.exclusive;
    if (options.sync === true) call.flags |= CallFlag.sync;
    runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<void>;
  }

  stat(path: string): Promise<FileStat> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.stat, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'stat')) return this.fail(call);
    const cached = runtime.cachedStat(call.path);
    if (cached !== undefined) return runtime.local(call, Status.success, cached, runtime.localOperationMs) as Promise<FileStat>;
    return runtime.send(call) as Promise<FileStat>;
  }

  setTimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.setTimes, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'setTimes')) return this.fail(call);
    if (typeof atimeMs !== 'number' || typeof mtimeMs !== 'number' || !Number.isFinite(atimeMs) || !Number.isFinite(mtimeMs)) {
      call.value = invalidArgument(`setTimes: times must be finite numbers of ms, got ${atimeMs} and ${mtimeMs}`);
      return this.fail(call);
    }
    call.atimeMs = atimeMs;
    call.mtimeMs = mtimeMs;
    runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<void>;
  }

  rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.rename, true);
    if (call === null) return neverSettles;
    if (!validPath(call, from, 'rename')) return this.fail(call);
    const target = normalizePath(to);
    if (target === null || target === '') {
      call.value = invalidArgument(`rename: invalid target path ${JSON.stringify(to)}`);
      return this.fail(call);
    }
    call.targetPath = target;
    // As for unlink: the flush costs its time; the NAS journals the namespace change anyway.
    if (options.sync === true) call.flags |= CallFlag.sync;
    runtime.invalidateCache(call.path);
    runtime.invalidateCache(target);
    return runtime.send(call) as Promise<void>;
  }

  unlink(path: string, options: UnlinkOptions = {}): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.unlink, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'unlink')) return this.fail(call);
    // The NAS journals namespace changes synchronously (server.ts powerLoss): the flush costs its
    // time (profiles.ts flushes) and changes nothing else.
    if (options.sync === true) call.flags |= CallFlag.sync;
    runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<void>;
  }

  readdir(path: string): Promise<string[]> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.readdir, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'readdir')) return this.fail(call);
    return runtime.send(call) as Promise<string[]>;
  }

  mkdir(path: string, options: { readonly recursive?: boolean } = {}): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.mkdir, true);
    if (call === null) return neverSettles;
    if (!validPath(call, path, 'mkdir')) return this.fail(call);
    if (options.recursive === true) call.flags |= CallFlag.recursive;
    runtime.invalidateCache(call.path);
    return runtime.send(call) as Promise<void>;
  }

  watch(directory: string, filter: WatchFilter): Promise<WatchHandle> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.watch, true);
    if (call === null) return neverSettles;
    if (!validPath(call, directory, 'watch')) return this.fail(call);
    let bits = 0;
    if (filter?.fileName === true) bits |= NotifyFilter.fileName;
    if (filter?.attributes === true) bits |= NotifyFilter.attributes;
    if (filter?.size === true) bits |= NotifyFilter.size;
    if (filter?.lastWrite === true) bits |= NotifyFilter.lastWrite;
    if (bits === 0) {
      call.value = invalidArgument('watch: the filter selects no change (set fileName, attributes, size or lastWrite)');
      return this.fail(call);
    }
    call.flags = bits;
    call.targetPath = directory;
    return runtime.send(call) as Promise<WatchHandle>;
  }

  unwatch(watch: WatchHandle): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.unwatch, true);
    if (call === null) return neverSettles;
    if (!(watch instanceof SimWatchHandle) || watch.runtime !== runtime) return this.badHandle(call, 'unwatch');
    call.target = watch.watch;
    call.path = watch.watch.node.path;
    return runtime.send(call) as Promise<void>;
  }

  private fail<T>(call: Call): Promise<T> {
    return this.runtime.reject(call, call.value as NasqError) as Promise<T>;
  }

  private badHandle<T>(call: Call, operation: string): Promise<T> {
    call.value = invalidArgument(`${operation}: not a handle of this client's simulated file system`);
    return this.fail(call);
  }
}

/** The virtual clock of one client incarnation. */
export class SimClock implements Clock {
  private readonly runtime: ClientRuntime;

  constructor(runtime: ClientRuntime) {
    this.runtime = runtime;
  }

  now(): number {
    return this.runtime.clockNowMs();
  }

  sleepUntil(timeMs: number): Promise<void> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.sleepUntil, false);
    if (call === null) return neverSettles;
    if (typeof timeMs !== 'number' || Number.isNaN(timeMs)) {
      return runtime.reject(call, invalidArgument(`sleepUntil: expected a time in ms, got ${String(timeMs)}`)) as Promise<void>;
    }
    call.deadlineClientMs = timeMs;
    call.position = timeMs;
    if (timeMs === Number.POSITIVE_INFINITY) {
      return runtime.reject(call, invalidArgument('sleepUntil: cannot sleep forever')) as Promise<void>;
    }
    return runtime.localAt(call, Status.success, undefined, runtime.virtualTimeOf(timeMs)) as Promise<void>;
  }

  waitForChange(watch: WatchHandle, untilMs: number): Promise<WaitResult> {
    const runtime = this.runtime;
    const call = runtime.begin(Operation.waitForChange, false);
    if (call === null) return neverSettles;
    if (!(watch instanceof SimWatchHandle) || watch.runtime !== runtime) {
      return runtime.reject(call, invalidArgument("waitForChange: not a watch of this client's simulated file system")) as Promise<WaitResult>;
    }
    if (typeof untilMs !== 'number' || Number.isNaN(untilMs)) {
      return runtime.reject(call, invalidArgument(`waitForChange: expected a time in ms, got ${String(untilMs)}`)) as Promise<WaitResult>;
    }
    call.target = watch.watch;
    call.path = watch.watch.node.path;
    call.deadlineClientMs = untilMs;
    call.position = untilMs === Number.POSITIVE_INFINITY ? 0 : untilMs;
    if (untilMs <= runtime.clockNowMs()) call.deadlinePassed = true;
    return runtime.send(call) as Promise<WaitResult>;
  }
}

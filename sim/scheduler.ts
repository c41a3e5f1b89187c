/**
 * The deterministic scheduler: virtual time, the event queue, and the rule that exactly one
 * client's code runs at a time, from one port call to its next.
 *
 * How clients are stepped without a macrotask per event: the scheduler `pump`s events in time
 * order. An event that answers a client (a reply, a timer) resolves that client's pending promise
 * and marks the client as running; the pump then returns. The client's continuation runs on
 * microtasks until it makes its next port call, which schedules that call's events and calls
 * `endClientTurn`, which pumps again, synchronously, inside the port call. When a client's main
 * function settles, the simulation does the same. So a whole run is one long chain of microtasks,
 * broken only every `eventsPerHostTurn` events to let the host's event loop breathe.
 *
 * Stall detection: the host callback armed at the start of each chunk fires only once every
 * microtask has drained. If a client is still marked as running then, it is waiting on something
 * that is not a port call, and the run fails with an error naming it.
 *
 * Tiebreak: events of the same virtual time run in the order of a key fixed when scheduled: a
 * sequence number, by default prefixed by a number from the scheduler's own seeded stream, so
 * that different seeds interleave simultaneous events differently and one seed always the same.
 */

import type { Host } from '../adapters/host.js';
import { AssertionError, assert } from '../engine/errors.js';
import { EventQueue, type SimEvent } from './event-queue.js';
import type { RandomStream } from './random.js';

/** A client as the scheduler knows it: something with a name, for error messages. */
export interface SchedulableClient {
  readonly name: string;
}

export type TieBreak = 'seeded' | 'sequence';

export interface SchedulerOptions {
  /** The stream that draws tiebreak keys (used when `tieBreak` is 'seeded'). */
  readonly random: RandomStream;
  /** How simultaneous events are ordered. Default 'seeded'. */
  readonly tieBreak?: TieBreak;
  /** The host hook (yields and stall detection); null runs without either. Required. */
  readonly host: Host | null;
  /** Events between two yields to the host. Default 4096. */
  readonly eventsPerHostTurn?: number;
}

/** Why a run stopped. */
export type StopReason = 'finished' | 'time-limit' | 'quiescent' | 'event-limit';

export interface RunBounds {
  /** Stop before the first event later than this virtual time (the clock then reads it). */
  readonly untilMs: number;
  /** Stop after this many events in total. */
  readonly maxEvents: number;
  /**
   * Called when no event is left: return a stop reason to end the run normally, or an Error to
   * fail it (a deadlock).
   */
  readonly whenEmpty: () => StopReason | Error;
}

const State = {
  /** No run in progress. */
  idle: 0,
  /** Inside `pump`, dispatching events. */
  pumping: 1,
  /** A client's code is running (between its resume and its next port call). */
  awaitingClient: 2,
  /** Gave the host a turn; resumes from the host callback. */
  yielded: 3,
  /** The run failed; nothing runs any more. */
  failed: 4,
} as const;
type State = (typeof State)[keyof typeof State];

const sequenceBits = 2 ** 21;

const settled: Promise<void> = Promise.resolve();

export class Scheduler {
  /** Virtual time, in milliseconds since the start of the run. */
  nowMs = 0;
  /** Events dispatched so far. */
  events = 0;
  /** Wall-clock milliseconds spent inside runs. */
  wallMs = 0;

  private readonly queue = new EventQueue();
  private readonly random: RandomStream;
  private readonly seededTieBreak: boolean;
  private readonly host: Host | null;
  private readonly eventsPerHostTurn: number;
  private sequence = 0;
  private state: State = State.idle;
  private running: SchedulableClient | null = null;
  private hostTurnArmed = false;
  private turnEvents = 0;
  private stopReason: StopReason | null = null;
  private bounds: RunBounds | null = null;
  private runResolve: ((reason: StopReason) => void) | null = null;
  private runReject: ((error: unknown) => void) | null = null;
  private runWallStartMs = 0;
  private failure: unknown = undefined;
  private readonly onHostTurnBound = (): void => this.onHostTurn();
  private readonly pumpBound = (): void => {
    if (this.state === State.pumping) this.pump();
  };

  constructor(options: SchedulerOptions) {
    const tieBreak = options.tieBreak ?? 'seeded';
    if (tieBreak !== 'seeded' && tieBreak !== 'sequence') {
      throw new TypeError(`tieBreak: expected 'seeded' or 'sequence', got ${JSON.stringify(tieBreak)}`);
    }
    const eventsPerHostTurn = options.eventsPerHostTurn ?? 4096;
    if (!Number.isSafeInteger(eventsPerHostTurn) || eventsPerHostTurn < 1) {
      throw new TypeError(`eventsPerHostTurn: expected a positive integer, got ${String(eventsPerHostTurn)}`);
    }
    this.random = options.random;
    this.seededTieBreak = tieBreak === 'seeded';
    this.host = options.host;
    this.eventsPerHostTurn = eventsPerHostTurn;
  }

  /** Events waiting in the queue. */
  get pendingEvents(): number {
    return this.queue.size;
  }

  /** The client whose code is running now, if any. */
  get runningClient(): SchedulableClient | null {
    return this.running;
  }

  get isRunning(): boolean {
    return this.state !== State.idle && this.state !== State.failed;
  }

  get hasFailed(): boolean {
    return this.state === State.failed;
  }

  /** Schedules `event` at virtual time `timeMs` (not in the past). */
  schedule(event: SimEvent, timeMs: number): void {
    assert(timeMs >= this.nowMs, () => `schedule: ${timeMs} is before now (${this.nowMs})`);
    assert(Number.isFinite(timeMs), () => `schedule: time must be finite, got ${timeMs}`);
    event.timeMs = timeMs;
    const sequence = this.sequence;
    this.sequence = sequence + 1;
    event.order = this.seededTieBreak ? this.random.uint32() * sequenceBits + (sequence % sequenceBits) : sequence;
    this.queue.push(event);
  }

  /** Removes a scheduled event; false if it was not scheduled. */
  cancel(event: SimEvent): boolean {
    return this.queue.remove(event);
  }

  /** Visits every scheduled event (diagnostics). */
  forEachPending(visit: (event: SimEvent) => void): void {
    this.queue.forEach(visit);
  }

  /**
   * Runs events until a bound is reached. Resolves with the reason; rejects if the run fails (a
   * broken invariant, a stalled or misbehaving client, a deadlock).
   */
  run(bounds: RunBounds): Promise<StopReason> {
    if (this.state === State.failed) return Promise.reject(this.failure);
    assert(this.state === State.idle, 'run: a run is already in progress');
    this.bounds = bounds;
    this.stopReason = null;
    this.turnEvents = 0;
    this.state = State.pumping;
    this.runWallStartMs = this.host === null ? 0 : this.host.wallClockMs();
    const promise = new Promise<StopReason>((resolve, reject) => {
      this.runResolve = resolve;
      this.runReject = reject;
    });
    this.armHostTurn();
    this.pump();
    return promise;
  }

  /** Asks the run to stop at the next event boundary (all clients are done). */
  requestStop(reason: StopReason): void {
    if (this.stopReason === null) this.stopReason = reason;
  }

  /** Withdraws a stop request (a client was added or restarted after the last one settled). */
  withdrawStop(): void {
    this.stopReason = null;
  }

  /** An event handler resolved `client`'s pending call: the client runs next. */
  beginClientTurn(client: SchedulableClient): void {
    assert(this.state === State.pumping, () => `beginClientTurn(${client.name}): not pumping (state ${this.state})`);
    this.state = State.awaitingClient;
    this.running = client;
  }

  /**
   * A port call of `client` begins. Returns false if the run has failed (the caller then returns a
   * promise that never settles). A call outside the client's turn breaks the one-at-a-time rule: it
   * fails the run and throws.
   */
  checkClientTurn(client: SchedulableClient): boolean {
    if (this.state === State.failed) return false;
    if (this.state !== State.awaitingClient || this.running !== client) {
      const error = new AssertionError(
        this.running === client
          ? `client "${client.name}" made a port call while the scheduler was not waiting for it (state ${this.state})`
          : this.running === null
            ? `client "${client.name}" made a port call outside its turn (no client is running; a second concurrent call, or a call from a timer?)`
            : `client "${client.name}" made a port call during the turn of "${this.running.name}" (two concurrent port calls?)`,
      );
      this.fail(error);
      throw error;
    }
    return true;
  }

  /**
   * `client` made its next port call (its events are scheduled) or settled: pump on, one microtask
   * later. Deferring by a microtask (never a macrotask) lets the port call return to the client
   * and the client reach its `await` before anything else happens: its synchronous remainder
   * still sees the call's virtual time, and a second call it makes meanwhile (an unawaited call,
   * a Promise.all) is caught as a breach of the one-call-at-a-time rule.
   */
  endClientTurn(client: SchedulableClient): void {
    assert(this.running === client, () => `endClientTurn(${client.name}): it is not running`);
    assert(this.state === State.awaitingClient, 'endClientTurn: not awaiting a client');
    this.running = null;
    this.state = State.pumping;
    // A reaction on a settled promise: a native microtask, about 3x cheaper than queueMicrotask
    // (which Node wraps in JavaScript for async hooks).
    settled.then(this.pumpBound);
  }

  /** Fails the run with `error` (first failure wins). */
  fail(error: unknown): void {
    if (this.state === State.failed) return;
    const wasRunning = this.state !== State.idle;
    this.state = State.failed;
    this.failure = error;
    this.running = null;
    this.accountWall();
    const reject = this.runReject;
    this.runResolve = null;
    this.runReject = null;
    if (wasRunning && reject !== null) reject(error);
  }

  private pump(): void {
    const bounds = this.bounds;
    assert(bounds !== null, 'pump: no run');
    const queue = this.queue;
    try {
      for (;;) {
        if (this.stopReason !== null) {
          this.finish(this.stopReason);
          return;
        }
        const next = queue.peek();
        if (next === undefined) {
          const outcome = bounds.whenEmpty();
          if (outcome instanceof Error) {
            this.fail(outcome);
          } else {
            if (Number.isFinite(bounds.untilMs) && bounds.untilMs > this.nowMs) this.nowMs = bounds.untilMs;
            this.finish(outcome);
          }
          return;
        }
        if (next.timeMs > bounds.untilMs) {
          if (bounds.untilMs > this.nowMs) this.nowMs = bounds.untilMs;
          this.finish('time-limit');
          return;
        }
        if (this.events >= bounds.maxEvents) {
          this.finish('event-limit');
          return;
        }
        if (this.turnEvents >= this.eventsPerHostTurn && this.host !== null) {
          this.state = State.yielded;
          this.armHostTurn();
          return;
        }
        queue.pop();
        this.nowMs = next.timeMs;
        this.events += 1;
        this.turnEvents += 1;
        next.handler.handleEvent(next);
        if (this.state !== State.pumping) return;
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private finish(reason: StopReason): void {
    assert(this.state === State.pumping, 'finish: not pumping');
    this.state = State.idle;
    this.bounds = null;
    this.stopReason = null;
    this.accountWall();
    const resolve = this.runResolve;
    this.runResolve = null;
    this.runReject = null;
    resolve?.(reason);
  }

  private accountWall(): void {
    if (this.host !== null && this.runWallStartMs !== 0) {
      this.wallMs += this.host.wallClockMs() - this.runWallStartMs;
    }
    this.runWallStartMs = 0;
  }

  private armHostTurn(): void {
    if (this.host === null || this.hostTurnArmed) return;
    this.hostTurnArmed = true;
    this.host.nextTurn(this.onHostTurnBound);
  }

  private onHostTurn(): void {
    this.hostTurnArmed = false;
    if (this.state === State.yielded) {
      this.state = State.pumping;
      this.turnEvents = 0;
      this.armHostTurn();
      this.pump();
    } else if (this.state === State.awaitingClient) {
      const name = this.running?.name ?? '?';
      this.fail(
        new Error(
          `client "${name}" is waiting on something that is not a port call (a timer, real I/O, or a promise no port call settles): every microtask has drained and it made no port call. The simulator can only schedule port calls.`,
        ),
      );
    } else if (this.state === State.pumping) {
      // Cannot happen: pumping is synchronous. Re-arm defensively.
      this.armHostTurn();
    }
    // idle or failed: the run is over; nothing to do.
  }
}

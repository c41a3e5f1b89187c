/**
 * The engine alone: how many port calls per wall second the engine's own code makes when every
 * answer costs nothing. Bounds what any simulator running this engine can reach (`sim.fsOpsPerSec`
 * counts the same calls, with the simulator's and the simulated share's work added).
 *
 * How: one plain run on the simulated share (64 clients, sim/plain-run.ts) is recorded: every
 * answer a client's port call got (value or error, and every reading of its clock), in the order
 * the simulator delivered them. A replay then runs the same 64 client programs (the same engine
 * code) on ports that hold no files at all: a call only waits for its turn in the recorded order
 * and gets the recorded answer (bytes copied, as any file system copies them). One client runs
 * at a time, as in the simulator, so every client makes exactly the calls it made in the
 * recording; a call that differs from the recorded one (another method) stops the replay with an
 * error, and the run must end with every message acked once.
 *
 * The same recording keeps each client's file-system calls with their arguments, which the
 * benchmark's ceiling (bench/sim.ts) replays on a share that does nothing.
 */

import { assert } from '../engine/errors.js';
import type { Clock, FileHandle, FileSystem, Ports, WatchHandle } from '../engine/ports.js';
import { plainWorkload, runPlainWorkload } from '../sim/plain-run.js';

interface Answer {
  readonly client: number;
  readonly method: string;
  readonly ok: boolean;
  /** The value (bytes copied when recorded), or the error thrown. */
  readonly value: unknown;
}

export type Method = keyof FileSystem;

/** A file-system call as a client made it. */
export interface RecordedCall {
  readonly method: Method;
  /** Arguments; a handle argument is `{ handle: n }`, the n-th handle the client opened. */
  readonly args: unknown[];
}

export interface HandleReference {
  readonly handle: number;
}

/** The methods whose result is a handle later calls name. */
export const handleMethods = new Set<Method>(['open', 'watch']);

export interface RecordedRun {
  readonly clients: number;
  readonly messages: number;
  readonly receiveWaitMs: number;
  /** Every answer of every client's port calls, in the order they were delivered. */
  readonly answers: readonly Answer[];
  /** Each client's clock readings (`now()`), in its order. */
  readonly clockReadings: readonly (readonly number[])[];
  /** Each client's file-system calls, in its order. */
  readonly calls: readonly (readonly RecordedCall[])[];
}

const receiveWaitMs = 1_000;

/** A copy of an answer's bytes: the engine may reuse a buffer it was given. */
function keep(value: unknown): unknown {
  return value instanceof Uint8Array ? value.slice() : value;
}

/** Runs a plain workload on the simulated share and records every call its clients made and every answer they got. */
export async function recordEngineRun(seed: number, clients: number, messages: number): Promise<RecordedRun> {
  const answers: Answer[] = [];
  const clockReadings: number[][] = Array.from({ length: clients }, () => []);
  const calls: RecordedCall[][] = Array.from({ length: clients }, () => []);
  const wrapPorts = (ports: Ports, client: number): Ports => {
    const handles = new Map<unknown, number>();
    const fs = new Proxy(ports.fs, {
      get(target, property) {
        const method = Reflect.get(target, property) as unknown;
        if (typeof method !== 'function') return method;
        const name = property as Method;
        return async (...args: unknown[]) => {
          calls[client]!.push({
            method: name,
            args: args.map((argument) => {
              const handle = typeof argument === 'object' && argument !== null ? handles.get(argument) : undefined;
              return handle === undefined ? argument : ({ handle } satisfies HandleReference);
            }),
          });
          try {
            const value = await (method as (...parameters: unknown[]) => Promise<unknown>).apply(target, args);
            if (handleMethods.has(name)) handles.set(value, handles.size);
            answers.push({ client, method: name, ok: true, value: keep(value) });
            return value;
          } catch (error) {
            answers.push({ client, method: name, ok: false, value: error });
            throw error;
          }
        };
      },
    });
    const inner = ports.clock;
    const clock: Clock = {
      now: () => {
        const now = inner.now();
        clockReadings[client]!.push(now);
        return now;
      },
      sleepUntil: async (timeMs) => {
        await inner.sleepUntil(timeMs);
        answers.push({ client, method: 'sleepUntil', ok: true, value: undefined });
      },
      waitForChange: async (watch, untilMs) => {
        const value = await inner.waitForChange(watch, untilMs);
        answers.push({ client, method: 'waitForChange', ok: true, value });
        return value;
      },
    };
    return { fs, clock };
  };
  const result = await runPlainWorkload({ seed, clients, messages, receiveWaitMs, wrapPorts });
  assert(result.missing === 0 && result.duplicates === 0, 'engine alone: the recorded run lost or repeated a message');
  return { clients, messages, receiveWaitMs, answers, clockReadings, calls };
}

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly into: Uint8Array | undefined;
}

/**
 * Replays the recorded answers to the same client programs; returns the port calls made (those
 * of `sim.fsOpsPerSec`: file-system calls, not clock waits) and the wall time.
 */
export async function replayAnswers(recorded: RecordedRun): Promise<{ fsOps: number; wallMs: number }> {
  const { answers, clients } = recorded;
  const pending: (Pending | null)[] = new Array<Pending | null>(clients).fill(null);
  const readings = recorded.clockReadings.map(() => 0);
  let next = 0;
  let fsOps = 0;
  let failure: Error | null = null;
  // A client was answered and runs until its next call (or its end): nothing else is delivered
  // meanwhile, so two clients' code never interleaves (as in the simulator).
  let clientRunning = false;
  const settled = Promise.resolve();

  // Delivers the next recorded answer if its client is waiting for it (it is, unless the
  // replay diverged: then the run stops with what was expected and what was found).
  const deliver = (): void => {
    if (clientRunning || next >= answers.length || failure !== null) return;
    const answer = answers[next]!;
    const waiting = pending[answer.client];
    if (waiting === null || waiting === undefined) return;
    if (waiting.method !== answer.method) {
      failure = new Error(`engine alone: client ${answer.client}'s answer ${next} was to ${answer.method}, the replay called ${waiting.method}`);
      waiting.reject(failure);
      return;
    }
    next += 1;
    pending[answer.client] = null;
    clientRunning = true;
    if (!answer.ok) {
      waiting.reject(answer.value);
      return;
    }
    const value = answer.value;
    if (value instanceof Uint8Array) {
      // Bytes are copied out, into the caller's buffer when it gave one (FileSystem.read's `into`).
      const into = waiting.into;
      if (into !== undefined && into.length >= value.length) {
        into.set(value);
        waiting.resolve(into.subarray(0, value.length));
      } else {
        waiting.resolve(value.slice());
      }
      return;
    }
    waiting.resolve(value);
  };

  const call = (client: number, method: string, into?: Uint8Array): Promise<unknown> => {
    assert(pending[client] === null, () => `engine alone: client ${client} made a second call while one is outstanding`);
    const promise = new Promise((resolve, reject) => {
      pending[client] = { method, resolve, reject, into };
    });
    clientRunning = false;
    void settled.then(deliver);
    return promise;
  };

  const portsOf = (client: number): Ports => {
    const fileCall = (method: string) => (): Promise<unknown> => {
      fsOps += 1;
      return call(client, method);
    };
    const fs = {
      open: fileCall('open'),
      close: fileCall('close'),
      read: (_handle: FileHandle, _position: number, _length: number, into?: Uint8Array) => {
        fsOps += 1;
        return call(client, 'read', into);
      },
      write: fileCall('write'),
      sync: fileCall('sync'),
      truncate: fileCall('truncate'),
      lock: fileCall('lock'),
      unlock: fileCall('unlock'),
      readFile: fileCall('readFile'),
      writeFile: fileCall('writeFile'),
      stat: fileCall('stat'),
      setTimes: fileCall('setTimes'),
      rename: fileCall('rename'),
      unlink: fileCall('unlink'),
      readdir: fileCall('readdir'),
      mkdir: fileCall('mkdir'),
      watch: fileCall('watch'),
      unwatch: fileCall('unwatch'),
    } as unknown as FileSystem;
    const clock: Clock = {
      now: () => {
        const reading = recorded.clockReadings[client]![readings[client]!];
        assert(reading !== undefined, () => `engine alone: client ${client} read its clock more often than recorded`);
        readings[client]! += 1;
        return reading;
      },
      sleepUntil: () => call(client, 'sleepUntil') as Promise<void>,
      waitForChange: (_watch: WatchHandle) => call(client, 'waitForChange') as Promise<never>,
    };
    return { fs, clock };
  };

  const workload = plainWorkload({ clients, messages: recorded.messages, receiveWaitMs: recorded.receiveWaitMs });
  const started = performance.now();
  const runs: Promise<void>[] = [];
  for (let client = 0; client < clients; client += 1) {
    // A client that ends makes no further call: the next answer is delivered from here.
    runs.push(
      workload.main(client, portsOf(client)).finally(() => {
        clientRunning = false;
        void settled.then(deliver);
      }),
    );
  }
  // The replay is one chain of microtasks: a macrotask runs only once it has ended, or stalled
  // (a client waits for an answer the recording does not have next).
  let done = false;
  const finished = Promise.all(runs).finally(() => (done = true));
  const stalled = new Promise<never>((_, reject) => {
    setImmediate(() => {
      if (!done) reject(new Error(`engine alone: the replay stalled after ${next} of ${answers.length} answers (a client waits for an answer the recording does not have)`));
    });
  });
  try {
    await Promise.race([finished, stalled]);
  } catch (error) {
    // A divergence is the cause of whatever followed it (the engine may have caught it and gone on).
    throw failure ?? error;
  }
  const wallMs = performance.now() - started;
  if (failure !== null) throw failure;
  assert(next === answers.length, () => `engine alone: the replay ended after ${next} of ${answers.length} answers`);
  const tally = workload.tally();
  assert(tally.missing === 0 && tally.duplicates === 0, () => `engine alone: the replay had ${tally.missing} missing and ${tally.duplicates} duplicate acks`);
  return { fsOps, wallMs };
}

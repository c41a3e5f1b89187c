/**
 * How long simulated operations take. A model gives two network delays per request: client to
 * server (the request's trip) and server to client (the reply's trip), drawn from the calling
 * client's own latency stream, so one client's draws never shift another's.
 *
 * Where the server's work goes depends on the model:
 * - Without `server` (the fixed model here): the server applies a request the instant it arrives
 *   and the reply delay includes the service time; the server never queues.
 * - With `server` (the NAS profiles of profiles.ts): requests queue first in, first out for one of
 *   `server.workers` workers; a request's effect applies when its service starts and its reply
 *   leaves when its service ends (service time from `server.serviceMs`, slowed by RAID faults).
 *
 * A model may draw per-call state when the request leaves (`call.jitter`, a heavy-tailed factor
 * the profiles apply to the whole call) and read it back for the service and the reply.
 */

import { type Call, Operation } from './protocol.js';
import { type RandomStream, describeValue } from './random.js';

export interface LatencyModel {
  /** Milliseconds from the client sending `operation` to the request reaching the server. */
  requestDelayMs(operation: Operation, random: RandomStream, call?: Call): number;
  /** Milliseconds from the server finishing `operation` to the client receiving the reply. */
  replyDelayMs(operation: Operation, random: RandomStream, call?: Call): number;
  /** The server's cost model; absent: no queueing, service time inside the reply delay. */
  readonly server?: ServerCostModel;
  /**
   * Throughput of the link between the clients and the share, bytes per ms, one way (shared by
   * every client, one transfer at a time each way: NasState.transfer). Absent: payloads cost no
   * time. Only payloads count: the bytes a write carries and a read returns.
   */
  readonly linkBytesPerMs?: number;
}

/** How the server spends time on requests (a model with queueing). */
export interface ServerCostModel {
  /** Requests worked on at once; more wait in line, first in, first out. */
  readonly workers: number;
  /** Service time of a request at a healthy server, ms (storage slowdowns come on top). */
  serviceMs(call: Call): number;
}

/** Names of the server operations a latency model prices. */
export type ServerOperationName =
  | 'open'
  | 'close'
  | 'read'
  | 'write'
  | 'sync'
  | 'truncate'
  | 'lock'
  | 'unlock'
  | 'readFile'
  | 'writeFile'
  | 'stat'
  | 'setTimes'
  | 'rename'
  | 'unlink'
  | 'readdir'
  | 'mkdir'
  | 'watch'
  | 'unwatch'
  | 'waitForChange'
  | 'lockCancel';

/**
 * Default server service times in ms, inside the ranges of cifs-nas-model.md section 4 for a LAN
 * NAS with NVRAM (round trips come on top): create/open 0.3 - 2 ms, lock/unlock 0.2 - 1 ms,
 * cached write 0.2 - 1 ms.
 */
export const defaultServiceMs: Readonly<Record<ServerOperationName, number>> = {
  open: 0.3,
  close: 0.1,
  read: 0.05,
  write: 0.1,
  sync: 0.3,
  truncate: 0.1,
  lock: 0.05,
  unlock: 0.05,
  readFile: 0.4,
  writeFile: 0.5,
  stat: 0.05,
  setTimes: 0.1,
  rename: 0.2,
  unlink: 0.2,
  readdir: 0.2,
  mkdir: 0.2,
  watch: 0.2,
  unwatch: 0.1,
  waitForChange: 0,
  lockCancel: 0,
};

export interface FixedLatencyOptions {
  /** One-way network delay in ms (each direction). Default 0.1: a 0.2 ms LAN round trip. */
  readonly oneWayMs?: number;
  /** Each one-way delay gets a uniform extra in [0, jitterMs). Default 0.05; 0 draws nothing. */
  readonly jitterMs?: number;
  /** Server service time per operation in ms, added to the reply delay. Default `defaultServiceMs`. */
  readonly serviceMs?: Partial<Record<ServerOperationName, number>>;
}

function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new TypeError(`${name}: expected a finite number of ms >= 0, got ${describeValue(value)}`);
  }
  return value;
}

/** Fixed delays plus seeded uniform jitter. */
export class FixedLatency implements LatencyModel {
  private readonly oneWayMs: number;
  private readonly jitterMs: number;
  private readonly serviceByOperation: Float64Array;

  constructor(options: FixedLatencyOptions = {}) {
    for (const key of Object.keys(options)) {
      if (key !== 'oneWayMs' && key !== 'jitterMs' && key !== 'serviceMs') {
        throw new TypeError(`latency: unknown option ${JSON.stringify(key)}; expected oneWayMs, jitterMs or serviceMs`);
      }
    }
    this.oneWayMs = nonNegative('latency.oneWayMs', options.oneWayMs ?? 0.1);
    this.jitterMs = nonNegative('latency.jitterMs', options.jitterMs ?? 0.05);
    this.serviceByOperation = new Float64Array(64);
    const service = { ...defaultServiceMs, ...(options.serviceMs ?? {}) };
    for (const [name, value] of Object.entries(service)) {
      const code = (Operation as Record<string, number>)[name];
      if (code === undefined || !(name in defaultServiceMs)) {
        throw new TypeError(`latency.serviceMs: unknown operation ${JSON.stringify(name)}; expected one of ${Object.keys(defaultServiceMs).join(', ')}`);
      }
      this.serviceByOperation[code] = nonNegative(`latency.serviceMs.${name}`, value);
    }
  }

  requestDelayMs(_operation: Operation, random: RandomStream): number {
    return this.jitterMs === 0 ? this.oneWayMs : this.oneWayMs + this.jitterMs * random.next();
  }

  replyDelayMs(operation: Operation, random: RandomStream): number {
    const service = this.serviceByOperation[operation] ?? 0;
    return this.jitterMs === 0 ? service + this.oneWayMs : service + this.oneWayMs + this.jitterMs * random.next();
  }
}

/** No time at all: every request arrives and returns in the same instant (tests, ceilings). */
export const zeroLatency: LatencyModel = {
  requestDelayMs: () => 0,
  replyDelayMs: () => 0,
};

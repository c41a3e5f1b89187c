/**
 * How long simulated operations take. The server applies a request when it arrives and the reply
 * reaches the client later, so a model gives two delays per request: client to server (the
 * request's one-way trip) and server to client (service time plus the reply's trip). Both are
 * drawn from the calling client's own latency stream, so one client's draws never shift another's.
 *
 * Only a simple model lives here (fixed delays with seeded uniform jitter); profiles with
 * heavy tails, server queueing, RAID and failover come later and plug in through `LatencyModel`.
 */

import { Operation } from './protocol.js';
import { type RandomStream, describeValue } from './random.js';

export interface LatencyModel {
  /** Milliseconds from the client sending `operation` to the server applying it. */
  requestDelayMs(operation: Operation, random: RandomStream): number;
  /** Milliseconds from the server applying `operation` to the client receiving the reply. */
  replyDelayMs(operation: Operation, random: RandomStream): number;
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

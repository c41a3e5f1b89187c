/**
 * The trace: every event of a run, as a compact record folded into a running hash.
 *
 * A record is (virtual time, kind, client, operation, status, argument digest, position, length,
 * path). Records are kept only in a ring buffer (the last `windowSize` of them) and folded into a
 * 64-bit running hash (two 32-bit multiply-xor lanes over the record's words), so a run of any
 * length costs constant memory. The same seed must give the same hash: that is the determinism
 * check. A sink, when given, receives every record as one text line (for `--trace FILE`).
 *
 * Nothing here allocates per record unless a sink is attached.
 */

import { assert } from '../engine/errors.js';

/** What a record stands for. */
export const TraceKind = {
  /** The server applied a request (the effect happened at this instant). */
  apply: 1,
  /** A reply reached its client (the port call returned or threw). */
  reply: 2,
  /** A call completed on the client without the server (cache hit, sleep, wait timeout). */
  local: 3,
  /** A run control: client start / finish / crash / restart, session drop, server timers. */
  control: 4,
  /** A reply was lost (the client crashed or its connection dropped after the effect). */
  lost: 5,
} as const;
export type TraceKind = (typeof TraceKind)[keyof typeof TraceKind];

const traceKindNames: Record<number, string> = {
  1: 'apply',
  2: 'reply',
  3: 'local',
  4: 'control',
  5: 'lost',
};

/** One decoded record. */
export interface TraceRecord {
  /** Index of the record in the whole run, from 0. */
  readonly index: number;
  readonly timeMs: number;
  readonly kind: string;
  readonly client: string;
  readonly operation: string;
  readonly status: string;
  /** Digest of the arguments (and of written bytes), as 8 hex digits. */
  readonly digest: string;
  readonly position: number;
  readonly length: number;
  readonly path: string;
}

/** Receives trace lines. */
export interface TraceSink {
  write(line: string): void;
}

/** Turns the numbers of a record into names. */
export interface TraceNames {
  operation(code: number): string;
  status(code: number): string;
  client(index: number): string;
}

/** Told of every record as it is made, with its numbers (no allocation): metrics collectors. */
export type TraceObserver = (timeMs: number, kind: TraceKind, client: number, operation: number, status: number, position: number, length: number, path: string) => void;

export interface TraceOptions {
  /** How many of the latest records to keep for `window()`. Default 4096; 0 keeps none. */
  readonly windowSize?: number;
  /** Receives every record as a line, in order. Default none. */
  readonly sink?: TraceSink;
  /** Told of every record, in order (reports/metrics.ts). Default none. */
  readonly observer?: TraceObserver;
}

const fnvPrime = 0x01000193;
const mixPrime = 0x5bd1e995;

const floatScratch = new Float64Array(1);
const floatWords = new Uint32Array(floatScratch.buffer);

/** Folds a 32-bit word into a 32-bit digest (FNV-1a on words). */
export function digestWord(digest: number, word: number): number {
  return Math.imul(digest ^ word, fnvPrime) >>> 0;
}

/** Folds a non-negative integer of up to 2^53 (or any number) into a digest. */
export function digestNumber(digest: number, value: number): number {
  if ((value | 0) === value) return digestWord(digest, value);
  floatScratch[0] = value;
  return digestWord(digestWord(digest, floatWords[0]!), floatWords[1]!);
}

export function digestString(digest: number, text: string): number {
  let result = digest;
  for (let index = 0; index < text.length; index += 1) {
    result = Math.imul(result ^ text.charCodeAt(index), fnvPrime);
  }
  return digestWord(result >>> 0, text.length);
}

/** Bytes sampled at each end of a buffer by `digestBytesSample`. */
const sampleBytes = 16;

/** Every byte of `bytes` (exact, O(n)). */
export function digestBytes(digest: number, bytes: Uint8Array): number {
  let result = digest;
  for (let index = 0; index < bytes.length; index += 1) {
    result = Math.imul(result ^ bytes[index]!, fnvPrime);
  }
  return digestWord(result >>> 0, bytes.length);
}

/** The length and the first and last 16 bytes: cheap, and enough to tell runs apart. */
export function digestBytesSample(digest: number, bytes: Uint8Array): number {
  const length = bytes.length;
  if (length <= 2 * sampleBytes) return digestBytes(digest, bytes);
  let result = digest;
  for (let index = 0; index < sampleBytes; index += 1) result = Math.imul(result ^ bytes[index]!, fnvPrime);
  for (let index = length - sampleBytes; index < length; index += 1) result = Math.imul(result ^ bytes[index]!, fnvPrime);
  return digestWord(result >>> 0, length);
}

export const emptyDigest = 0x811c9dc5;

export class Trace {
  private readonly windowSize: number;
  private readonly sink: TraceSink | undefined;
  private readonly observer: TraceObserver | undefined;
  private names: TraceNames | undefined;
  private readonly times: Float64Array;
  private readonly kinds: Uint8Array;
  private readonly clients: Int32Array;
  private readonly operations: Uint16Array;
  private readonly statuses: Uint16Array;
  private readonly digests: Uint32Array;
  private readonly positions: Float64Array;
  private readonly lengths: Float64Array;
  private readonly paths: string[];
  private laneA = 0x811c9dc5;
  private laneB = 0x2545f491;
  /** Records so far in the run. */
  count = 0;
  /** The window slot of the next record (`count` modulo `windowSize`, kept without a division). */
  private nextSlot = 0;

  constructor(options: TraceOptions = {}) {
    const windowSize = options.windowSize ?? 4096;
    if (!Number.isSafeInteger(windowSize) || windowSize < 0 || windowSize > 1 << 24) {
      throw new TypeError(`trace.windowSize: expected an integer in [0, 16777216], got ${String(windowSize)}`);
    }
    this.windowSize = windowSize;
    this.sink = options.sink;
    this.observer = options.observer;
    this.times = new Float64Array(windowSize);
    this.kinds = new Uint8Array(windowSize);
    this.clients = new Int32Array(windowSize);
    this.operations = new Uint16Array(windowSize);
    this.statuses = new Uint16Array(windowSize);
    this.digests = new Uint32Array(windowSize);
    this.positions = new Float64Array(windowSize);
    this.lengths = new Float64Array(windowSize);
    this.paths = new Array<string>(windowSize).fill('');
  }

  /** Sets how records are named when printed (the simulation does this once). */
  setNames(names: TraceNames): void {
    this.names = names;
  }

  record(
    timeMs: number,
    kind: TraceKind,
    client: number,
    operation: number,
    status: number,
    digest: number,
    position: number,
    length: number,
    path: string,
  ): void {
    floatScratch[0] = timeMs;
    let a = this.laneA;
    let b = this.laneB;
    const timeLow = floatWords[0]!;
    const timeHigh = floatWords[1]!;
    const head = (kind << 24) ^ (operation << 12) ^ status;
    a = Math.imul(a ^ timeLow, fnvPrime);
    b = Math.imul(b ^ timeHigh, mixPrime);
    b ^= b >>> 15;
    a = Math.imul(a ^ timeHigh, fnvPrime);
    b = Math.imul(b ^ head, mixPrime);
    b ^= b >>> 15;
    a = Math.imul(a ^ head, fnvPrime);
    b = Math.imul(b ^ client, mixPrime);
    b ^= b >>> 15;
    a = Math.imul(a ^ client, fnvPrime);
    b = Math.imul(b ^ digest, mixPrime);
    b ^= b >>> 15;
    a = Math.imul(a ^ digest, fnvPrime);
    this.laneA = a >>> 0;
    this.laneB = b >>> 0;

    if (this.windowSize > 0) {
      const slot = this.nextSlot;
      this.nextSlot = slot + 1 === this.windowSize ? 0 : slot + 1;
      this.times[slot] = timeMs;
      this.kinds[slot] = kind;
      this.clients[slot] = client;
      this.operations[slot] = operation;
      this.statuses[slot] = status;
      this.digests[slot] = digest;
      this.positions[slot] = position;
      this.lengths[slot] = length;
      this.paths[slot] = path;
    }
    this.count += 1;
    if (this.sink !== undefined) {
      this.sink.write(this.formatSlotValues(this.count - 1, timeMs, kind, client, operation, status, digest, position, length, path));
    }
    if (this.observer !== undefined) this.observer(timeMs, kind, client, operation, status, position, length, path);
  }

  /** The running hash of every record so far: 16 hex digits. */
  hash(): string {
    return this.laneA.toString(16).padStart(8, '0') + this.laneB.toString(16).padStart(8, '0');
  }

  /** The kept records, oldest first (at most `windowSize`, or fewer if `last` is smaller). */
  window(last = this.windowSize): TraceRecord[] {
    const kept = Math.min(this.count, this.windowSize, Math.max(0, last));
    const records: TraceRecord[] = [];
    for (let index = this.count - kept; index < this.count; index += 1) {
      const slot = index % this.windowSize;
      records.push({
        index,
        timeMs: this.times[slot]!,
        kind: traceKindNames[this.kinds[slot]!] ?? `kind-${this.kinds[slot]}`,
        client: this.clientName(this.clients[slot]!),
        operation: this.names?.operation(this.operations[slot]!) ?? String(this.operations[slot]),
        status: this.names?.status(this.statuses[slot]!) ?? String(this.statuses[slot]),
        digest: this.digests[slot]!.toString(16).padStart(8, '0'),
        position: this.positions[slot]!,
        length: this.lengths[slot]!,
        path: this.paths[slot]!,
      });
    }
    return records;
  }

  /** The kept records as text, one line each. */
  format(last = this.windowSize): string {
    return this.window(last)
      .map((record) => formatRecord(record))
      .join('\n');
  }

  private clientName(index: number): string {
    if (index < 0) return '-';
    return this.names?.client(index) ?? `client-${index}`;
  }

  private formatSlotValues(
    index: number,
    timeMs: number,
    kind: number,
    client: number,
    operation: number,
    status: number,
    digest: number,
    position: number,
    length: number,
    path: string,
  ): string {
    assert(this.sink !== undefined, 'formatSlotValues without a sink');
    return formatRecord({
      index,
      timeMs,
      kind: traceKindNames[kind] ?? `kind-${kind}`,
      client: this.clientName(client),
      operation: this.names?.operation(operation) ?? String(operation),
      status: this.names?.status(status) ?? String(status),
      digest: (digest >>> 0).toString(16).padStart(8, '0'),
      position,
      length,
      path,
    });
  }
}

export function formatRecord(record: TraceRecord): string {
  const where = record.path === '' ? '' : ` ${record.path}`;
  const range = record.position === 0 && record.length === 0 ? '' : ` @${record.position}+${record.length}`;
  return `#${record.index} ${record.timeMs.toFixed(6)}ms ${record.kind} ${record.client} ${record.operation}${where}${range} -> ${record.status} [${record.digest}]`;
}

/**
 * The history of a run: every client operation as an invocation and its completion, Jepsen-style.
 *
 * A completion is `ok` (it happened), `fail` (it certainly did not happen), or `info` (unknown:
 * the client crashed in mid-call, or the call failed in a way that leaves its effect open, such
 * as a session lost during the commit). An operation still pending at the end of a run is `info`.
 * Checkers read only the history (and the server's observations), never the engine's insides.
 */

import { NasqError, isNasqError, type ErrorCode } from '../engine/errors.js';

export type OperationKind = 'open' | 'send' | 'receive' | 'ack' | 'release';
export type Outcome = 'ok' | 'fail' | 'info';

/** A message as its sender tried to send it. */
export interface SentMessage {
  /** Engine id, when the send returned it (ok), else undefined. */
  id: string | undefined;
  /** What the body says (unique per send attempt): how deliveries are matched to info sends. */
  body: string;
  /** Delivery time on the sender's clock. */
  deliverAt: number;
}

/** A message as a receiver got it. */
export interface DeliveredMessage {
  id: string;
  body: string;
  deliverAt: number;
  deliveryCount: number;
  leaseToken: number;
  /** Lease end on the receiver's clock. */
  leaseExpiry: number;
}

export interface Operation {
  /** Position in the history (invocation order). */
  readonly index: number;
  readonly client: string;
  readonly incarnation: number;
  readonly kind: OperationKind;
  /** Virtual (server) time of the invocation, ms. */
  readonly invokeMs: number;
  /** The client's own clock at the invocation, ms since the epoch. */
  readonly invokeClockMs: number;
  /** Trace position at the invocation. */
  readonly invokeTrace: number;
  /** For send: the attempted messages. */
  sends?: SentMessage[];
  /** For ack and release: the message and the lease it names. */
  target?: { id: string; leaseToken: number };
  /** For receive (ok): what arrived. */
  deliveries?: DeliveredMessage[];
  outcome?: Outcome;
  completeMs?: number;
  completeClockMs?: number;
  completeTrace?: number;
  /** For fail and info: the error code (or 'crash' / 'pending'). */
  error?: string;
}

/** Error codes that mean the operation certainly took no effect. */
const definiteFailures: readonly ErrorCode[] = ['QUEUE_FULL', 'LEASE_LOST', 'INVALID_ARGUMENT', 'NOT_A_QUEUE'];

/**
 * Classifies an error of an engine call: `fail` when it certainly took no effect, `info` when
 * its effect is unknown (a lost session, an I/O error, a timeout after the lock was taken).
 * A lock that was never granted means the cycle never ran: a failure, except for a send whose
 * batch may have committed a checkpoint (single sends have none).
 */
export function classifyError(error: unknown, kind: OperationKind): Outcome {
  if (!(error instanceof NasqError)) return 'info';
  if (definiteFailures.includes(error.code)) return 'fail';
  if (error.code === 'LOCK_NOT_GRANTED' && kind !== 'receive') return 'fail';
  return 'info';
}

export interface ClientClockReader {
  /** Virtual server time now. */
  nowMs(): number;
  /** Trace position now. */
  tracePosition(): number;
}

export class History {
  readonly operations: Operation[] = [];

  constructor(private readonly reader: ClientClockReader) {}

  invoke(client: string, incarnation: number, kind: OperationKind, clientClockMs: number, details: Partial<Operation> = {}): Operation {
    const operation: Operation = {
      index: this.operations.length,
      client,
      incarnation,
      kind,
      invokeMs: this.reader.nowMs(),
      invokeClockMs: clientClockMs,
      invokeTrace: this.reader.tracePosition(),
      ...details,
    };
    this.operations.push(operation);
    return operation;
  }

  complete(operation: Operation, outcome: Outcome, clientClockMs: number, details: Partial<Operation> = {}): void {
    if (operation.outcome !== undefined) throw new Error(`history: operation ${operation.index} completed twice`);
    Object.assign(operation, details);
    operation.outcome = outcome;
    operation.completeMs = this.reader.nowMs();
    operation.completeClockMs = clientClockMs;
    operation.completeTrace = this.reader.tracePosition();
  }

  /** Completes with the outcome an error implies, recording its code. */
  completeWithError(operation: Operation, error: unknown, clientClockMs: number): Outcome {
    const outcome = classifyError(error, operation.kind);
    this.complete(operation, outcome, clientClockMs, { error: isNasqError(error) ? error.code : String(error) });
    return outcome;
  }

  /** Marks every operation still pending as `info` (its client crashed or the run ended). */
  closePending(reason: string): void {
    for (const operation of this.operations) {
      if (operation.outcome !== undefined) continue;
      operation.outcome = 'info';
      operation.error = reason;
    }
  }

  pending(): Operation[] {
    return this.operations.filter((operation) => operation.outcome === undefined);
  }
}

/** One line per operation, for failure reports and `nasq run`. */
export function formatOperation(operation: Operation): string {
  const time = `${operation.invokeMs.toFixed(3)}..${operation.completeMs?.toFixed(3) ?? '?'}`;
  const what =
    operation.kind === 'send'
      ? (operation.sends ?? []).map((sent) => sent.id ?? `(${sent.body})`).join(',')
      : operation.kind === 'receive'
        ? (operation.deliveries ?? []).map((delivered) => `${delivered.id}#${delivered.deliveryCount}`).join(',')
        : operation.target !== undefined
          ? `${operation.target.id}:${operation.target.leaseToken}`
          : '';
  return `#${operation.index} ${time} ${operation.client}.${operation.incarnation} ${operation.kind} ${what} -> ${operation.outcome ?? 'pending'}${operation.error === undefined ? '' : ` (${operation.error})`}`;
}

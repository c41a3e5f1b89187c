/**
 * The history file of one torture process: one JSON object per line, appended durably (each
 * append is one write followed by fdatasync) so that whatever a SIGKILL interrupts, every line
 * written before the kill is there afterwards, and a line is written before the call it
 * describes begins. An invocation without its completion is an operation of unknown outcome.
 *
 *   {"event":"start","timeMs":...,"pid":...}
 *   {"event":"invoke","operation":7,"kind":"send","timeMs":...,"sends":[{"body":"p2.5-m9","deliverAt":...}]}
 *   {"event":"ok","operation":7,"timeMs":...,"ids":["14-9"]}
 *   {"event":"invoke","operation":8,"kind":"receive","timeMs":...}
 *   {"event":"ok","operation":8,"timeMs":...,"deliveries":[{"id":"14-9","body":"p2.5-m9",...}]}
 *   {"event":"invoke","operation":9,"kind":"ack","timeMs":...,"target":{"id":"14-9","leaseToken":31}}
 *   {"event":"fail","operation":9,"timeMs":...,"error":"LEASE_LOST"}
 *   {"event":"done-sending","timeMs":...}
 *   {"event":"exit","timeMs":...,"drained":true}
 *   {"event":"error","timeMs":...,"message":"..."}       a programmer error; the process exits 1
 *
 * Times are the process's wall clock (Date.now, the clock the engine's leases are on), ms since
 * the epoch. Operation numbers count from 0 within one process.
 */

import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { DeliveredMessage, OperationKind, SentMessage } from '../properties/history.js';

export type LogEvent =
  | { readonly event: 'start'; readonly timeMs: number; readonly pid: number }
  | {
      readonly event: 'invoke';
      readonly operation: number;
      readonly kind: OperationKind;
      readonly timeMs: number;
      readonly sends?: readonly SentMessage[];
      readonly target?: { readonly id: string; readonly leaseToken: number };
    }
  | {
      readonly event: 'ok';
      readonly operation: number;
      readonly timeMs: number;
      /** For send: the ids of the messages sent, in the order of the invocation's `sends`. */
      readonly ids?: readonly string[];
      readonly deliveries?: readonly DeliveredMessage[];
    }
  | { readonly event: 'fail' | 'info'; readonly operation: number; readonly timeMs: number; readonly error: string }
  | { readonly event: 'done-sending'; readonly timeMs: number }
  /** The process ends on its own: `drained` false when the drain time ran out first. */
  | { readonly event: 'exit'; readonly timeMs: number; readonly drained: boolean }
  | { readonly event: 'error'; readonly timeMs: number; readonly message: string };

/** An append-only history file; every append reaches the disk before it returns. */
export class HistoryLog {
  readonly #descriptor: number;
  readonly #sync: boolean;
  #closed = false;

  /** Opens (creating) `path` for appending. `sync: false` skips the fdatasync (tests of the log itself). */
  constructor(
    readonly path: string,
    options: { readonly sync?: boolean } = {},
  ) {
    this.#descriptor = openSync(path, 'a');
    this.#sync = options.sync ?? true;
  }

  /** Appends the events as lines, in one write, then flushes them to the disk. */
  append(...events: LogEvent[]): void {
    if (this.#closed) throw new Error(`history log ${this.path}: append after close`);
    if (events.length === 0) return;
    const text = events.map((event) => `${JSON.stringify(event)}\n`).join('');
    const bytes = Buffer.from(text, 'utf8');
    // A write to a regular file may be short in principle: go on until every byte is out.
    for (let written = 0; written < bytes.length; ) written += writeSync(this.#descriptor, bytes, written);
    if (this.#sync) fdatasyncSync(this.#descriptor);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#descriptor);
  }
}

export interface ParsedLog {
  readonly events: LogEvent[];
  /** A last line cut short (the process was killed during the write): ignored. */
  readonly tornTail: boolean;
}

/**
 * Reads a history file. Only the last line may be torn (a kill during the append); a bad line
 * anywhere else is damage, and throws.
 */
export async function readHistoryLog(path: string): Promise<ParsedLog> {
  const text = await readFile(path, 'utf8');
  const lines = text.split('\n');
  const events: LogEvent[] = [];
  let tornTail = false;
  for (const [index, line] of lines.entries()) {
    if (line === '') continue;
    const last = index === lines.length - 1;
    try {
      events.push(JSON.parse(line) as LogEvent);
    } catch (error) {
      if (!last) throw new Error(`history file ${path}: line ${index + 1} is not JSON: ${(error as Error).message}`);
      tornTail = true;
    }
  }
  return { events, tornTail };
}

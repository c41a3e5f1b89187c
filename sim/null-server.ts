/**
 * A simulated share that does nothing: every request succeeds at once and changes nothing. Reads
 * return zeros (a view of one shared zero buffer), opens and watches return placeholder objects,
 * stats a fixed answer, waits 'timeout'.
 *
 * Everything around the server still runs: sessions, calls, latencies, events, the trace, the
 * promise of each port call. So a run over it measures the simulator's own cost per port call:
 * the ceiling the benchmarks compare the real share (and the engine on it) against. Client code
 * that needs a real file system (the engine) cannot run on it; the benchmark replays the port
 * calls an engine run made instead.
 */

import type { FileStat, WaitResult } from '../engine/ports.js';
import { type Call, Operation, Status } from './protocol.js';
import type { Scheduler } from './scheduler.js';
import { type ServerOptions, ServerNode, ServerOpen, type ServerSession, ServerWatch, SimServer } from './server.js';
import type { Trace } from './trace.js';

/** The longest read the null server answers without allocating (longer ones get fresh zeros). */
const sharedZerosLength = 64 * 1024;

const fileKind = 1;
const directoryKind = 2;

export class NullServer extends SimServer {
  private readonly sharedZeros = new Uint8Array(sharedZerosLength);
  private readonly placeholderFile: ServerNode;
  private readonly placeholderDirectory: ServerNode;
  private readonly fixedStat: FileStat = { size: 0, mtimeMs: 0, isDirectory: false };
  private nextPlaceholderId = 1;

  constructor(scheduler: Scheduler, trace: Trace, options: ServerOptions = {}) {
    super(scheduler, trace, options);
    this.placeholderFile = new ServerNode(fileKind, 'null', null, 0);
    this.placeholderDirectory = new ServerNode(directoryKind, 'null-directory', null, 0);
  }

  override execute(call: Call): Status {
    this.requestsApplied += 1;
    const session = call.session as ServerSession;
    call.status = Status.success;
    switch (call.operation) {
      case Operation.open:
        call.value = new ServerOpen(this.takePlaceholderId(), session, this.placeholderFile, false);
        break;
      case Operation.watch:
        call.value = new ServerWatch(this.takePlaceholderId(), session, this.placeholderDirectory, call.flags, true);
        break;
      case Operation.read:
        call.value = this.zerosOfLength(call.length);
        break;
      case Operation.readFile:
        call.value = this.zerosOfLength(0);
        break;
      case Operation.stat:
        call.value = this.fixedStat;
        break;
      case Operation.readdir:
        call.value = [];
        break;
      case Operation.waitForChange:
        call.value = 'timeout' satisfies WaitResult;
        break;
      default:
        call.value = undefined;
    }
    return Status.success;
  }

  private zerosOfLength(length: number): Uint8Array {
    return length <= sharedZerosLength ? this.sharedZeros.subarray(0, length) : new Uint8Array(length);
  }

  private takePlaceholderId(): number {
    const id = this.nextPlaceholderId;
    this.nextPlaceholderId += 1;
    return id;
  }
}

/** `SimulationOptions.createServer` for a share that does nothing. */
export function createNullServer(scheduler: Scheduler, trace: Trace, options: ServerOptions | undefined): SimServer {
  return new NullServer(scheduler, trace, options);
}

/**
 * The NAS around the simulated SMB server: its workers, its disk array, its network to each
 * client, and the faults of all three. The server (server.ts) keeps the file and handle state;
 * this keeps what decides *when* a request may be worked on and how long it takes:
 *
 * - Workers: a finite pool, first in, first out (with a latency model that has a server cost).
 * - The RAID array: failed disks, a rebuild, a stalled disk, a lost array (see `RaidArray`).
 * - Holds: a request or a reply that cannot move yet waits for a known time. A stalled server
 *   (controller failover, reboot after a power cut) holds every request and reply; a partition
 *   holds one client's requests and replies; a paused client (stop-the-world) gets no reply and
 *   no timer until it resumes; a delayed oplock break holds an open of a file another client holds.
 *
 * Everything here is driven by the nemesis (nemesis.ts) and read by the client runtime at the
 * instants a request arrives and a reply or timer fires. No engine code knows about it.
 */

import { assert } from '../engine/errors.js';
import { Operation } from './protocol.js';
import { type RaidConfiguration, raidRedundancy } from './profiles.js';

/** Admission steps a request has passed (bits of `Call.admission`). */
export const AdmissionStep = {
  /** A delayed oplock break was waited for. */
  oplockBreak: 1,
  /** A worker is reserved (its service window is known). */
  worker: 2,
} as const;

/**
 * Operations that touch the disks (data or metadata): they fail on a lost array and are slowed by
 * a degraded one or a stalled disk. Locks, closes and notifications live in server memory.
 */
const storageOperations: readonly number[] = [
  Operation.open,
  Operation.read,
  Operation.write,
  Operation.sync,
  Operation.truncate,
  Operation.readFile,
  Operation.writeFile,
  Operation.stat,
  Operation.setTimes,
  Operation.rename,
  Operation.unlink,
  Operation.readdir,
  Operation.mkdir,
];

/** Operations that open a file at the server, and so must wait for another client's oplock break. */
const openingOperations: readonly number[] = [Operation.open, Operation.readFile, Operation.writeFile, Operation.rename, Operation.unlink];

/** Operation codes are small integers: a table by code answers both questions (asked per request). */
const operationCodeLimit = 64;
const OperationTrait = { storage: 1, opens: 2 } as const;
const operationTraits = new Uint8Array(operationCodeLimit);
for (const operation of storageOperations) operationTraits[operation] = operationTraits[operation]! | OperationTrait.storage;
for (const operation of openingOperations) operationTraits[operation] = operationTraits[operation]! | OperationTrait.opens;

export function touchesStorage(operation: number): boolean {
  return (operationTraits[operation]! & OperationTrait.storage) !== 0;
}

export function opensFile(operation: number): boolean {
  return (operationTraits[operation]! & OperationTrait.opens) !== 0;
}

/** The disk array: which disks failed, whether a rebuild runs, whether a disk stalls, whether it is lost. */
export class RaidArray {
  configuration: RaidConfiguration;
  /** Failed disks (a disk being rebuilt counts as failed until the rebuild completes). */
  readonly failed = new Set<number>();
  /** The disk being rebuilt onto a spare, and the rebuild's end, ms of virtual time. */
  rebuildingDisk = -1;
  rebuildEndMs = 0;
  /** The array failed beyond its redundancy: every storage call fails with IO_ERROR. */
  lost = false;
  /** A disk stalls I/O (no error recovery control) until this time, ms. */
  stallUntilMs = 0;

  constructor(configuration: RaidConfiguration) {
    this.configuration = configuration;
  }

  /** Replaces the configuration (a scenario's fault names the level); only before any failure. */
  configure(configuration: RaidConfiguration): void {
    assert(this.failed.size === 0 && !this.lost, 'raid: reconfigured after a failure');
    this.configuration = configuration;
  }

  /**
   * A disk fails. Returns 'degraded' if the array survives, 'lost' if this failure is beyond its
   * redundancy (RAID-5: a second disk; RAID-6: a third; RAID-10: both disks of one mirror pair).
   */
  failDisk(disk: number): 'degraded' | 'lost' | 'already-failed' {
    const { level, disks } = this.configuration;
    const index = ((Math.trunc(disk) % disks) + disks) % disks;
    if (this.lost) return 'lost';
    if (this.failed.has(index)) return 'already-failed';
    this.failed.add(index);
    if (index === this.rebuildingDisk) this.rebuildingDisk = -1;
    let lost: boolean;
    if (level === 10) {
      const partner = index % 2 === 0 ? index + 1 : index - 1;
      lost = this.failed.has(partner);
    } else {
      lost = this.failed.size > raidRedundancy[level];
    }
    if (lost) this.lost = true;
    return lost ? 'lost' : 'degraded';
  }

  /** A spare takes the failed disk's place and is rebuilt until `endMs`. */
  startRebuild(disk: number, endMs: number): void {
    const { disks } = this.configuration;
    const index = ((Math.trunc(disk) % disks) + disks) % disks;
    if (this.lost || !this.failed.has(index)) return;
    this.rebuildingDisk = index;
    this.rebuildEndMs = endMs;
  }

  /** The rebuild of `disk` finished (or was healed): the array has that disk back. */
  finishRebuild(disk: number): void {
    const { disks } = this.configuration;
    const index = ((Math.trunc(disk) % disks) + disks) % disks;
    if (this.lost) return;
    this.failed.delete(index);
    if (this.rebuildingDisk === index) this.rebuildingDisk = -1;
  }

  /** Heals every disk (the liveness phase): an array that is not lost is optimal again. */
  healAll(): void {
    if (this.lost) return;
    this.failed.clear();
    this.rebuildingDisk = -1;
    this.stallUntilMs = 0;
  }

  /**
   * The factor on the service time of storage operations now: degradedFactor per failed disk
   * (RAID-5/6, reads reconstruct from the other disks; RAID-10 once: a mirror serves alone),
   * times rebuildFactor while a rebuild runs.
   */
  storageFactor(nowMs: number): number {
    if (this.failed.size === 0) return 1;
    const { level, degradedFactor, rebuildFactor } = this.configuration;
    let factor = level === 10 ? degradedFactor : degradedFactor ** this.failed.size;
    if (this.rebuildingDisk >= 0 && nowMs < this.rebuildEndMs) factor *= rebuildFactor;
    return factor;
  }
}

/** One client's network and process faults (by client index). */
interface ClientFaults {
  /** Requests and replies of the client are held until this time (a partition). */
  partitionedUntilMs: number;
  /** The client's process is stopped until this time (no replies, no timers). */
  pausedUntilMs: number;
  /** A delayed oplock break: others' opens of files this client holds wait this long. */
  oplockBreakDelayMs: number;
}

export class NasState {
  readonly raid: RaidArray;
  /** The whole server holds requests and replies until this time (failover, reboot). */
  serverStallUntilMs = 0;
  /**
   * Whether a stall, partition or pause was ever set. Until one is, nothing can be held, and the
   * client runtime skips asking about holds at every request, reply and timer.
   */
  mayHold = false;
  private readonly clients: ClientFaults[] = [];
  /** Clients with a delayed oplock break, by name (for the check at an open). */
  readonly slowOplockClients = new Map<string, number>();
  /** When each worker is free again, ms. Sized by the latency model at the first request. */
  private workerFreeMs: Float64Array | null = null;
  /** When the link to the share is free again, towards the share (requests) and back (replies), ms. */
  private uplinkFreeMs = 0;
  private downlinkFreeMs = 0;

  constructor(raid: RaidConfiguration) {
    this.raid = new RaidArray(raid);
  }

  private faultsOf(clientIndex: number): ClientFaults {
    let faults = this.clients[clientIndex];
    if (faults === undefined) {
      for (let index = this.clients.length; index <= clientIndex; index += 1) {
        this.clients.push({ partitionedUntilMs: 0, pausedUntilMs: 0, oplockBreakDelayMs: 0 });
      }
      faults = this.clients[clientIndex]!;
    }
    return faults;
  }

  // ---- controls (the nemesis)

  stallServer(untilMs: number): void {
    this.mayHold = true;
    this.serverStallUntilMs = Math.max(this.serverStallUntilMs, untilMs);
  }

  endServerStall(nowMs: number): void {
    if (this.serverStallUntilMs > nowMs) this.serverStallUntilMs = nowMs;
  }

  partition(clientIndex: number, untilMs: number): void {
    this.mayHold = true;
    const faults = this.faultsOf(clientIndex);
    faults.partitionedUntilMs = Math.max(faults.partitionedUntilMs, untilMs);
  }

  healPartition(clientIndex: number, nowMs: number): void {
    const faults = this.faultsOf(clientIndex);
    if (faults.partitionedUntilMs > nowMs) faults.partitionedUntilMs = nowMs;
  }

  isPartitioned(clientIndex: number, nowMs: number): boolean {
    return (this.clients[clientIndex]?.partitionedUntilMs ?? 0) > nowMs;
  }

  pause(clientIndex: number, untilMs: number): void {
    this.mayHold = true;
    const faults = this.faultsOf(clientIndex);
    faults.pausedUntilMs = Math.max(faults.pausedUntilMs, untilMs);
  }

  resume(clientIndex: number, nowMs: number): void {
    const faults = this.faultsOf(clientIndex);
    if (faults.pausedUntilMs > nowMs) faults.pausedUntilMs = nowMs;
  }

  setOplockBreakDelay(clientName: string, delayMs: number): void {
    if (delayMs > 0) this.slowOplockClients.set(clientName, delayMs);
    else this.slowOplockClients.delete(clientName);
  }

  // ---- queries (the client runtime)

  /** Until when a request from `clientIndex` (or a cancel) must wait before the server sees it; <= now: it may go on. */
  requestHeldUntil(clientIndex: number): number {
    const partitioned = this.clients[clientIndex]?.partitionedUntilMs ?? 0;
    return partitioned > this.serverStallUntilMs ? partitioned : this.serverStallUntilMs;
  }

  /** Until when a reply from the server to `clientIndex` is held on the way (stall or partition). */
  replyHeldUntil(clientIndex: number): number {
    const partitioned = this.clients[clientIndex]?.partitionedUntilMs ?? 0;
    return partitioned > this.serverStallUntilMs ? partitioned : this.serverStallUntilMs;
  }

  /** Until when the client's own code cannot run (a pause): replies, timers and its start wait. */
  frozenUntil(clientIndex: number): number {
    return this.clients[clientIndex]?.pausedUntilMs ?? 0;
  }

  /**
   * Reserves a worker for a request arriving now that needs `serviceMs`: the earliest free worker
   * takes it (arrivals are handled in time order, so this is first in, first out). Returns the
   * service start.
   */
  reserveWorker(workers: number, nowMs: number, serviceMs: number, storage = false): number {
    let free = this.workerFreeMs;
    if (free === null || free.length !== workers) {
      free = new Float64Array(workers);
      this.workerFreeMs = free;
    }
    let best = 0;
    let bestMs = free[0]!;
    for (let index = 1; index < workers; index += 1) {
      const at = free[index]!;
      if (at < bestMs) {
        bestMs = at;
        best = index;
      }
    }
    const start = bestMs > nowMs ? bestMs : nowMs;
    // A storage request also waits out a stalled disk, holding its worker meanwhile.
    free[best] = start + serviceMs + (storage ? this.storageStallMs(start) : 0);
    return start;
  }

  /**
   * Puts `transferMs` of payload on the link to the share, towards it (`toShare`, a request's
   * written bytes) or back (a reply's read bytes), no earlier than `readyMs`: one transfer at a
   * time each way, first come, first served, so clients sharing a slow link wait for each other.
   * Returns when the last byte is on the wire.
   */
  transfer(toShare: boolean, readyMs: number, transferMs: number): number {
    const free = toShare ? this.uplinkFreeMs : this.downlinkFreeMs;
    const end = (free > readyMs ? free : readyMs) + transferMs;
    if (toShare) this.uplinkFreeMs = end;
    else this.downlinkFreeMs = end;
    return end;
  }

  /** Requests waiting for or using a worker at `nowMs` (inspection). */
  busyWorkers(nowMs: number): number {
    let busy = 0;
    for (const at of this.workerFreeMs ?? []) if (at > nowMs) busy += 1;
    return busy;
  }

  /**
   * Extra service of a storage operation starting at `startMs`: it waits out a stalled disk.
   * (Effects still apply at the service start: the server's cache has them; only the reply waits.)
   */
  storageStallMs(startMs: number): number {
    return this.raid.stallUntilMs > startMs ? this.raid.stallUntilMs - startMs : 0;
  }
}

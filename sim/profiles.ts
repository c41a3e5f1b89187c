/**
 * Named latency profiles of the simulated NAS (docs/latency-profiles.md gives the sources).
 *
 * The cost of one call, at a server that is not saturated:
 *
 *     latency = (roundTrips(op) x roundTripMs + serviceWeight(op) x serviceMs + flush) x X
 *
 * with X a lognormal jitter factor of median 1 and shape `jitterSigma`, drawn once per call (a
 * slow moment, a retransmit or a seek slows the call as a whole), and `flush` = `flushMs` for a
 * `sync`, or a `writeFile`, `unlink` or `rename` with `sync`. The network part is split between the request
 * ((roundTrips - 1/2) round trips) and the reply (half a round trip); the service part occupies
 * one of `serverWorkers` workers, first in, first out, so a busy server adds queueing on top.
 * Storage operations are slowed by the RAID state (degraded, rebuilding, a stalled disk; see
 * nas.ts); locks, closes and notifications are not (they live in server memory).
 *
 * Because X is one lognormal factor, the unloaded latency of an operation is itself lognormal:
 * median = base, p99 = base x e^(2.3263 x jitterSigma). That is the "configured distribution"
 * the profile test holds the simulator to.
 */

import type { Call } from './protocol.js';
import { CallFlag, Operation } from './protocol.js';
import type { LatencyModel, ServerCostModel } from './latency.js';
import { type RandomStream, describeValue } from './random.js';

export const latencyProfileNames = ['lan-nvram', 'lan-hdd-raid6', 'wan-branch'] as const;
export type LatencyProfileName = (typeof latencyProfileNames)[number];

export type RaidLevel = 5 | 6 | 10;

/** The disk array behind the share. */
export interface RaidConfiguration {
  readonly level: RaidLevel;
  /** Disks in the array (RAID-5 >= 3, RAID-6 >= 4, RAID-10 even and >= 4). */
  readonly disks: number;
  /**
   * Service-time factor of storage operations with one failed disk (reads rebuild data from the
   * others): throughput drops by 1 - 1/factor. Each further failure (RAID-6) multiplies again.
   * Default by level: 5 -> 2.0, 6 -> 1.6, 10 -> 1.3.
   */
  readonly degradedFactor: number;
  /** Extra factor while a rebuild runs (rebuild I/O competes with clients). Default 1.5. */
  readonly rebuildFactor: number;
  /** How long a rebuild takes, ms. Default by profile (hours in life; scaled down). */
  readonly rebuildMs: number;
}

/** A latency profile: the whole description of one kind of NAS and the network to it. */
export interface LatencyProfile {
  readonly name: string;
  /** Median network round trip, ms. */
  readonly roundTripMs: number;
  /** Median service time of a simple request (a lock, a stat) at the server, ms; see `serviceWeights`. */
  readonly serviceMs: number;
  /** Median extra service time of a flush / write-through, ms. */
  readonly flushMs: number;
  /** Lognormal shape of the per-call jitter factor; 0 = no jitter. */
  readonly jitterSigma: number;
  /** Requests the server works on at once. */
  readonly serverWorkers: number;
  /** Whether the write cache survives a power loss (NVRAM / battery). */
  readonly batteryBacked: boolean;
  readonly raid: RaidConfiguration;
  /**
   * Throughput of the link between the clients and the share, MB/s (10^6 bytes) each way, shared
   * by all clients: payloads (the bytes a write carries, a read returns) take bytes / throughput
   * on it, one at a time each way. 0: payloads take no time (the built-in profiles, and the
   * model of cifs-nas-model.md section 4, which counts round trips and service only).
   */
  readonly linkMBps: number;
}

/** Default degraded factors by level (cifs-nas-model.md section 5: throughput drops 30 - 70 %). */
export const defaultDegradedFactor: Readonly<Record<RaidLevel, number>> = { 5: 2.0, 6: 1.6, 10: 1.3 };

/** Failed disks an array of each level survives (RAID-10: one per mirror pair). */
export const raidRedundancy: Readonly<Record<RaidLevel, number>> = { 5: 1, 6: 2, 10: 1 };

/**
 * Round trips per operation on the wire (SMB2 without compounding): readFile / writeFile are
 * create + read/write + close; readdir is a query plus its end marker; a cancel is one way.
 */
const roundTripsByOperation: Partial<Record<Operation, number>> = {
  [Operation.readFile]: 3,
  [Operation.writeFile]: 3,
  [Operation.readdir]: 2,
  [Operation.lockCancel]: 0.5,
};

/**
 * Service time per operation in units of the profile's `serviceMs` (model section 4: open and
 * create cost more than a lock; a cached read or write is cheap; whole-file calls do three things).
 */
export const serviceWeights: Readonly<Partial<Record<Operation, number>>> = {
  [Operation.open]: 1,
  [Operation.close]: 0.3,
  [Operation.read]: 0.5,
  [Operation.write]: 0.5,
  [Operation.sync]: 0.3,
  [Operation.truncate]: 0.5,
  [Operation.lock]: 0.3,
  [Operation.unlock]: 0.3,
  [Operation.readFile]: 1.5,
  [Operation.writeFile]: 1.5,
  [Operation.stat]: 0.3,
  [Operation.setTimes]: 0.5,
  [Operation.rename]: 1,
  [Operation.unlink]: 1,
  [Operation.readdir]: 1,
  [Operation.mkdir]: 1,
  [Operation.watch]: 0.5,
  [Operation.unwatch]: 0.3,
  [Operation.waitForChange]: 0,
  [Operation.lockCancel]: 0,
};

/** Round trips of an operation (1 unless listed). */
export function roundTripsOf(operation: Operation): number {
  return roundTripsByOperation[operation] ?? 1;
}

/** Whether a call flushes to stable storage (its service includes the profile's flush time). */
export function flushes(operation: Operation, flags: number): boolean {
  return operation === Operation.sync || ((operation === Operation.writeFile || operation === Operation.unlink || operation === Operation.rename) && (flags & CallFlag.sync) !== 0);
}

const builtinProfiles: Readonly<Record<LatencyProfileName, LatencyProfile>> = {
  // An enterprise NAS with an NVRAM write cache on a LAN: sub-ms everything, cheap flushes.
  'lan-nvram': {
    name: 'lan-nvram',
    roundTripMs: 0.3,
    serviceMs: 0.4,
    flushMs: 0.5,
    jitterSigma: 0.4,
    serverWorkers: 32,
    batteryBacked: true,
    raid: { level: 6, disks: 12, degradedFactor: defaultDegradedFactor[6], rebuildFactor: 1.5, rebuildMs: 1_800_000 },
    linkMBps: 0,
  },
  // A small NAS of hard disks in RAID-6 without a battery-backed cache: flushes reach the platters.
  'lan-hdd-raid6': {
    name: 'lan-hdd-raid6',
    roundTripMs: 0.3,
    serviceMs: 0.6,
    flushMs: 10,
    jitterSigma: 0.6,
    serverWorkers: 16,
    batteryBacked: false,
    raid: { level: 6, disks: 6, degradedFactor: defaultDegradedFactor[6], rebuildFactor: 1.5, rebuildMs: 7_200_000 },
    linkMBps: 0,
  },
  // A branch office reaching the head office's NVRAM NAS over a WAN: the round trip dominates.
  'wan-branch': {
    name: 'wan-branch',
    roundTripMs: 40,
    serviceMs: 0.4,
    flushMs: 0.5,
    jitterSigma: 0.5,
    serverWorkers: 32,
    batteryBacked: true,
    raid: { level: 6, disks: 12, degradedFactor: defaultDegradedFactor[6], rebuildFactor: 1.5, rebuildMs: 1_800_000 },
    linkMBps: 0,
  },
};

/** A built-in profile by name (a copy of its description). */
export function builtinProfile(name: LatencyProfileName): LatencyProfile {
  const profile = builtinProfiles[name];
  if (profile === undefined) {
    throw new TypeError(`latency profile ${JSON.stringify(name)} is unknown; expected one of ${latencyProfileNames.join(', ')} or a profile object`);
  }
  return { ...profile, raid: { ...profile.raid } };
}

function finiteAtLeast(name: string, value: unknown, minimum: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value >= minimum)) {
    throw new TypeError(`latency profile ${name}: expected a finite number >= ${minimum}, got ${describeValue(value)}`);
  }
  return value;
}

/** Checks a RAID description (level, disk count, factors). */
export function resolveRaid(input: Partial<RaidConfiguration> | undefined, fallback: RaidConfiguration, where = 'raid'): RaidConfiguration {
  const level = input?.level ?? fallback.level;
  if (level !== 5 && level !== 6 && level !== 10) throw new TypeError(`${where}.level: expected 5, 6 or 10, got ${describeValue(level)}`);
  const levelChanged = level !== fallback.level;
  const disks = input?.disks ?? (levelChanged ? Math.max(fallback.disks, level === 5 ? 3 : 4) + (level === 10 && fallback.disks % 2 === 1 ? 1 : 0) : fallback.disks);
  const minimumDisks = level === 5 ? 3 : 4;
  if (!Number.isSafeInteger(disks) || disks < minimumDisks || disks > 64 || (level === 10 && disks % 2 !== 0)) {
    throw new TypeError(`${where}.disks: expected an integer from ${minimumDisks} to 64${level === 10 ? ' (even, mirror pairs)' : ''} for RAID-${level}, got ${describeValue(disks)}`);
  }
  return {
    level,
    disks,
    degradedFactor: finiteAtLeast(`${where}.degradedFactor`, input?.degradedFactor ?? (levelChanged ? defaultDegradedFactor[level] : fallback.degradedFactor), 1),
    rebuildFactor: finiteAtLeast(`${where}.rebuildFactor`, input?.rebuildFactor ?? fallback.rebuildFactor, 1),
    rebuildMs: finiteAtLeast(`${where}.rebuildMs`, input?.rebuildMs ?? fallback.rebuildMs, 0),
  };
}

/** The profile fields a scenario may give (see scenarios/schema.ts `latencyProfileSchema`). */
export interface LatencyProfileInput {
  readonly name: string;
  readonly roundTripMs: number;
  readonly serviceMs: number;
  readonly flushMs: number;
  readonly jitterSigma?: number;
  readonly serverWorkers?: number;
  readonly batteryBacked?: boolean;
  readonly raid?: Partial<RaidConfiguration>;
  readonly linkMBps?: number;
  readonly [key: string]: unknown;
}

/** A profile by name, or a scenario's own profile checked and completed with defaults. */
export function resolveProfile(profile: string | LatencyProfileInput): LatencyProfile {
  if (typeof profile === 'string') return builtinProfile(profile as LatencyProfileName);
  if (profile === null || typeof profile !== 'object') {
    throw new TypeError(`latency profile: expected a name or a profile object, got ${describeValue(profile)}`);
  }
  const name = profile.name;
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`latency profile name: expected a non-empty string, got ${describeValue(name)}`);
  const serverWorkers = profile.serverWorkers ?? 16;
  if (!Number.isSafeInteger(serverWorkers) || serverWorkers < 1 || serverWorkers > 4096) {
    throw new TypeError(`latency profile ${name} serverWorkers: expected an integer from 1 to 4096, got ${describeValue(serverWorkers)}`);
  }
  const batteryBacked = profile.batteryBacked ?? false;
  if (typeof batteryBacked !== 'boolean') throw new TypeError(`latency profile ${name} batteryBacked: expected a boolean, got ${describeValue(batteryBacked)}`);
  const fallbackRaid = builtinProfiles['lan-hdd-raid6'].raid;
  return {
    name,
    roundTripMs: finiteAtLeast(`${name} roundTripMs`, profile.roundTripMs, 0),
    serviceMs: finiteAtLeast(`${name} serviceMs`, profile.serviceMs, 0),
    flushMs: finiteAtLeast(`${name} flushMs`, profile.flushMs, 0),
    jitterSigma: finiteAtLeast(`${name} jitterSigma`, profile.jitterSigma ?? 0.5, 0),
    serverWorkers,
    batteryBacked,
    raid: resolveRaid(profile.raid, fallbackRaid, `latency profile ${name} raid`),
    linkMBps: finiteAtLeast(`${name} linkMBps`, profile.linkMBps ?? 0, 0),
  };
}

/** A profile with its link throughput set (`nasq capacity --link-mbps`). */
export function withLinkMBps(profile: LatencyProfile, linkMBps: number): LatencyProfile {
  return { ...profile, raid: { ...profile.raid }, linkMBps: finiteAtLeast(`${profile.name} linkMBps`, linkMBps, 0) };
}

/** The median cost of one call of `operation` at an idle, healthy server, ms (the base of its distribution). */
export function medianCostMs(profile: LatencyProfile, operation: Operation, flags = 0, storageFactor = 1): number {
  const network = roundTripsOf(operation) * profile.roundTripMs;
  const service = (serviceWeights[operation] ?? 0) * profile.serviceMs + (flushes(operation, flags) ? profile.flushMs : 0);
  return network + service * storageFactor;
}

/** z of the standard normal at 0.99. */
export const normalQuantile99 = 2.326347874040841;

/** The latency model of a profile: lognormal per-call jitter, round trips, FIFO server workers. */
export class ProfileLatency implements LatencyModel, ServerCostModel {
  readonly profile: LatencyProfile;
  readonly server: ServerCostModel = this;
  readonly workers: number;
  readonly linkBytesPerMs: number | undefined;
  private readonly halfRoundTripMs: number;
  private readonly sigma: number;

  constructor(profile: LatencyProfile) {
    this.profile = profile;
    this.workers = profile.serverWorkers;
    // MB/s is 10^6 bytes per 1,000 ms.
    this.linkBytesPerMs = profile.linkMBps > 0 ? profile.linkMBps * 1_000 : undefined;
    this.halfRoundTripMs = profile.roundTripMs / 2;
    this.sigma = profile.jitterSigma;
  }

  requestDelayMs(operation: Operation, random: RandomStream, call?: Call): number {
    let jitter = 1;
    if (operation === Operation.lockCancel) {
      // The cancel of a waiting lock travels on the lock call's jitter.
      jitter = call?.jitter ?? 1;
      return this.halfRoundTripMs * jitter;
    }
    if (this.sigma > 0) jitter = random.lognormal(1, this.sigma);
    if (call !== undefined) call.jitter = jitter;
    return (roundTripsOf(operation) - 0.5) * this.profile.roundTripMs * jitter;
  }

  replyDelayMs(_operation: Operation, _random: RandomStream, call?: Call): number {
    return this.halfRoundTripMs * (call?.jitter ?? 1);
  }

  serviceMs(call: Call): number {
    const operation = call.operation;
    const base = (serviceWeights[operation] ?? 0) * this.profile.serviceMs + (flushes(operation, call.flags) ? this.profile.flushMs : 0);
    return base * call.jitter;
  }
}

/** The latency model for a scenario's profile (a name or the scenario's own description). */
export function latencyModelFor(profile: string | LatencyProfileInput): ProfileLatency {
  return new ProfileLatency(resolveProfile(profile));
}

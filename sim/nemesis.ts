/**
 * The nemesis: faults as data (kind, start, duration, target, parameters), each with its heal,
 * scheduled on a simulation and recorded in the trace as injected (control records `faultStart`
 * and `faultHeal`, the kind in the path column). At the heal time every fault still active is
 * healed and crashed clients are restarted: the liveness phase begins.
 *
 * All faults live here and in the simulated server, network and clocks (server.ts, nas.ts,
 * client.ts); the engine has no fault code. Fault kinds and their parameters (defaults in
 * `defaultFaultParameters`, which swarm mode draws from):
 *
 * Clients (target: a client name, 'any-client', 'any-sender', 'any-receiver', 'all-clients', or
 * 'lock-holder': the client holding the queue's header lock at the fault's time, or else the one
 * holding it a moment after the next grant, so that the fault lands inside a lock cycle):
 * - crash: the process dies at its current await; restarted after `restartAfterMs` (at the latest
 *   at the heal). The server drops its session at once.
 * - pause: stop-the-world for `durationMs`: no reply reaches the client's code and none of its
 *   timers fires until it resumes (requests already on the wire still reach the server).
 * - partition: the client's requests and replies hang in the network for `durationMs`; after
 *   `sessionTimeoutMs` of it the server drops the client's session (non-durable opens closed,
 *   locks released) while the client still believes it holds them.
 * - session-drop: the server drops the session now (as a network reset would).
 * - clock-skew (`offsetMs`, healed after `durationMs`) and clock-jump (`jumpMs`, kept until the heal).
 * - lose-notify / delay-notify (`delayMs`): CHANGE_NOTIFY events of the client's watches are
 *   dropped / reported late for `durationMs`.
 * - oplock-delay (`breakDelayMs`, at most the 35 s break timeout): for `durationMs` the client
 *   acknowledges oplock breaks late, so another client's open of a file it has open waits that long.
 *
 * The NAS (target 'server'):
 * - failover: the controller fails over: every request and reply stalls for `durationMs`. With
 *   `continuousAvailability` (a CA share: persistent handles, write-through) sessions survive the
 *   stall and nothing is lost. Without it every session is dropped at the start; durable handles
 *   (the queue's durableHandles option) survive with their locks as persistent handles would,
 *   unless the write cache is lost: without `batteryBacked` (default: the profile's) every file
 *   goes back to what was flushed, a flush in flight is torn at sector granularity, the time is
 *   recorded in `powerLossesMs`, and no handle survives (its writes may be gone).
 * - power-cut: the whole NAS loses power: the cache is lost unless `batteryBacked` (default
 *   false), every session and handle is gone (no persistent state survives a power loss of the
 *   whole NAS), and it reboots for `rebootMs` (calls hang meanwhile; 0 = back at once). Unlike a
 *   failover, its length is the reboot, not `durationMs`.
 * - disk-failure (`disk`, `level`, `disks`, `spareAfterMs`, `rebuildMs`): a disk of the array
 *   fails; the array runs degraded (storage service x degradedFactor), a spare is rebuilt after
 *   `spareAfterMs` for `rebuildMs` (x rebuildFactor meanwhile), or the array is lost if the
 *   failure is beyond its redundancy: storage calls fail with IO_ERROR and `arrayLost` is set
 *   (data loss is then the array's, not the engine's; the heal does not bring it back). `level`
 *   and `disks` reconfigure the profile's array (the first fault that names them wins).
 * - disk-slow (`disk`, `stallMs`): a disk without error recovery control stalls every storage
 *   request for `stallMs` (TLER ~7 s); locks and other in-memory requests go on.
 */

import { faultKinds, type BooleanParameter, type FaultKind, type NumberParameter } from '../scenarios/schema.js';
import { Operation } from './protocol.js';
import { ProfileLatency, type RaidLevel, resolveRaid } from './profiles.js';
import type { ServerSession } from './server.js';
import type { Simulation } from './simulation.js';
import { TraceKind } from './trace.js';

export interface NemesisFault {
  readonly kind: FaultKind;
  /** Start, ms of virtual time. */
  readonly atMs: number;
  /** Length before its own heal, ms; 0 = until the liveness phase. */
  readonly durationMs: number;
  /** A client name, 'any-client', 'any-sender', 'any-receiver', 'all-clients', 'lock-holder' or 'server'. */
  readonly target: string;
  /** Picks among the candidates of an 'any-*' target. */
  readonly choice: number;
  readonly parameters: Readonly<Record<string, number | boolean | string>>;
}

export type ClientEventKind = 'crash' | 'session-drop' | 'pause' | 'restart';

/** The target that means "the client holding the lock `NemesisOptions.lockHolder` names". */
export const lockHolderTarget = 'lock-holder';

/** Who holds the lock target 'lock-holder' means (run.ts: the queue's header lock). */
export interface LockHolderView {
  /** The client holding it now, if any. */
  now(): string | undefined;
  /** Calls `then` once, at the instant the lock is next granted (to anyone). */
  next(then: () => void): void;
}

export interface NemesisOptions {
  readonly senders: readonly string[];
  readonly receivers: readonly string[];
  /** Virtual time that fault times count from (the start of the workload), ms. */
  readonly startMs: number;
  /** When everything heals, ms of virtual time. */
  readonly healAtMs: number;
  /** Who holds the lock target 'lock-holder' means. Without it, 'lock-holder' faults never start. */
  readonly lockHolder?: LockHolderView;
  /** Told of every client-visible fault (for the justified-redelivery checker). */
  readonly onClientEvent?: (timeMs: number, client: string, event: ClientEventKind) => void;
}

export interface InjectedFault {
  readonly timeMs: number;
  readonly kind: FaultKind;
  readonly target: string;
  readonly phase: 'start' | 'heal';
}

export interface NemesisHandle {
  /** Every fault start and heal, in time order. */
  readonly injected: InjectedFault[];
  /** The RAID array failed beyond its redundancy (data loss is the array's). */
  readonly arrayLost: boolean;
  /** Times of power losses of a write cache without battery. */
  readonly powerLossesMs: readonly number[];
}

/** A parameter's default: a value, a range, or choices (swarm mode draws from them). */
export type FaultParameterDefault = NumberParameter | BooleanParameter | string;

/** The parameters each fault kind takes, with their default ranges (swarm mode draws from them). */
export function defaultFaultParameters(kind: FaultKind): Record<string, FaultParameterDefault> {
  switch (kind) {
    case 'crash':
      return { restartAfterMs: { min: 0, max: 2_000 } };
    case 'pause':
      return {};
    case 'partition':
      return { sessionTimeoutMs: { min: 500, max: 10_000 } };
    case 'session-drop':
      return {};
    case 'clock-skew':
      return { offsetMs: { min: -500, max: 500 } };
    case 'clock-jump':
      return { jumpMs: { min: -2_000, max: 2_000 } };
    case 'lose-notify':
      return {};
    case 'delay-notify':
      return { delayMs: { min: 100, max: 5_000 } };
    case 'oplock-delay':
      return { breakDelayMs: { min: 1_000, max: 35_000 } };
    case 'failover':
      return { continuousAvailability: [false, true], batteryBacked: [true, false] };
    case 'disk-failure':
      return { disk: { min: 0, max: 11 }, spareAfterMs: { min: 0, max: 2_000 }, rebuildMs: { min: 10_000, max: 3_600_000 } };
    case 'disk-slow':
      return { disk: { min: 0, max: 11 }, stallMs: { min: 500, max: 7_000 } };
    case 'power-cut':
      return { batteryBacked: false, rebootMs: { min: 0, max: 3_000 } };
    default:
      return {};
  }
}

/** Parameters each kind accepts (defaults plus optional ones). */
function acceptedParameters(kind: FaultKind): string[] {
  const names = Object.keys(defaultFaultParameters(kind));
  if (kind === 'disk-failure') names.push('level', 'disks');
  if (kind === 'disk-slow') names.push('level', 'disks');
  if (kind === 'failover') names.push('batteryBacked');
  return names;
}

/** Faults of the NAS itself (target 'server'); every other kind hits clients. */
export const serverFaultKinds: ReadonlySet<FaultKind> = new Set(['failover', 'disk-failure', 'disk-slow', 'power-cut']);

/** Is this a fault kind of the scenario schema (the nemesis implements every one)? */
function isFaultKind(kind: FaultKind): boolean {
  return (faultKinds as readonly string[]).includes(kind);
}

function targetsOf(fault: NemesisFault, options: NemesisOptions): string[] {
  const all = [...options.senders, ...options.receivers];
  switch (fault.target) {
    case 'all-clients':
      return all;
    case 'any-client':
      return all.length === 0 ? [] : [all[fault.choice % all.length]!];
    case 'any-sender':
      return options.senders.length === 0 ? [] : [options.senders[fault.choice % options.senders.length]!];
    case 'any-receiver':
      return options.receivers.length === 0 ? [] : [options.receivers[fault.choice % options.receivers.length]!];
    case 'server':
      return [];
    default:
      return all.includes(fault.target) ? [fault.target] : [];
  }
}

function numberParameter(fault: NemesisFault, name: string, fallback: number): number {
  const value = fault.parameters[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`nemesis: ${fault.kind} parameter ${name}: expected a finite number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function booleanParameter(fault: NemesisFault, name: string, fallback: boolean): boolean {
  const value = fault.parameters[name] ?? fallback;
  if (typeof value !== 'boolean') {
    throw new TypeError(`nemesis: ${fault.kind} parameter ${name}: expected a boolean, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkFault(fault: NemesisFault): void {
  if (!isFaultKind(fault.kind)) throw new TypeError(`nemesis: fault kind ${JSON.stringify(fault.kind)} is unknown`);
  const accepted = acceptedParameters(fault.kind);
  for (const name of Object.keys(fault.parameters)) {
    if (!accepted.includes(name)) {
      throw new TypeError(
        `nemesis: ${fault.kind} has no parameter ${JSON.stringify(name)}; expected ${accepted.length === 0 ? 'none' : accepted.join(', ')}`,
      );
    }
  }
  if (!Number.isFinite(fault.atMs) || !Number.isFinite(fault.durationMs) || fault.durationMs < 0) {
    throw new TypeError(`nemesis: ${fault.kind}: atMs must be finite and durationMs finite and >= 0, got ${fault.atMs} and ${fault.durationMs}`);
  }
}

const faultKindCodes: Record<string, number> = {};
faultKinds.forEach((kind, index) => (faultKindCodes[kind] = index + 1));

/** Schedules every fault and the final heal on the simulation. */
export function installNemesis(simulation: Simulation, faults: readonly NemesisFault[], options: NemesisOptions): NemesisHandle {
  for (const fault of faults) checkFault(fault);
  const server = simulation.server;
  const nas = server.nas;
  const profile = simulation.latency instanceof ProfileLatency ? simulation.latency.profile : undefined;
  const powerLossesMs: number[] = [];
  const injected: InjectedFault[] = [];
  const handle: NemesisHandle = {
    injected,
    get arrayLost(): boolean {
      return nas.raid.lost;
    },
    powerLossesMs,
  };
  const healAtMs = options.healAtMs;
  const powerRandom = simulation.random.stream('nemesis/power-loss');

  // The array: the profile's, unless a disk fault names a level or a disk count.
  const profileRaid = profile?.raid ?? nas.raid.configuration;
  const shaping = faults.find((fault) => (fault.kind === 'disk-failure' || fault.kind === 'disk-slow') && (fault.parameters['level'] !== undefined || fault.parameters['disks'] !== undefined));
  if (shaping !== undefined) {
    const level = shaping.parameters['level'];
    const disks = shaping.parameters['disks'];
    nas.raid.configure(
      resolveRaid(
        { ...(level === undefined ? {} : { level: Number(level) as RaidLevel }), ...(disks === undefined ? {} : { disks: Number(disks) }) },
        profileRaid,
        `nemesis ${shaping.kind}`,
      ),
    );
  } else {
    nas.raid.configure(profileRaid);
  }
  const profileBattery = profile?.batteryBacked ?? true;
  const losesCache = (fault: NemesisFault): boolean =>
    (fault.kind === 'power-cut' && !booleanParameter(fault, 'batteryBacked', false)) ||
    // A continuously available share writes through (Windows CA shares do): a failover loses nothing.
    (fault.kind === 'failover' && !booleanParameter(fault, 'batteryBacked', profileBattery) && !booleanParameter(fault, 'continuousAvailability', false));
  if (faults.some(losesCache)) server.trackDurability();

  const event = (client: string, kind: ClientEventKind): void => options.onClientEvent?.(simulation.nowMs, client, kind);
  const note = (kind: FaultKind, target: string, phase: 'start' | 'heal', parameter = 0): void => {
    injected.push({ timeMs: simulation.nowMs, kind, target, phase });
    const clientIndex = target === 'server' ? -1 : simulation.client(target).index;
    simulation.trace.record(
      simulation.nowMs,
      TraceKind.control,
      clientIndex,
      phase === 'start' ? Operation.faultStart : Operation.faultHeal,
      0,
      faultKindCodes[kind] ?? 0,
      parameter,
      0,
      kind,
    );
  };

  // Every active fault with its heal; each heals once, on its own time or at the heal of all.
  const active = new Map<number, { kind: FaultKind; target: string; heal: () => void }>();
  let nextFaultId = 1;
  const heal = (id: number): void => {
    const entry = active.get(id);
    if (entry === undefined) return;
    active.delete(id);
    entry.heal();
    note(entry.kind, entry.target, 'heal');
  };
  const begin = (kind: FaultKind, target: string, endMs: number, healAction: () => void, parameter = 0): void => {
    const id = nextFaultId;
    nextFaultId += 1;
    note(kind, target, 'start', parameter);
    active.set(id, { kind, target, heal: healAction });
    if (endMs < healAtMs) simulation.at(Math.max(simulation.nowMs, endMs), () => heal(id));
  };
  const clockHeals: Array<() => void> = [];

  /** Drops the active session of every running client (failover, power cut). */
  const dropAllSessions = (keepDurable: boolean): void => {
    const dropped = new Set<string>();
    for (const session of server.activeSessions() as ServerSession[]) {
      server.dropSession(session, { injected: true, keepDurable });
      dropped.add(session.clientName);
    }
    for (const client of simulation.clients) {
      if (dropped.has(client.name) && client.runtime !== null) event(client.name, 'session-drop');
    }
  };
  const losePower = (): void => {
    server.powerLoss(powerRandom);
    powerLossesMs.push(simulation.nowMs);
  };

  for (const fault of faults) {
    const atMs = Math.min(options.startMs + Math.max(0, fault.atMs), healAtMs);
    const endOf = (startMs: number): number => (fault.durationMs > 0 ? Math.min(startMs + fault.durationMs, healAtMs) : healAtMs);
    /** The fault's effect on `names` (client faults) or on the server, ending at `endMs`. */
    function strike(sim: Simulation, names: readonly string[], endMs: number): void {
      if (serverFaultKinds.has(fault.kind)) {
        switch (fault.kind) {
          case 'failover': {
            const continuous = booleanParameter(fault, 'continuousAvailability', false);
            nas.stallServer(endMs);
            begin('failover', 'server', endMs, () => nas.endServerStall(sim.nowMs), endMs - sim.nowMs);
            const lost = losesCache(fault);
            if (lost) losePower();
            // Durable handles survive the takeover with their locks, unless the cache their writes
            // sat in is gone: then the server refuses to reconnect them.
            if (!continuous) dropAllSessions(!lost);
            break;
          }
          case 'power-cut': {
            const rebootMs = Math.max(0, numberParameter(fault, 'rebootMs', 0));
            const backMs = Math.min(sim.nowMs + rebootMs, healAtMs);
            nas.stallServer(backMs);
            begin('power-cut', 'server', backMs, () => nas.endServerStall(sim.nowMs), rebootMs);
            if (losesCache(fault)) losePower();
            dropAllSessions(false);
            break;
          }
          case 'disk-failure': {
            const disk = Math.trunc(numberParameter(fault, 'disk', 0));
            const outcome = nas.raid.failDisk(disk);
            if (outcome === 'already-failed') break;
            if (outcome === 'lost') {
              // Beyond the redundancy: nothing heals a lost array.
              note('disk-failure', 'server', 'start', disk);
              break;
            }
            const spareAfterMs = Math.max(0, numberParameter(fault, 'spareAfterMs', 0));
            const rebuildMs = Math.max(0, numberParameter(fault, 'rebuildMs', nas.raid.configuration.rebuildMs));
            const spareAtMs = sim.nowMs + spareAfterMs;
            const rebuiltAtMs = spareAtMs + rebuildMs;
            begin('disk-failure', 'server', rebuiltAtMs, () => nas.raid.finishRebuild(disk), disk);
            if (spareAtMs < healAtMs) sim.at(spareAtMs, () => nas.raid.startRebuild(disk, rebuiltAtMs));
            break;
          }
          case 'disk-slow': {
            const stallMs = Math.max(0, numberParameter(fault, 'stallMs', 7_000));
            const untilMs = Math.min(sim.nowMs + stallMs, healAtMs);
            nas.raid.stallUntilMs = Math.max(nas.raid.stallUntilMs, untilMs);
            begin('disk-slow', 'server', untilMs, () => {
              if (nas.raid.stallUntilMs > sim.nowMs) nas.raid.stallUntilMs = sim.nowMs;
            }, stallMs);
            break;
          }
          default:
            break;
        }
        return;
      }
      for (const name of names) {
        const client = sim.client(name);
        switch (fault.kind) {
          case 'crash': {
            if (client.runtime === null) break; // finished or already down
            sim.crash(name);
            note('crash', name, 'start');
            event(name, 'crash');
            // The restart is booked at once, so the run knows the client will come back; at the
            // latest at the heal.
            const restartAfterMs = Math.max(0, Math.min(numberParameter(fault, 'restartAfterMs', 0), healAtMs - sim.nowMs));
            sim.restart(name, undefined, { afterMs: restartAfterMs });
            sim.at(sim.nowMs + restartAfterMs, () => {
              note('crash', name, 'heal');
              event(name, 'restart');
            });
            break;
          }
          case 'session-drop':
            if (client.runtime === null) break;
            server.dropSession(client.runtime.session, { injected: true });
            note('session-drop', name, 'start');
            event(name, 'session-drop');
            break;
          case 'clock-skew':
          case 'clock-jump': {
            const offsetMs = numberParameter(fault, fault.kind === 'clock-skew' ? 'offsetMs' : 'jumpMs', 0);
            sim.setClockOffset(name, client.clockOffsetMs + offsetMs);
            note(fault.kind, name, 'start', offsetMs);
            const healClock = (): void => {
              // Take back this fault's own share (another clock fault may still be on).
              sim.setClockOffset(name, client.clockOffsetMs - offsetMs);
              note(fault.kind, name, 'heal');
            };
            if (fault.kind === 'clock-skew' && endMs < healAtMs) sim.at(endMs, healClock);
            else clockHeals.push(healClock);
            break;
          }
          case 'pause': {
            if (client.runtime === null) break;
            nas.pause(client.index, endMs);
            event(name, 'pause');
            begin('pause', name, endMs, () => nas.resume(client.index, sim.nowMs), endMs - sim.nowMs);
            break;
          }
          case 'partition': {
            const sessionTimeoutMs = Math.max(0, numberParameter(fault, 'sessionTimeoutMs', 10_000));
            nas.partition(client.index, endMs);
            begin('partition', name, endMs, () => nas.healPartition(client.index, sim.nowMs), endMs - sim.nowMs);
            const dropAtMs = sim.nowMs + sessionTimeoutMs;
            if (dropAtMs < endMs) {
              sim.at(dropAtMs, () => {
                // The server gives up on the silent client: its session goes, with its locks.
                const runtime = client.runtime;
                if (runtime === null || !nas.isPartitioned(client.index, sim.nowMs) || !runtime.session.active) return;
                server.dropSession(runtime.session, { injected: true });
                event(name, 'session-drop');
              });
            }
            break;
          }
          case 'lose-notify':
          case 'delay-notify': {
            const delayMs = fault.kind === 'delay-notify' ? Math.max(1, numberParameter(fault, 'delayMs', 1_000)) : 0;
            server.setNotifyFault(name, fault.kind === 'lose-notify' ? { kind: 'lose' } : { kind: 'delay', delayMs });
            begin(fault.kind, name, endMs, () => server.setNotifyFault(name, null), delayMs);
            break;
          }
          case 'oplock-delay': {
            const breakDelayMs = Math.max(0, numberParameter(fault, 'breakDelayMs', 35_000));
            nas.setOplockBreakDelay(name, breakDelayMs);
            begin('oplock-delay', name, endMs, () => nas.setOplockBreakDelay(name, 0), breakDelayMs);
            break;
          }
          default:
            break;
        }
      }
    }

    if (fault.target === lockHolderTarget && !serverFaultKinds.has(fault.kind)) {
      // The client holding the lock now; if none does, look again a moment after the next grant
      // (0 to 0.9 ms, from the fault's choice: the holder may have its reply and be reading or
      // writing by then): crashes, drops, pauses and partitions inside a lock cycle on purpose.
      const lockHolder = options.lockHolder;
      if (lockHolder === undefined) continue;
      const strikeHolder = (sim: Simulation): void => {
        const holder = lockHolder.now();
        if (holder !== undefined) {
          strike(sim, [holder], endOf(sim.nowMs));
          return;
        }
        lockHolder.next(() => {
          const lookMs = sim.nowMs + (fault.choice % 10) * 0.1;
          if (lookMs < healAtMs) sim.at(lookMs, strikeHolder);
        });
      };
      simulation.at(atMs, strikeHolder);
      continue;
    }
    simulation.at(atMs, (sim) => strike(sim, targetsOf(fault, options), endOf(atMs)));
  }
  simulation.at(healAtMs, () => {
    for (const id of [...active.keys()]) heal(id);
    nas.raid.healAll();
    for (const healClock of clockHeals.splice(0)) healClock();
  });
  return handle;
}

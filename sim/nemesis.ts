/**
 * The nemesis: faults as data (kind, start, duration, target, parameters), each with its heal,
 * scheduled on a simulation and recorded in the trace as injected. At the heal time every fault
 * still active is healed and crashed clients are restarted: the liveness phase begins.
 *
 * All faults live here and in the simulated server, network and clocks; the engine has no fault
 * code.
 */

import type { FaultKind } from '../scenarios/schema.js';
import type { Simulation } from './simulation.js';

export interface NemesisFault {
  readonly kind: FaultKind;
  /** Start, ms of virtual time. */
  readonly atMs: number;
  /** Length before its own heal, ms; 0 = until the liveness phase. */
  readonly durationMs: number;
  /** A client name, 'any-client', 'any-sender', 'any-receiver', 'all-clients' or 'server'. */
  readonly target: string;
  /** Picks among the candidates of an 'any-*' target. */
  readonly choice: number;
  readonly parameters: Readonly<Record<string, number | boolean | string>>;
}

export type ClientEventKind = 'crash' | 'session-drop' | 'pause' | 'restart';

export interface NemesisOptions {
  readonly senders: readonly string[];
  readonly receivers: readonly string[];
  /** Virtual time that fault times count from (the start of the workload), ms. */
  readonly startMs: number;
  /** When everything heals, ms of virtual time. */
  readonly healAtMs: number;
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

/** The parameters each fault kind takes, with their default ranges (swarm mode draws from them). */
export function defaultFaultParameters(kind: FaultKind): Record<string, number | boolean | string | { min: number; max: number }> {
  switch (kind) {
    case 'crash':
      return { restartAfterMs: { min: 0, max: 2_000 } };
    case 'clock-skew':
      return { offsetMs: { min: -500, max: 500 } };
    case 'clock-jump':
      return { jumpMs: { min: -2_000, max: 2_000 } };
    default:
      return {};
  }
}

const implemented: ReadonlySet<FaultKind> = new Set(['crash', 'session-drop', 'clock-skew', 'clock-jump']);

export function isImplemented(kind: FaultKind): boolean {
  return implemented.has(kind);
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

/** Schedules every fault and the final heal on the simulation. */
export function installNemesis(simulation: Simulation, faults: readonly NemesisFault[], options: NemesisOptions): NemesisHandle {
  const handle = { injected: [] as InjectedFault[], arrayLost: false, powerLossesMs: [] as number[] };
  const event = (client: string, kind: ClientEventKind): void => options.onClientEvent?.(simulation.nowMs, client, kind);
  const note = (kind: FaultKind, target: string, phase: 'start' | 'heal'): void => {
    handle.injected.push({ timeMs: simulation.nowMs, kind, target, phase });
  };
  const heals: Array<() => void> = [];

  for (const fault of faults) {
    if (!implemented.has(fault.kind)) throw new TypeError(`nemesis: fault kind ${JSON.stringify(fault.kind)} is not implemented`);
    const atMs = Math.min(options.startMs + Math.max(0, fault.atMs), options.healAtMs);
    const endMs = fault.durationMs > 0 ? Math.min(atMs + fault.durationMs, options.healAtMs) : options.healAtMs;
    simulation.at(atMs, (sim) => {
      for (const name of targetsOf(fault, options)) {
        const client = sim.client(name);
        switch (fault.kind) {
          case 'crash': {
            if (client.runtime === null) break; // finished or already down
            sim.crash(name);
            note('crash', name, 'start');
            event(name, 'crash');
            // The restart is booked at once, so the run knows the client will come back; at the
            // latest at the heal.
            const restartAfterMs = Math.max(0, Math.min(Number(fault.parameters['restartAfterMs'] ?? 0), options.healAtMs - sim.nowMs));
            sim.restart(name, undefined, { afterMs: restartAfterMs });
            sim.at(sim.nowMs + restartAfterMs, () => {
              note('crash', name, 'heal');
              event(name, 'restart');
            });
            break;
          }
          case 'session-drop':
            if (client.runtime === null) break;
            sim.dropSession(name);
            note('session-drop', name, 'start');
            event(name, 'session-drop');
            break;
          case 'clock-skew':
          case 'clock-jump': {
            const offsetMs = Number(fault.parameters[fault.kind === 'clock-skew' ? 'offsetMs' : 'jumpMs'] ?? 0);
            sim.setClockOffset(name, client.clockOffsetMs + offsetMs);
            note(fault.kind, name, 'start');
            const heal = (): void => {
              sim.setClockOffset(name, 0);
              note(fault.kind, name, 'heal');
            };
            if (fault.kind === 'clock-skew' && endMs < options.healAtMs) sim.at(endMs, heal);
            else heals.push(heal);
            break;
          }
          default:
            break;
        }
      }
    });
  }
  simulation.at(options.healAtMs, () => {
    for (const heal of heals.splice(0)) heal();
  });
  return handle;
}

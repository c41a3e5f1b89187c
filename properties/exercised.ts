/**
 * What a run exercised: how often each fault, error path and rare engine situation happened.
 *
 * A property that held proves little if the situation it guards never came up: a check of
 * `controller-failover` whose failovers all fell after the workload ended passes without testing
 * anything. Each run counts its events (`exercisedOf`); the check sums them per scenario with the
 * number of runs that saw each (`ExercisedTally`), prints what was scheduled but never happened,
 * and puts the table in `--json` and in reports (FoundationDB's code-coverage probes and Jepsen's
 * operation statistics answer the same question).
 *
 * Names (stable: reports and CI scripts read them):
 * - `fault:<kind>`: faults of the nemesis that started.
 * - `crash`, `restart`, `session-drop`, `pause`: what clients lived through.
 * - `header-lock:contended`: header-lock requests that found it taken (and waited, or gave up).
 * - `header-lock:lost`: header locks the server released because their holder's session was lost
 *   (a crash, a drop, a durable handle that expired): the holder may still believe it holds it.
 * - `header-lock:queued-ahead`: header-lock waiters the share queued ahead of earlier ones
 *   (scenario option randomLockWaiterOrder: granted before clients that waited longer).
 * - `journal-flush`: writes to the kernel's slot area (the journal full, flushed to the slots).
 * - `redelivery`: deliveries of a message delivered before (a lease ran out, a release).
 * - `dead-letter`: messages in the dead letters at the end.
 * - `power-loss`: power cuts of a write cache without battery.
 * - `outcome:unknown`: operations whose outcome the client could not know (info).
 * - `error:<CODE>`: operations that ended in that engine error (or `crash`, `pending`).
 */

import type { History } from './history.js';

/** Entries in the order of their names (code units: the same on every machine). */
const byName = ([a]: readonly [string, unknown], [b]: readonly [string, unknown]): number => (a < b ? -1 : a > b ? 1 : 0);

/** Event name -> how often it happened in one run (only events that happened). */
export type Exercised = Readonly<Record<string, number>>;

export interface ExercisedInputs {
  readonly history: History;
  /** Faults that started, by kind. */
  readonly faultKinds: readonly string[];
  readonly clientEvents: ReadonlyArray<{ readonly event: string }>;
  readonly headerLockConflicts: number;
  readonly headerLocksLost: number;
  readonly headerLockWaitersQueuedAhead: number;
  readonly slotAreaWrites: number;
  readonly deadLetters: number;
  readonly powerLosses: number;
}

/** The events of one run, by name (sorted, zero counts left out). */
export function exercisedOf(inputs: ExercisedInputs): Exercised {
  const counts = new Map<string, number>();
  const add = (name: string, count = 1): void => {
    if (count > 0) counts.set(name, (counts.get(name) ?? 0) + count);
  };
  for (const kind of inputs.faultKinds) add(`fault:${kind}`);
  for (const { event } of inputs.clientEvents) add(event);
  add('header-lock:contended', inputs.headerLockConflicts);
  add('header-lock:lost', inputs.headerLocksLost);
  add('header-lock:queued-ahead', inputs.headerLockWaitersQueuedAhead);
  add('journal-flush', inputs.slotAreaWrites);
  add('dead-letter', inputs.deadLetters);
  add('power-loss', inputs.powerLosses);
  for (const operation of inputs.history.operations) {
    if (operation.outcome === 'info') add('outcome:unknown');
    if (operation.outcome !== 'ok' && operation.error !== undefined) add(`error:${operation.error}`);
    if (operation.kind === 'receive' && operation.outcome === 'ok') {
      for (const delivered of operation.deliveries ?? []) if (delivered.deliveryCount > 1) add('redelivery');
    }
  }
  return Object.fromEntries([...counts].sort(byName));
}

/** One event over the runs of a scenario: how often in all, and in how many runs. */
export interface ExercisedTotal {
  readonly count: number;
  readonly runs: number;
}

/** Event name -> its total over runs (sorted by name). */
export type ExercisedTotals = Readonly<Record<string, ExercisedTotal>>;

/** Sums the events of runs (and of tallies of other shards). */
export class ExercisedTally {
  private readonly totals = new Map<string, { count: number; runs: number }>();

  addRun(exercised: Exercised): void {
    for (const [name, count] of Object.entries(exercised)) this.add(name, count, count > 0 ? 1 : 0);
  }

  addTotals(totals: ExercisedTotals): void {
    for (const [name, total] of Object.entries(totals)) this.add(name, total.count, total.runs);
  }

  totalsSorted(): ExercisedTotals {
    return Object.fromEntries([...this.totals].sort(byName).map(([name, total]) => [name, { ...total }]));
  }

  private add(name: string, count: number, runs: number): void {
    const total = this.totals.get(name);
    if (total === undefined) this.totals.set(name, { count, runs });
    else {
      total.count += count;
      total.runs += runs;
    }
  }
}

/**
 * Fault kinds the scenario's runs scheduled (`scheduledKinds`, over every run) that never started
 * in any of them: the check did not exercise what the scenario asks for.
 */
export function neverExercised(scheduledKinds: Iterable<string>, totals: ExercisedTotals): string[] {
  const missing = new Set<string>();
  for (const kind of scheduledKinds) if (totals[`fault:${kind}`] === undefined) missing.add(kind);
  return [...missing].sort();
}

/** One line per event: `name  count in runs/total runs`. */
export function formatExercised(totals: ExercisedTotals, runs: number): string[] {
  const names = Object.keys(totals);
  const width = Math.max(0, ...names.map((name) => name.length));
  return names.map((name) => {
    const { count, runs: seen } = totals[name]!;
    return `${name.padEnd(width)}  ${String(count).padStart(8)} in ${seen}/${runs} runs`;
  });
}

/** The warning line for fault kinds a scenario scheduled but never started (no indent). */
export function describeNeverExercised(kinds: readonly string[], runs: number): string {
  return `not exercised: ${kinds.join(', ')} (scheduled, but started in none of the ${runs} runs)`;
}

/**
 * The `time-order` checker, judged in O(n log n) for long histories (a 10-minute torture of real
 * processes records about 10^5 messages; the plain definition, a loop over every ready send for
 * every delivery, is quadratic: minutes at 2 * 10^4). Same verdict as the plain definition
 * (test-support/time-order-reference.ts; time-order.test.ts compares the two on random histories):
 *
 * 1. No message is delivered before its delivery time (receiver's clock, within the skew bound).
 * 2. A receive R that took message M on its first delivery is wrong if some other message O,
 *    whose send completed before R was invoked, was ready (due by R's invocation on R's clock),
 *    due clearly earlier than M (by more than twice the skew bound), and taken by nobody by R's
 *    completion ("taken" as takenThresholds below decides it).
 *
 * For 2, "taken by time t" is, for each message, a threshold: taken(O, t) iff t >= takenAt(O).
 * So the messages that can testify against R are those with sendComplete < R.invoke and
 * takenAt > R.complete, and the one due earliest is the strongest witness: R is wrong iff that
 * earliest due time is ready and clearly before M's. A sweep over receives in invocation order
 * inserts sends as they complete into a Fenwick tree over takenAt (descending), holding the
 * earliest due time; a prefix query gives the earliest among those not yet taken.
 */

import type { CheckConfig, CheckResult } from './checkers.js';
import type { History, Operation } from './history.js';

/** At most this many problems are spelled out (as the checkers do). */
const problemsShown = 5;

interface Witness {
  readonly id: string;
  readonly deliverAt: number;
  readonly operation: Operation;
}

/** Fenwick tree of prefix minima (by due time) over positions 1..size. */
class PrefixMinimum {
  readonly #tree: Array<Witness | undefined>;

  constructor(readonly size: number) {
    this.#tree = new Array<Witness | undefined>(size + 1).fill(undefined);
  }

  insert(position: number, witness: Witness): void {
    for (let at = position; at <= this.size; at += at & -at) {
      const held = this.#tree[at];
      if (held === undefined || witness.deliverAt < held.deliverAt) this.#tree[at] = witness;
    }
  }

  /** The earliest-due witness among positions 1..position. */
  query(position: number): Witness | undefined {
    let best: Witness | undefined;
    for (let at = position; at > 0; at -= at & -at) {
      const held = this.#tree[at];
      if (held !== undefined && (best === undefined || held.deliverAt < best.deliverAt)) best = held;
    }
    return best;
  }
}

/**
 * takenAt(id): the earliest time from which a message counts as possibly taken by some receive.
 * It is taken by `timeMs` (takenAt <= timeMs) if a recorded receive
 * invoked by then got it; or if it was never recorded as delivered and a receive of unknown
 * outcome (whose client crashed) was invoked by then; or if its first recorded delivery is not its
 * first and any receive was invoked by then: besides a receive of unknown outcome, a receive that
 * returned can have taken it and dropped it unrecorded (its lease ran out while it read the body,
 * the next holder acked it and removed the body, so the engine skipped it as missing).
 */
export function takenThresholds(history: History): (id: string) => number {
  const firstInvoke = new Map<string, number>();
  const firstCount = new Map<string, number>();
  let firstUnknownReceiveMs = Number.POSITIVE_INFINITY;
  let firstReceiveMs = Number.POSITIVE_INFINITY;
  for (const operation of history.operations) {
    if (operation.kind !== 'receive') continue;
    firstReceiveMs = Math.min(firstReceiveMs, operation.invokeMs);
    if (operation.outcome === 'info') firstUnknownReceiveMs = Math.min(firstUnknownReceiveMs, operation.invokeMs);
    for (const message of operation.deliveries ?? []) {
      if (firstInvoke.has(message.id)) continue;
      firstInvoke.set(message.id, operation.invokeMs);
      firstCount.set(message.id, message.deliveryCount);
    }
  }
  return (id) => {
    const first = firstInvoke.get(id);
    if (first === undefined) return firstUnknownReceiveMs;
    // Redelivered before its first recorded delivery: any receive may have taken it unrecorded.
    return firstCount.get(id)! > 1 ? Math.min(first, firstReceiveMs) : first;
  };
}

/** The time-order verdict of a history, as runCheckers gives it for 'time-order'. */
export function timeOrder(history: History, config: Pick<CheckConfig, 'skewBoundMs'>): CheckResult {
  const skewMs = config.skewBoundMs;
  const problems: string[] = [];
  const operations: number[] = [];
  const sends: Witness[] = [];
  const seen = new Set<string>();
  // ok sends by id, the last one for an id (as the checkers' map keeps it).
  for (let index = history.operations.length - 1; index >= 0; index -= 1) {
    const operation = history.operations[index]!;
    if (operation.kind !== 'send' || operation.outcome !== 'ok') continue;
    const sent = operation.sends ?? [];
    for (let position = sent.length - 1; position >= 0; position -= 1) {
      const { id, deliverAt } = sent[position]!;
      if (id === undefined || seen.has(id)) continue;
      seen.add(id);
      sends.push({ id, deliverAt, operation });
    }
  }
  const receives = history.operations.filter((operation) => operation.kind === 'receive' && operation.outcome === 'ok');

  // 1. Never before the delivery time.
  for (const receive of receives) {
    for (const message of receive.deliveries ?? []) {
      if (receive.completeClockMs! + skewMs < message.deliverAt) {
        problems.push(`${message.id} delivered at ${receive.completeClockMs} (receiver's clock), due at ${message.deliverAt}`);
        operations.push(receive.index);
      }
    }
  }

  // 2. Never a later message while an earlier ready one, sent before and taken by nobody, waits.
  const takenAt = takenThresholds(history);
  const thresholds = [...new Set(sends.map((witness) => takenAt(witness.id)))].sort((a, b) => b - a);
  // Position (1-based) of a threshold in descending order; "takenAt > t" is a prefix.
  const positionOf = new Map(thresholds.map((threshold, index) => [threshold, index + 1]));
  const prefixAbove = (timeMs: number): number => {
    let low = 0;
    let high = thresholds.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (thresholds[middle]! > timeMs) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  const tree = new PrefixMinimum(thresholds.length);
  const byCompletion = [...sends].sort((a, b) => a.operation.completeMs! - b.operation.completeMs!);
  const byInvocation = [...receives].sort((a, b) => a.invokeMs - b.invokeMs || a.index - b.index);
  let inserted = 0;
  let violations = 0;
  for (const receive of byInvocation) {
    while (inserted < byCompletion.length && byCompletion[inserted]!.operation.completeMs! < receive.invokeMs) {
      const witness = byCompletion[inserted]!;
      tree.insert(positionOf.get(takenAt(witness.id))!, witness);
      inserted += 1;
    }
    const firstDeliveries = (receive.deliveries ?? []).filter((message) => message.deliveryCount === 1);
    if (firstDeliveries.length === 0) continue;
    const earliest = tree.query(prefixAbove(receive.completeMs!));
    if (earliest === undefined || earliest.deliverAt > receive.invokeClockMs - skewMs) continue;
    for (const message of firstDeliveries) {
      // The message itself was taken by this receive, so it is never its own witness.
      if (earliest.id === message.id || earliest.deliverAt + 2 * skewMs >= message.deliverAt) continue;
      violations += 1;
      if (violations > problemsShown + 1) continue;
      problems.push(`${receive.client} took ${message.id} (due ${message.deliverAt}) while ${earliest.id} (due ${earliest.deliverAt}) was ready and waiting`);
      operations.push(receive.index, earliest.operation.index);
    }
  }
  if (problems.length === 0) {
    return { checker: 'time-order', kind: 'correctness', validity: 'valid', explanation: 'no delivery came early, and none overtook an earlier ready message', operations: [], tracePositions: [] };
  }
  const total = problems.length - Math.min(violations, problemsShown + 1) + violations;
  const shown = problems.slice(0, problemsShown).join('; ');
  return {
    checker: 'time-order',
    kind: 'correctness',
    validity: 'invalid',
    explanation: `${total} time-order violations: ${shown}${total > problemsShown ? '; ...' : ''}`,
    operations,
    tracePositions: [],
  };
}

/**
 * Checkers: each reads a run's history and the server's observations and says whether a property
 * held. A result is `valid`, `invalid` or `unknown` (the run cannot tell, e.g. the RAID array was
 * lost), with an explanation that points at history operations and trace positions. Results
 * compose: invalid beats unknown beats valid.
 *
 * Correctness properties fail a check with exit code 1, liveness properties with exit code 3.
 */

import { takenThresholds, timeOrder as timeOrderOf } from './time-order.js';
import type { DeliveredMessage, History, Operation } from './history.js';

export type Validity = 'valid' | 'invalid' | 'unknown';
export type PropertyKind = 'correctness' | 'liveness';

export interface CheckResult {
  readonly checker: CheckerName;
  readonly kind: PropertyKind;
  readonly validity: Validity;
  readonly explanation: string;
  /** History operations involved (indexes). */
  readonly operations: number[];
  /** Trace positions involved. */
  readonly tracePositions: number[];
}

/** What the server saw during the run (collected by the runner, not by the engine). */
export interface Observations {
  /** Kernel invariant violations found after a write of the kernel file. */
  readonly kernelViolations: Array<{ timeMs: number; tracePosition: number; client: string; violations: string[] }>;
  /** Writes of the kernel file by an open that did not hold the header lock. */
  readonly unlockedWrites: Array<{ timeMs: number; tracePosition: number; client: string; position: number; length: number }>;
  /** Header commits whose generation was not one more than the previous commit's. */
  readonly generationBreaks: Array<{ timeMs: number; tracePosition: number; client: string; previous: number; written: number }>;
  /** Ids in the kernel at the end (unread or pending). */
  readonly remainingIds: ReadonlySet<string>;
  /** Ids in the dead-letter directory at the end. */
  readonly deadIds: ReadonlySet<string>;
  /** Ids with a body file in the message directory at the end. */
  readonly bodyIds: ReadonlySet<string>;
  /** Crashes, session drops and restarts by client, with virtual times. */
  readonly clientEvents: Array<{ timeMs: number; client: string; event: 'crash' | 'session-drop' | 'pause' | 'restart' }>;
  /** Virtual time at which the faults were healed and the liveness phase began. */
  readonly healAtMs: number;
  /** Virtual time at which the run ended. */
  readonly endMs: number;
  /** The RAID array failed beyond its redundancy: data loss is the array's, not the engine's. */
  readonly arrayLost: boolean;
  /** Times of power losses of a write cache that is not battery-backed. */
  readonly powerLossesMs: number[];
}

export interface CheckConfig {
  /** Largest difference between two clients' clocks, ms. */
  readonly skewBoundMs: number;
  /** After heal, the longest a ready message may wait while a receiver is idle, ms. */
  readonly livenessBoundMs: number;
  /** Sends fsync before returning: a power loss cannot take what they sent. */
  readonly durable: boolean;
}

export interface CheckInput {
  readonly history: History;
  readonly observations: Observations;
  readonly config: CheckConfig;
}

export const checkerNames = [
  'header-invariants',
  'mutual-exclusion',
  'no-loss',
  'exactly-once',
  'justified-redelivery',
  'time-order',
  'liveness',
] as const;
export type CheckerName = (typeof checkerNames)[number];

export const checkerDescriptions: Record<CheckerName, string> = {
  'header-invariants':
    'after every write of the kernel file its header and slots are consistent (counts equal group sizes, the groups partition the slots, no cycles, offsets in range, unread ordered by delivery time, checksums valid) and each commit is exactly one generation after the last',
  'mutual-exclusion': 'nobody writes the kernel file without holding the header lock',
  'no-loss': 'every message whose send returned is acked (or dead-lettered) by the end of the run',
  'exactly-once':
    'no message is acked twice or delivered after its ack, every delivery is a message that was sent, with its own body, and an acked message leaves no body file behind',
  'justified-redelivery':
    'a message is delivered again only if its previous holder released it, crashed, lost its session, or let its lease run out',
  'time-order':
    'no message is delivered before its delivery time (within the clock-skew bound), and a receiver never takes a later message while an earlier ready one waits',
  liveness:
    'after the faults heal, no ready message waits longer than the bound while a receiver comes back empty-handed, every sent message gets acked, and no client is stuck in a call',
};

export const checkerKinds: Record<CheckerName, PropertyKind> = {
  'header-invariants': 'correctness',
  'mutual-exclusion': 'correctness',
  'no-loss': 'correctness',
  'exactly-once': 'correctness',
  'justified-redelivery': 'correctness',
  'time-order': 'correctness',
  liveness: 'liveness',
};

type Checker = (input: CheckInput) => Omit<CheckResult, 'checker' | 'kind'>;

const valid = (explanation: string): Omit<CheckResult, 'checker' | 'kind'> => ({ validity: 'valid', explanation, operations: [], tracePositions: [] });

/** At most this many problems are spelled out per checker. */
const problemsShown = 5;

function summarize(problems: string[], what: string): string {
  const shown = problems.slice(0, problemsShown).join('; ');
  return problems.length > problemsShown ? `${problems.length} ${what}: ${shown}; ...` : `${problems.length} ${what}: ${shown}`;
}

// ---------------------------------------------------------------------------------------------
// Derived facts shared by several checkers

interface Delivery {
  readonly operation: Operation;
  readonly message: DeliveredMessage;
}

export interface Facts {
  /** ok sends by id. */
  okSends: Map<string, { operation: Operation; deliverAt: number; body: string }>;
  /** Every attempted body (ok or info), by body text. */
  attemptedBodies: Map<string, Operation>;
  deliveries: Map<string, Delivery[]>;
  acks: Map<string, Operation[]>;
  releases: Map<string, Operation[]>;
  /** Virtual time at which each client's clock read ahead of server time (client clock - server time), by operation. */
}

export function facts(history: History): Facts {
  const okSends = new Map<string, { operation: Operation; deliverAt: number; body: string }>();
  const attemptedBodies = new Map<string, Operation>();
  const deliveries = new Map<string, Delivery[]>();
  const acks = new Map<string, Operation[]>();
  const releases = new Map<string, Operation[]>();
  const push = <T>(map: Map<string, T[]>, key: string, value: T): void => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [value]);
    else list.push(value);
  };
  for (const operation of history.operations) {
    switch (operation.kind) {
      case 'send':
        for (const sent of operation.sends ?? []) {
          if (operation.outcome !== 'fail') attemptedBodies.set(sent.body, operation);
          if (operation.outcome === 'ok' && sent.id !== undefined) okSends.set(sent.id, { operation, deliverAt: sent.deliverAt, body: sent.body });
        }
        break;
      case 'receive':
        if (operation.outcome === 'ok') for (const message of operation.deliveries ?? []) push(deliveries, message.id, { operation, message });
        break;
      case 'ack':
        if (operation.target !== undefined && operation.outcome !== 'fail') push(acks, operation.target.id, operation);
        break;
      case 'release':
        if (operation.target !== undefined && operation.outcome !== 'fail') push(releases, operation.target.id, operation);
        break;
      default:
        break;
    }
  }
  // In the order the queue handed the message out (its delivery count): a reply held up in the
  // network (a partition, a pause) can complete an earlier delivery after a later one.
  for (const list of deliveries.values()) {
    list.sort(
      (a, b) =>
        a.message.deliveryCount - b.message.deliveryCount || a.operation.completeMs! - b.operation.completeMs! || a.operation.index - b.operation.index,
    );
  }
  return { okSends, attemptedBodies, deliveries, acks, releases };
}

/** Client clock minus server time at an operation's completion. */
function clockOffsetAt(operation: Operation): number {
  return (operation.completeClockMs ?? operation.invokeClockMs) - (operation.completeMs ?? operation.invokeMs);
}

/** Could a message have been taken by some receive by `timeMs`? (See takenThresholds.) */
export function takenByTime(history: History): (id: string, timeMs: number) => boolean {
  const takenAt = takenThresholds(history);
  return (id, timeMs) => takenAt(id) <= timeMs;
}

// ---------------------------------------------------------------------------------------------
// The checkers

const headerInvariants: Checker = ({ observations }) => {
  const first = observations.kernelViolations[0];
  if (first !== undefined) {
    return {
      validity: 'invalid',
      explanation: `after a write by ${first.client} at ${first.timeMs.toFixed(3)} ms: ${first.violations.slice(0, 3).join('; ')}`,
      operations: [],
      tracePositions: observations.kernelViolations.slice(0, problemsShown).map((entry) => entry.tracePosition),
    };
  }
  const jump = observations.generationBreaks[0];
  if (jump !== undefined) {
    return {
      validity: 'invalid',
      explanation: `${jump.client} committed generation ${jump.written} over generation ${jump.previous} at ${jump.timeMs.toFixed(3)} ms: it wrote from a stale header`,
      operations: [],
      tracePositions: observations.generationBreaks.slice(0, problemsShown).map((entry) => entry.tracePosition),
    };
  }
  return valid('every write left a consistent kernel file, one generation at a time');
};

const mutualExclusion: Checker = ({ observations }) => {
  const writes = observations.unlockedWrites;
  if (writes.length === 0) return valid('every kernel write came from the holder of the header lock');
  return {
    validity: 'invalid',
    explanation: summarize(
      writes.map((write) => `${write.client} wrote ${write.length} bytes at ${write.position} without the header lock at ${write.timeMs.toFixed(3)} ms`),
      'writes without the header lock',
    ),
    operations: [],
    tracePositions: writes.slice(0, problemsShown).map((write) => write.tracePosition),
  };
};

/** Is a message resolved: acked, dead-lettered, or gone after an ack of unknown outcome? */
function resolution(id: string, known: Facts, observations: Observations): 'acked' | 'dead' | 'remaining' | 'missing' {
  const acks = known.acks.get(id) ?? [];
  if (acks.some((ack) => ack.outcome === 'ok')) return 'acked';
  if (observations.deadIds.has(id)) return 'dead';
  if (observations.remainingIds.has(id)) return 'remaining';
  if (acks.length > 0) return 'acked'; // an ack of unknown outcome, and the message is gone: it took effect
  return 'missing';
}

const noLoss: Checker = ({ history, observations, config }) => {
  const known = facts(history);
  const lost: string[] = [];
  const operations: number[] = [];
  const excusedByPower: string[] = [];
  for (const [id, sent] of known.okSends) {
    if (resolution(id, known, observations) !== 'missing') continue;
    const sentMs = sent.operation.completeMs ?? 0;
    if (!config.durable && observations.powerLossesMs.some((timeMs) => timeMs >= sentMs)) {
      excusedByPower.push(id);
      continue;
    }
    lost.push(`${id} (sent by ${sent.operation.client} at ${sentMs.toFixed(3)} ms)`);
    operations.push(sent.operation.index);
  }
  if (lost.length > 0) {
    if (observations.arrayLost) {
      return { validity: 'unknown', explanation: `the RAID array was lost, and with it ${lost.length} messages (array loss, not an engine bug)`, operations, tracePositions: [] };
    }
    return { validity: 'invalid', explanation: summarize(lost, 'messages lost: sent, never acked, and no longer in the queue'), operations, tracePositions: [] };
  }
  if (excusedByPower.length > 0) {
    return {
      validity: 'unknown',
      explanation: `${excusedByPower.length} messages sent without --durable were lost in a power cut of a cache without battery (allowed by design)`,
      operations: [],
      tracePositions: [],
    };
  }
  return valid(`all ${known.okSends.size} sent messages were acked or dead-lettered`);
};

const exactlyOnce: Checker = ({ history, observations }) => {
  const known = facts(history);
  const problems: string[] = [];
  const operations: number[] = [];
  for (const [id, acks] of known.acks) {
    const okAcks = acks.filter((ack) => ack.outcome === 'ok');
    if (okAcks.length > 1) {
      problems.push(`${id} acked ${okAcks.length} times (${okAcks.map((ack) => `#${ack.index} by ${ack.client}`).join(', ')})`);
      operations.push(...okAcks.map((ack) => ack.index));
    }
    // Fencing: an ack succeeds only for the newest delivery; once the message was delivered
    // again, an ack with the older lease must be refused.
    const deliveries = known.deliveries.get(id) ?? [];
    for (const ack of okAcks) {
      const own = deliveries.find((delivery) => delivery.message.leaseToken === ack.target!.leaseToken);
      if (own === undefined) continue; // its delivery's outcome is unknown
      const newer = deliveries.find((delivery) => delivery.message.deliveryCount > own.message.deliveryCount && delivery.operation.completeMs! < ack.invokeMs);
      if (newer !== undefined) {
        problems.push(`${id} acked by ${ack.client} (#${ack.index}) with a lease taken over by ${newer.operation.client} (#${newer.operation.index})`);
        operations.push(ack.index, newer.operation.index);
      }
    }
    const firstAck = okAcks[0];
    if (firstAck === undefined) continue;
    for (const delivery of known.deliveries.get(id) ?? []) {
      if (delivery.operation.invokeMs > firstAck.completeMs!) {
        problems.push(`${id} delivered (#${delivery.operation.index}) after its ack (#${firstAck.index})`);
        operations.push(delivery.operation.index, firstAck.index);
      }
    }
  }
  // A body file means a message not yet acked (fsck --repair relies on it): a message that left
  // the queue must not leave its body behind.
  for (const id of observations.bodyIds) {
    const left = !observations.remainingIds.has(id) && !observations.deadIds.has(id);
    const acked = (known.acks.get(id) ?? []).length > 0;
    if (left && acked) {
      problems.push(`${id} left the queue through an ack but its body file is still there (a repair would deliver it again)`);
      operations.push(...(known.acks.get(id) ?? []).map((ack) => ack.index));
    }
  }
  for (const [id, deliveries] of known.deliveries) {
    for (const { operation, message } of deliveries) {
      const sent = known.okSends.get(id);
      if (sent !== undefined) {
        if (sent.body !== message.body) {
          problems.push(`${id} delivered with body ${JSON.stringify(message.body.slice(0, 40))}, sent with ${JSON.stringify(sent.body.slice(0, 40))}`);
          operations.push(operation.index, sent.operation.index);
        }
      } else if (!known.attemptedBodies.has(message.body)) {
        problems.push(`${id} delivered (#${operation.index}) but never sent`);
        operations.push(operation.index);
      }
    }
  }
  if (problems.length > 0) return { validity: 'invalid', explanation: summarize(problems, 'exactly-once violations'), operations, tracePositions: [] };
  return valid('no message was acked twice, delivered after its ack, or delivered without being sent');
};

const justifiedRedelivery: Checker = ({ history, observations, config }) => {
  const known = facts(history);
  const problems: string[] = [];
  const operations: number[] = [];
  const eventsOf = new Map<string, Array<{ timeMs: number; event: string }>>();
  for (const entry of observations.clientEvents) {
    const list = eventsOf.get(entry.client) ?? [];
    list.push(entry);
    eventsOf.set(entry.client, list);
  }
  for (const [id, deliveries] of known.deliveries) {
    for (let index = 1; index < deliveries.length; index += 1) {
      const previous = deliveries[index - 1]!;
      const next = deliveries[index]!;
      const holder = previous.operation.client;
      const from = previous.operation.completeMs!;
      const until = next.operation.completeMs!;
      const released = (known.releases.get(id) ?? []).some(
        (release) => release.client === holder && release.target?.leaseToken === previous.message.leaseToken && release.invokeMs <= until,
      );
      if (released) continue;
      const holderTrouble = (eventsOf.get(holder) ?? []).some((entry) => entry.timeMs >= previous.operation.invokeMs && entry.timeMs <= until);
      if (holderTrouble) continue;
      // The lease in server time, from the holder's clock offset when it took the message.
      const expiryServerMs = previous.message.leaseExpiry - clockOffsetAt(previous.operation);
      if (until + config.skewBoundMs >= expiryServerMs) continue;
      problems.push(
        `${id} redelivered to ${next.operation.client} at ${until.toFixed(3)} ms while ${holder}'s lease ran until ${expiryServerMs.toFixed(3)} ms, with no release, crash or lost session`,
      );
      operations.push(previous.operation.index, next.operation.index);
    }
  }
  if (problems.length > 0) return { validity: 'invalid', explanation: summarize(problems, 'unjustified redeliveries'), operations, tracePositions: [] };
  return valid('every redelivery followed a release, a crash, a lost session or an expired lease');
};

// Sweeps the history once (O(n log n)): see time-order.ts, and its test against the plain
// definition (test-support/time-order-reference.ts).
const timeOrder: Checker = ({ history, config }) => {
  const { checker: _checker, kind: _kind, ...result } = timeOrderOf(history, config);
  return result;
};

const liveness: Checker = ({ history, observations, config }) => {
  const known = facts(history);
  const problems: string[] = [];
  const operations: number[] = [];
  const stuck = history.operations.filter((operation) => operation.error === 'pending');
  for (const operation of stuck.slice(0, problemsShown)) {
    problems.push(`${operation.client} was still in ${operation.kind} (#${operation.index}, since ${operation.invokeMs.toFixed(3)} ms) when the run ended`);
    operations.push(operation.index);
  }
  const unresolved: string[] = [];
  for (const [id, sent] of known.okSends) {
    if (resolution(id, known, observations) !== 'remaining') continue;
    unresolved.push(id);
    if (unresolved.length <= problemsShown) operations.push(sent.operation.index);
  }
  if (unresolved.length > 0) problems.push(summarize(unresolved, 'sent messages still in the queue at the end'));
  // An empty-handed receive after heal, while a ready message that nobody took waited.
  const taken = takenByTime(history);
  for (const receive of history.operations) {
    if (receive.kind !== 'receive' || receive.outcome !== 'ok' || (receive.deliveries?.length ?? 0) > 0) continue;
    if (receive.invokeMs < observations.healAtMs) continue;
    if (receive.completeMs! - receive.invokeMs < config.livenessBoundMs) continue;
    for (const [id, sent] of known.okSends) {
      if (sent.operation.completeMs! >= receive.invokeMs) continue;
      if (sent.deliverAt > receive.invokeClockMs - config.skewBoundMs) continue;
      if (taken(id, receive.completeMs!)) continue;
      problems.push(`${receive.client} waited ${(receive.completeMs! - receive.invokeMs).toFixed(0)} ms and got nothing while ${id} was ready (#${receive.index})`);
      operations.push(receive.index);
      break;
    }
  }
  if (problems.length > 0 && observations.arrayLost) {
    // A lost array cannot deliver anything: the run cannot tell whether the engine would have settled.
    return { validity: 'unknown', explanation: `the RAID array was lost, so the run could not settle (array loss, not an engine bug): ${problems.join('; ')}`, operations, tracePositions: [] };
  }
  if (problems.length > 0) return { validity: 'invalid', explanation: problems.join('; '), operations, tracePositions: [] };
  return valid('after heal every message got acked and no receiver came back empty-handed while one was ready');
};

const checkers: Record<CheckerName, Checker> = {
  'header-invariants': headerInvariants,
  'mutual-exclusion': mutualExclusion,
  'no-loss': noLoss,
  'exactly-once': exactlyOnce,
  'justified-redelivery': justifiedRedelivery,
  'time-order': timeOrder,
  liveness,
};

/** Runs the named checkers (default all) in a fixed order. */
export function runCheckers(input: CheckInput, names: readonly CheckerName[] = checkerNames): CheckResult[] {
  return names.map((checker) => ({ checker, kind: checkerKinds[checker], ...checkers[checker](input) }));
}

/** invalid beats unknown beats valid. */
export function compose(results: readonly CheckResult[]): Validity {
  if (results.some((result) => result.validity === 'invalid')) return 'invalid';
  if (results.some((result) => result.validity === 'unknown')) return 'unknown';
  return 'valid';
}

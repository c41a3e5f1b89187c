/**
 * What-if capacity studies: throughput and latency of one queue against the number of clients,
 * for each latency profile, healthy and under what-if faults (a degraded RAID array, ...).
 *
 * Each point is one seeded simulation of a lean closed-loop workload, not a `nasq check` run:
 * every client runs the engine's own QueueClient in a loop (send a batch, receive a batch, ack
 * it), nothing else (no checkers, no liveness phase, no fixed message count), so a point measures
 * steady state and costs little more than the lock cycles it simulates. With `ratePerClient` the
 * sends are paced instead of back to back: each client's send times are Poisson arrivals fixed in
 * advance (an open loop per client); a client behind its schedule sends at once, so throughput
 * caps at capacity. Latencies are measured from each call's start, not from its scheduled time (no
 * correction for coordinated omission): past saturation, read the throughput, not the latency.
 *
 * The measured window starts once every client has opened the queue (registration is a lock cycle
 * each: 256 of them are not steady state) and lasts `durationMs` of simulated time, or, by default,
 * until at least 5 s and 1,000 acks, at most 300 s.
 *
 * The analytic bound: the header lock serializes every operation, and the next waiter is granted
 * at the very instant of an unlock, so lock cycles per second cannot exceed 1 / (mean hold time).
 * Messages per second are that times the messages each cycle moves (1/3 unbatched: a send, a
 * receive and an ack each take a cycle).
 */

import { isNasqError } from '../engine/errors.js';
import type { Ports } from '../engine/ports.js';
import { QueueClient, createQueue, type Delivery } from '../engine/queue.js';
import { History } from '../properties/history.js';
import { workloadBody } from '../properties/workload-body.js';
import type { FaultKind } from '../scenarios/schema.js';
import { faultKinds } from '../scenarios/schema.js';
import type { ClientContext } from '../sim/client.js';
import { type NemesisFault, defaultFaultParameters, installNemesis, serverFaultKinds } from '../sim/nemesis.js';
import { ProfileLatency, resolveProfile, withLinkMBps } from '../sim/profiles.js';
import { Simulation } from '../sim/simulation.js';
import { createHistogram, decodeHistogram, encodeHistogram } from './histogram.js';
import { MetricsCollector, type RunMetrics } from './metrics.js';

const queueDirectory = 'q';
const kernelPath = `${queueDirectory}/kernel`;

/** A what-if: faults from the start of a point's measured window (or `at` ms into it) to its end (or for `for` ms). */
export interface WhatIf {
  /** As given on the command line, e.g. 'disk-failure' or 'disk-slow:stallMs=2000'. */
  readonly name: string;
  readonly faults: readonly NemesisFault[];
  /** Options of the share for the whole point (racing-waiters: randomLockWaiterOrder). */
  readonly server?: { readonly randomLockWaiterOrder: boolean };
}

export interface CapacityOptions {
  /** Latency profile names (sim/profiles.ts). */
  readonly profiles: readonly string[];
  /** Client counts, ascending. */
  readonly clients: readonly number[];
  /** Slots of the queue. Default 4096. */
  readonly slots?: number;
  /** Offered messages per second per client (paced sends); undefined: closed loop. */
  readonly ratePerClient?: number;
  /** Messages per send, receive and ack call. Default 1. */
  readonly batch?: number;
  /** Bytes of each message body. Default 0: a label of a few bytes. */
  readonly bodyBytes?: number;
  /** Throughput of the link to the share, MB/s each way, shared by the clients; default: the profile's (0 for the built-in ones: payloads take no time). */
  readonly linkMBps?: number;
  /** Measured simulated time per point, ms; undefined: at least 5 s and 1,000 acks, at most 300 s. */
  readonly durationMs?: number;
  /** What-if fault sets, each compared with the healthy share. Default none. */
  readonly whatIf?: readonly WhatIf[];
  /** Seed of every point's simulation (combined with the point). Default 1. */
  readonly seed?: number;
  /** Told as the sweep advances: `done` of `total` points (fractions within a point). */
  readonly onProgress?: (progress: CapacityProgress) => void;
}

export interface CapacityProgress {
  readonly done: number;
  readonly total: number;
  readonly profile: string;
  readonly whatIf: string;
  readonly clients: number;
}

export interface CapacityPoint {
  readonly clients: number;
  readonly seed: number;
  /** The measured window, ms of simulated time. */
  readonly measuredMs: number;
  /** Simulated time of the whole point (with the opening of every client), ms. */
  readonly simulatedMs: number;
  readonly wallMs: number;
  /** Messages acked per second of simulated time. */
  readonly messagesPerSecond: number;
  readonly sentPerSecond: number;
  /** Header-lock grants per second. */
  readonly cyclesPerSecond: number;
  readonly messagesPerCycle: number;
  /** Latency of the calls that moved messages (send, receive with messages, ack), ms. */
  readonly latency: { readonly p50Ms: number; readonly p99Ms: number; readonly meanMs: number };
  /** A message's send to its ack, ms. */
  readonly endToEnd: { readonly p50Ms: number; readonly p99Ms: number };
  readonly lock: {
    readonly holdMeanMs: number;
    readonly holdP50Ms: number;
    readonly holdP99Ms: number;
    readonly waitP50Ms: number;
    readonly waitP99Ms: number;
    readonly busyFraction: number;
  };
  /** 1 / mean hold: the most lock cycles per second this hold time allows. */
  readonly boundCyclesPerSecond: number;
  /** Calls that failed (a full queue, a lock wait past its bound, a fault). */
  readonly failedCalls: number;
  readonly metrics: RunMetrics;
}

export interface CapacitySeries {
  readonly profile: string;
  /** 'healthy' or a what-if's name. */
  readonly whatIf: string;
  readonly points: CapacityPoint[];
  /** Where more clients stop buying throughput: the most throughput per unit of latency (Kleinrock's power). */
  readonly knee: { readonly clients: number; readonly messagesPerSecond: number; readonly p50Ms: number } | undefined;
  /** The highest throughput measured. */
  readonly plateau: { readonly clients: number; readonly messagesPerSecond: number; readonly cyclesPerSecond: number; readonly messagesPerCycle: number };
  /** One over the header lock's hold time, measured at the plateau (and without contention, at the fewest clients). */
  readonly bound: {
    readonly holdMs: number;
    readonly cyclesPerSecond: number;
    readonly messagesPerSecond: number;
    readonly uncontendedHoldMs: number;
    readonly uncontendedCyclesPerSecond: number;
    /** The plateau as a share of the bound. */
    readonly plateauShare: number;
  };
}

export interface CapacityResult {
  readonly options: {
    readonly profiles: readonly string[];
    readonly clients: readonly number[];
    readonly slots: number;
    readonly ratePerClient: number | undefined;
    readonly batch: number;
    readonly bodyBytes: number;
    readonly linkMBps: number | undefined;
    readonly durationMs: number | undefined;
    readonly whatIf: readonly string[];
    readonly seed: number;
  };
  readonly series: CapacitySeries[];
  readonly wallMs: number;
}

export class CapacityUsageError extends Error {
  override readonly name = 'CapacityUsageError';
}

/** A fault that never heals during a sweep: a spare or a heal later than any point runs. */
const neverMs = 1e9;

/**
 * Presets of what-if faults (parameters the user may override):
 * - disk-failure: a disk of the array fails at the start; no spare during the point (degraded);
 * - rebuild: a disk fails and a spare rebuilds throughout the point (degraded and rebuilding).
 * Any other fault kind is taken as is, with its default parameters (a range means its middle).
 * And one that is not a fault but a rule of the share:
 * - racing-waiters: the share grants lock waiters in a random order, as Samba's racing waiters
 *   may (randomLockWaiterOrder; docs/conformance.md), instead of first in, first out.
 */
const presets: Readonly<Record<string, { kind: FaultKind; parameters: Record<string, number | boolean | string> }>> = {
  'disk-failure': { kind: 'disk-failure', parameters: { disk: 0, spareAfterMs: neverMs, rebuildMs: neverMs } },
  rebuild: { kind: 'disk-failure', parameters: { disk: 0, spareAfterMs: 0, rebuildMs: neverMs } },
};

/**
 * Parses `KIND[:name=value,...][+KIND...]`, e.g. `disk-failure`, `rebuild`,
 * `disk-failure:disk=2+delay-notify:delayMs=500`, `failover:at=2000,for=5000`. `at` and `for` are
 * the fault's start into the measured window and its length, ms (default: from the start, to the
 * end); the other names are the fault's own parameters (sim/nemesis.ts).
 */
export function parseWhatIf(text: string): WhatIf {
  const faults: NemesisFault[] = [];
  let server: WhatIf['server'];
  for (const [index, part] of text.split('+').entries()) {
    const [head = '', parameterText] = part.split(':', 2);
    if (head === 'racing-waiters') {
      if (parameterText !== undefined) throw new CapacityUsageError(`--what-if: racing-waiters takes no parameters, got ${JSON.stringify(part)}`);
      server = { randomLockWaiterOrder: true };
      continue;
    }
    const preset = presets[head];
    const kind = (preset?.kind ?? head) as FaultKind;
    if (!(faultKinds as readonly string[]).includes(kind)) {
      throw new CapacityUsageError(`--what-if: unknown fault ${JSON.stringify(head)}; expected disk-failure, rebuild, racing-waiters or a fault kind (${faultKinds.join(', ')})`);
    }
    const parameters: Record<string, number | boolean | string> = {};
    for (const [name, value] of Object.entries(defaultFaultParameters(kind))) {
      const resolved = middleOf(value);
      if (resolved !== undefined) parameters[name] = resolved;
    }
    Object.assign(parameters, preset?.parameters ?? {});
    const timing = { at: 0, for: 0 };
    for (const assignment of parameterText === undefined || parameterText === '' ? [] : parameterText.split(',')) {
      const match = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/.exec(assignment);
      if (match === null) throw new CapacityUsageError(`--what-if: expected name=value in ${JSON.stringify(part)}, got ${JSON.stringify(assignment)}`);
      const raw = match[2]!;
      const value = raw === 'true' ? true : raw === 'false' ? false : Number.isFinite(Number(raw)) ? Number(raw) : raw;
      if (match[1] === 'at' || match[1] === 'for') {
        if (typeof value !== 'number' || value < 0) throw new CapacityUsageError(`--what-if: ${match[1]} takes ms >= 0, got ${JSON.stringify(raw)} in ${JSON.stringify(part)}`);
        timing[match[1]] = value;
      } else {
        parameters[match[1]!] = value;
      }
    }
    faults.push({ kind, atMs: timing.at, durationMs: timing.for, target: serverFaultKinds.has(kind) ? 'server' : 'all-clients', choice: index, parameters });
  }
  return { name: text, faults, ...(server === undefined ? {} : { server }) };
}

function middleOf(value: unknown): number | boolean | string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value;
  if (Array.isArray(value)) return value[0] as number | boolean;
  if (value !== null && typeof value === 'object' && 'min' in value && 'max' in value) {
    const { min, max } = value as { min: number; max: number };
    return Math.round((min + max) / 2);
  }
  return undefined;
}

/** Auto duration: at least this much simulated time and this many acks, at most the cap. */
const autoMinimumMs = 5_000;
const autoMinimumAcks = 1_000;
const autoMaximumMs = 300_000;

/** Runs the sweep: every profile, healthy and each what-if, every client count. */
export async function runCapacity(options: CapacityOptions, wallClock: () => number): Promise<CapacityResult> {
  const started = wallClock();
  const slots = options.slots ?? 4096;
  const batch = options.batch ?? 1;
  const bodyBytes = options.bodyBytes ?? 0;
  const seed = options.seed ?? 1;
  const variants: Array<WhatIf | undefined> = [undefined, ...(options.whatIf ?? [])];
  const total = options.profiles.length * variants.length * options.clients.length;
  let done = 0;
  const series: CapacitySeries[] = [];
  for (const profile of options.profiles) {
    for (const variant of variants) {
      const points: CapacityPoint[] = [];
      for (const clients of options.clients) {
        const whatIf = variant?.name ?? 'healthy';
        const report = (fraction: number): void => options.onProgress?.({ done: done + Math.min(0.999, fraction), total, profile, whatIf, clients });
        report(0);
        points.push(
          await runPoint(
            { profile, clients, slots, batch, bodyBytes, linkMBps: options.linkMBps, ratePerClient: options.ratePerClient, durationMs: options.durationMs, whatIf: variant, seed: seed * 1_000_003 + clients },
            report,
            wallClock,
          ),
        );
        done += 1;
        options.onProgress?.({ done, total, profile, whatIf, clients });
      }
      series.push(summarizeSeries(profile, variant?.name ?? 'healthy', points));
    }
  }
  return {
    options: {
      profiles: options.profiles,
      clients: options.clients,
      slots,
      ratePerClient: options.ratePerClient,
      batch,
      bodyBytes,
      linkMBps: options.linkMBps,
      durationMs: options.durationMs,
      whatIf: (options.whatIf ?? []).map((whatIf) => whatIf.name),
      seed,
    },
    series,
    wallMs: wallClock() - started,
  };
}

interface PointOptions {
  readonly profile: string;
  readonly clients: number;
  readonly slots: number;
  readonly batch: number;
  readonly bodyBytes: number;
  readonly linkMBps: number | undefined;
  readonly ratePerClient: number | undefined;
  readonly durationMs: number | undefined;
  readonly whatIf: WhatIf | undefined;
  readonly seed: number;
}

/** Limits of every loop (TigerBeetle style). */
const roundsMaximum = 10_000_000;

export async function runPoint(point: PointOptions, onFraction: (fraction: number) => void, wallClock: () => number): Promise<CapacityPoint> {
  const started = wallClock();
  const recorder = new MetricsCollector().startRun(kernelPath);
  const simulation = new Simulation({
    seed: point.seed,
    latency: new ProfileLatency(point.linkMBps === undefined ? resolveProfile(point.profile) : withLinkMBps(resolveProfile(point.profile), point.linkMBps)),
    clientErrors: 'record',
    trace: { windowSize: 0, observer: recorder.traceObserver },
    ...(point.whatIf?.server === undefined ? {} : { server: point.whatIf.server }),
  });
  const history = new History({ nowMs: () => simulation.nowMs, tracePosition: () => simulation.trace.count });
  recorder.attach(simulation, history);
  simulation.addClient('setup', async (ports) => {
    await createQueue(ports, queueDirectory, { slots: point.slots });
  });
  await simulation.run();
  if (simulation.client('setup').status !== 'finished') throw new Error(`capacity: creating the queue failed: ${String(simulation.client('setup').error)}`);

  const names = Array.from({ length: point.clients }, (_, index) => `client-${index}`);
  const state = { opened: 0, measureFromMs: Number.NaN, stopAtMs: Number.POSITIVE_INFINITY, acksInWindow: 0, lastReportMs: 0 };
  const targetMs = point.durationMs;
  const shouldStop = (): boolean => {
    const nowMs = simulation.nowMs;
    if (nowMs >= state.stopAtMs) return true;
    if (Number.isNaN(state.measureFromMs)) return false;
    const elapsedMs = nowMs - state.measureFromMs;
    if (nowMs - state.lastReportMs > 100) {
      state.lastReportMs = nowMs;
      onFraction(targetMs === undefined ? Math.min(elapsedMs / autoMinimumMs, state.acksInWindow / autoMinimumAcks) : elapsedMs / targetMs);
    }
    const done = targetMs !== undefined ? elapsedMs >= targetMs : (elapsedMs >= autoMinimumMs && state.acksInWindow >= autoMinimumAcks) || elapsedMs >= autoMaximumMs;
    if (done) state.stopAtMs = nowMs;
    return done;
  };
  const queueOptions = { leaseMs: 600_000, lockWaitMs: 600_000, pollIntervalMs: 1_000 };
  let failedCalls = 0;

  const main = async (ports: Ports, context: ClientContext): Promise<void> => {
    const open = history.invoke(context.name, context.incarnation, 'open', ports.clock.now());
    let client: QueueClient;
    try {
      client = await QueueClient.open(ports, queueDirectory, queueOptions);
      history.complete(open, 'ok', ports.clock.now());
    } catch (error) {
      history.completeWithError(open, error, ports.clock.now());
      failedCalls += 1;
      return;
    }
    state.opened += 1;
    if (state.opened === point.clients) {
      state.measureFromMs = simulation.nowMs;
      // The what-if faults start with the measured window (a one-shot fault, a stall or a
      // failover, would otherwise be over before it).
      if (point.whatIf !== undefined) {
        installNemesis(simulation, point.whatIf.faults, { senders: names, receivers: [], startMs: simulation.nowMs, healAtMs: simulation.nowMs + neverMs });
      }
    }
    let sequence = 0;
    const pauseMs = 10;
    // Paced: send times are Poisson arrivals fixed in advance (an open loop per client); a client
    // behind its schedule sends at once, so throughput caps at what the queue can do.
    let nextSendMs = ports.clock.now();
    for (let round = 0; round < roundsMaximum && !shouldStop(); round += 1) {
      if (point.ratePerClient !== undefined) {
        nextSendMs += (-Math.log(1 - context.random.next()) * point.batch * 1000) / point.ratePerClient;
        if (nextSendMs > ports.clock.now()) await ports.clock.sleepUntil(nextSendMs);
      }
      const now = ports.clock.now();
      const items = Array.from({ length: point.batch }, () => ({ body: `${context.name}/${(sequence += 1)}`, deliverAt: now }));
      const send = history.invoke(context.name, context.incarnation, 'send', now, { sends: items.map((item) => ({ id: undefined, body: item.body, deliverAt: item.deliverAt })) });
      try {
        const ids = await client.sendBatch(items.map((item) => ({ body: workloadBody(item.body, point.bodyBytes), deliverAt: item.deliverAt })));
        ids.forEach((id, index) => (send.sends![index]!.id = id));
        history.complete(send, 'ok', ports.clock.now());
      } catch (error) {
        if (!isNasqError(error)) throw error;
        history.completeWithError(send, error, ports.clock.now());
        failedCalls += 1;
        await ports.clock.sleepUntil(ports.clock.now() + pauseMs);
      }
      const receive = history.invoke(context.name, context.incarnation, 'receive', ports.clock.now());
      let deliveries: Delivery[] = [];
      try {
        deliveries = await client.receiveBatch(point.batch, { waitMs: 0 });
        history.complete(receive, 'ok', ports.clock.now(), {
          deliveries: deliveries.map((delivery) => ({
            id: delivery.id,
            body: '',
            deliverAt: delivery.deliverAt,
            deliveryCount: delivery.deliveryCount,
            leaseToken: delivery.receipt.leaseToken,
            leaseExpiry: delivery.receipt.leaseExpiry,
          })),
        });
      } catch (error) {
        if (!isNasqError(error)) throw error;
        history.completeWithError(receive, error, ports.clock.now());
        failedCalls += 1;
        continue;
      }
      if (deliveries.length === 0) continue;
      const acksAt = ports.clock.now();
      const acks = deliveries.map((delivery) => history.invoke(context.name, context.incarnation, 'ack', acksAt, { target: { id: delivery.id, leaseToken: delivery.receipt.leaseToken } }));
      try {
        const outcomes = deliveries.length === 1 ? [await client.ack(deliveries[0]!.receipt).then(() => 'acked' as const)] : await client.ackBatch(deliveries.map((delivery) => delivery.receipt));
        const completedAt = ports.clock.now();
        outcomes.forEach((outcome, index) => {
          if (outcome === 'acked') history.complete(acks[index]!, 'ok', completedAt);
          else history.complete(acks[index]!, 'fail', completedAt, { error: 'LEASE_LOST' });
        });
        if (!Number.isNaN(state.measureFromMs)) state.acksInWindow += outcomes.filter((outcome) => outcome === 'acked').length;
      } catch (error) {
        if (!isNasqError(error)) throw error;
        for (const ack of acks) history.completeWithError(ack, error, ports.clock.now());
        failedCalls += 1;
      }
    }
    try {
      await client.close();
    } catch (error) {
      if (!isNasqError(error)) throw error;
    }
  };
  for (const name of names) simulation.addClient(name, main);
  await simulation.run({ until: 'finished', untilMs: simulation.nowMs + neverMs / 2 });
  const failed = simulation.clients.find((client) => client.status === 'failed');
  if (failed !== undefined) throw new Error(`capacity: client ${failed.name} failed: ${String(failed.error)}`);
  if (Number.isNaN(state.measureFromMs)) throw new Error(`capacity: not every client opened the queue (${state.opened} of ${point.clients})`);

  const metrics = recorder.finish({ fromMs: state.measureFromMs, toMs: state.stopAtMs, bucketsMaximum: 60 });
  const calls = createHistogram();
  for (const histogram of [metrics.latency.send, metrics.latency.receive, metrics.latency.ack]) if (histogram.summary.count > 0) calls.add(decodeHistogram(histogram));
  const callSummary = encodeHistogram(calls).summary;
  const seconds = (state.stopAtMs - state.measureFromMs) / 1000;
  const hold = metrics.lock.hold.summary;
  const wait = metrics.lock.wait.summary;
  return {
    clients: point.clients,
    seed: point.seed,
    measuredMs: state.stopAtMs - state.measureFromMs,
    simulatedMs: simulation.nowMs,
    wallMs: wallClock() - started,
    messagesPerSecond: metrics.totals.acked / seconds,
    sentPerSecond: metrics.totals.sent / seconds,
    cyclesPerSecond: metrics.lock.grantsPerSecond,
    messagesPerCycle: metrics.lock.grants === 0 ? 0 : metrics.totals.acked / metrics.lock.grants,
    latency: { p50Ms: callSummary.p50Ms, p99Ms: callSummary.p99Ms, meanMs: callSummary.meanMs },
    endToEnd: { p50Ms: metrics.latency.endToEnd.summary.p50Ms, p99Ms: metrics.latency.endToEnd.summary.p99Ms },
    lock: { holdMeanMs: hold.meanMs, holdP50Ms: hold.p50Ms, holdP99Ms: hold.p99Ms, waitP50Ms: wait.p50Ms, waitP99Ms: wait.p99Ms, busyFraction: metrics.lock.busyFraction },
    boundCyclesPerSecond: hold.meanMs > 0 ? 1000 / hold.meanMs : 0,
    failedCalls,
    metrics,
  };
}

/** Knee, plateau and bound of one series. */
export function summarizeSeries(profile: string, whatIf: string, points: CapacityPoint[]): CapacitySeries {
  if (points.length === 0) throw new TypeError('summarizeSeries: no points');
  const plateauPoint = points.reduce((best, point) => (point.messagesPerSecond > best.messagesPerSecond ? point : best), points[0]!);
  // Kleinrock's power: throughput over latency is highest where adding clients starts to add
  // waiting rather than throughput.
  const power = (point: CapacityPoint): number => (point.latency.p50Ms > 0 ? point.messagesPerSecond / point.latency.p50Ms : 0);
  const kneePoint = points.reduce((best, point) => (power(point) > power(best) ? point : best), points[0]!);
  const uncontended = points[0]!;
  const boundCycles = plateauPoint.boundCyclesPerSecond;
  const boundMessages = boundCycles * plateauPoint.messagesPerCycle;
  return {
    profile,
    whatIf,
    points,
    knee: power(kneePoint) > 0 ? { clients: kneePoint.clients, messagesPerSecond: kneePoint.messagesPerSecond, p50Ms: kneePoint.latency.p50Ms } : undefined,
    plateau: {
      clients: plateauPoint.clients,
      messagesPerSecond: plateauPoint.messagesPerSecond,
      cyclesPerSecond: plateauPoint.cyclesPerSecond,
      messagesPerCycle: plateauPoint.messagesPerCycle,
    },
    bound: {
      holdMs: plateauPoint.lock.holdMeanMs,
      cyclesPerSecond: boundCycles,
      messagesPerSecond: boundMessages,
      uncontendedHoldMs: uncontended.lock.holdMeanMs,
      uncontendedCyclesPerSecond: uncontended.boundCyclesPerSecond,
      plateauShare: boundMessages > 0 ? plateauPoint.messagesPerSecond / boundMessages : 0,
    },
  };
}


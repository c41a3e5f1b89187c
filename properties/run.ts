/**
 * One simulated run of a resolved scenario: a queue on the simulated share, senders and receivers
 * running the engine's own code, the nemesis, a liveness phase, and the checkers over the history
 * and the server's observations.
 */

import { decodeBundle, markLive } from '../engine/bodies.js';
import { NasqError, isNasqError } from '../engine/errors.js';
import { SlotState, chooseHeader, headerRegionSize, journalCapacity, messageIdOf, slotFlagFilling } from '../engine/format.js';
import { SlotMemo, imageViolations, readKernelImage, type KernelImage } from '../engine/kernel-image.js';
import type { Ports } from '../engine/ports.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import { installNemesis, type NemesisHandle } from '../sim/nemesis.js';
import { latencyModelFor } from '../sim/profiles.js';
import { Simulation, type SimulationStats } from '../sim/simulation.js';
import type { TraceOptions } from '../sim/trace.js';
import { compose, runCheckers, type CheckResult, type Observations, type Validity } from './checkers.js';
import type { RunConfig } from './config.js';
import { exercisedOf, type Exercised } from './exercised.js';
import { History } from './history.js';
import type { MetricsCollector, RunMetrics } from '../reports/metrics.js';
import { Workload } from './workload.js';

export const queueDirectory = 'q';
const kernelPath = `${queueDirectory}/kernel`;

/** Is this lock (held or just granted) the exclusive lock of the kernel's header region? */
const isHeaderLock = (lock: { readonly mode: string; readonly offset: number; readonly length: number }): boolean =>
  lock.mode === 'exclusive' && lock.offset === 0 && lock.length === headerRegionSize;

export interface RunOptions {
  /** The queue client class the workload uses: a test passes a subclass with a planted bug. */
  readonly clientClass?: typeof QueueClient;
  /** Wraps each client's ports: a test passes a wrapper with a planted bug. */
  readonly wrapPorts?: (ports: Ports, client: string) => Ports;
  /** Trace options of the simulation (window size, a sink for the full trace). */
  readonly trace?: TraceOptions;
  /** Check the kernel's invariants after every header commit (default true; costs time on big runs). */
  readonly checkEveryCommit?: boolean;
  /** Collects time series, latency histograms and lock times for reports (costs time; default none). */
  readonly metrics?: MetricsCollector;
}

export interface RunSummary {
  readonly sendsOk: number;
  readonly sendsInfo: number;
  readonly deliveries: number;
  readonly acksOk: number;
  readonly redeliveries: number;
  readonly faultsInjected: number;
  readonly commits: number;
}

export interface RunOutcome {
  readonly config: RunConfig;
  readonly verdict: Validity;
  /** Which kind of property failed, if any: correctness beats liveness. */
  readonly failedKind: 'correctness' | 'liveness' | undefined;
  readonly results: CheckResult[];
  readonly stats: SimulationStats;
  readonly summary: RunSummary;
  readonly history: History;
  readonly simulation: Simulation;
  readonly nemesis: NemesisHandle;
  /** The simulation itself failed (a client threw a programmer error, a deadlock, ...). */
  readonly simulationError: string | undefined;
  /** With `RunOptions.metrics`: the run's metrics. */
  readonly metrics?: RunMetrics;
  /** What the run exercised: faults, error paths, rare situations (exercised.ts). */
  readonly exercised: Exercised;
}

export async function runScenario(config: RunConfig, options: RunOptions = {}): Promise<RunOutcome> {
  const recorder = options.metrics?.startRun(kernelPath);
  const trace = recorder === undefined ? options.trace : { ...options.trace, observer: recorder.traceObserver };
  const simulation = new Simulation({
    seed: config.simulationSeed,
    latency: latencyModelFor(config.latency),
    actimeoMs: config.actimeoMs,
    server: { durableLocksNeedSoleOpen: config.durableLocksNeedSoleOpen ?? false, randomLockWaiterOrder: config.randomLockWaiterOrder ?? false },
    clientErrors: 'record',
    ...(trace === undefined ? {} : { trace }),
  });
  const history = new History({ nowMs: () => simulation.nowMs, tracePosition: () => simulation.trace.count });
  recorder?.attach(simulation, history);

  // The queue is created by a client of its own before anything else runs.
  simulation.addClient('setup', async (ports) => {
    await createQueue(ports, queueDirectory, { slots: config.slots, maximumDeliveries: config.maximumDeliveries });
  });
  const setup = await simulation.run();
  if (simulation.client('setup').status !== 'finished') {
    throw new Error(`setup of the queue failed (${setup.reason}): ${String(simulation.client('setup').error)}`);
  }
  const startMs = simulation.nowMs;
  const healAtMs = startMs + config.faultPhaseMs;
  const endMs = healAtMs + config.settleMs;

  // --- observations of the server
  const kernelViolationsSeen: Observations['kernelViolations'] = [];
  const unlockedWrites: Observations['unlockedWrites'] = [];
  const generationBreaks: Observations['generationBreaks'] = [];
  const clientEvents: Array<{ timeMs: number; client: string; event: 'crash' | 'session-drop' | 'pause' | 'restart' }> = [];
  let lastGeneration: number | undefined;
  let commits = 0;
  let slotAreaWrites = 0;
  const checkEveryCommit = options.checkEveryCommit ?? true;
  // The checker reads the kernel file after every commit: only changed slots are decoded again.
  const slotMemo = new SlotMemo();
  simulation.server.onWrite(kernelPath, (event) => {
    const tracePosition = simulation.trace.count;
    // A power loss reverts the file at the server (no client wrote it).
    const holdsLock =
      event.operation === 'power-loss' ||
      simulation.server.locks(kernelPath).some((lock) => lock.openId === event.openId && isHeaderLock(lock));
    if (!holdsLock) {
      unlockedWrites.push({ timeMs: event.timeMs, tracePosition, client: event.client, position: event.position, length: event.length });
    }
    if (event.position >= headerRegionSize) {
      if (event.operation === 'write') slotAreaWrites += 1;
      return; // the slot area: the journal still decides
    }
    commits += 1;
    if (event.position === 0 && event.length >= headerRegionSize) lastGeneration = undefined; // a whole new kernel (fsck)
    // One read of the file serves both checks: the header's generation, and (checking every
    // commit) every invariant of the file.
    let image: KernelImage | undefined;
    let violations: string[] = [];
    try {
      image = checkEveryCommit ? readKernelImage(event.contents, slotMemo) : undefined;
      const generation = image?.header.generation ?? chooseHeader(event.contents.subarray(0, headerRegionSize), { verifyBoth: true }).header.generation;
      if (lastGeneration !== undefined && generation !== lastGeneration + 1) {
        generationBreaks.push({ timeMs: event.timeMs, tracePosition, client: event.client, previous: lastGeneration, written: generation });
      }
      lastGeneration = generation;
    } catch (error) {
      // No header copy is sound (chooseHeader throws nothing else): no generation, and a violation.
      if (!isNasqError(error, 'CORRUPT')) throw error;
      if (checkEveryCommit) violations = [error.message];
    }
    if (image !== undefined) violations = imageViolations(image);
    if (violations.length > 0) kernelViolationsSeen.push({ timeMs: event.timeMs, tracePosition, client: event.client, violations });
  });

  // --- the workload
  const senders = Array.from({ length: config.senders }, (_, index) => `sender-${index}`);
  const receivers = Array.from({ length: config.receivers }, (_, index) => `receiver-${index}`);
  const perSender = Math.floor(config.messages / config.senders);
  const messagesPerSender = senders.map((_, index) => perSender + (index < config.messages % config.senders ? 1 : 0));
  let workload: Workload;
  const control = {
    serverTimeMs: () => simulation.nowMs,
    shouldStop: (timeMs: number): boolean => {
      if (timeMs >= endMs) return true;
      if (timeMs < healAtMs || !workload.sendersDone()) return false;
      return queueIsEmpty();
    },
  };
  const queueIsEmpty = (): boolean => {
    const bytes = simulation.server.contents(kernelPath);
    if (bytes === undefined) return true;
    try {
      const header = chooseHeader(bytes.subarray(0, headerRegionSize)).header;
      return header.unreadCount === 0 && header.pendingCount === 0;
    } catch {
      return false;
    }
  };
  workload = new Workload(
    {
      directory: queueDirectory,
      messagesPerSender,
      batch: Math.max(1, Math.round(config.batch)),
      sendIntervalMs: config.sendIntervalMs,
      delayedFraction: config.delayedFraction,
      maxDelayMs: config.maxDelayMs,
      processMs: config.processMs,
      releaseFraction: config.releaseFraction,
      receiveBatch: Math.max(1, Math.round(config.receiveBatch)),
      waitMs: config.waitMs,
      bodyBytes: Math.max(0, Math.round(config.bodyBytes ?? 0)),
      retryPauseMs: Math.max(10, config.pollIntervalMs / 4),
      queueOptions: {
        leaseMs: config.leaseMs,
        pollIntervalMs: config.pollIntervalMs,
        lockWaitMs: config.lockWaitMs,
        journalSoftLimit: Math.max(1, Math.min(journalCapacity, Math.round(config.journalSoftLimit))),
        durable: config.durable,
        durableHandles: config.durableHandles,
      },
      ...(options.clientClass === undefined ? {} : { clientClass: options.clientClass }),
    },
    history,
    control,
  );
  const wrap = options.wrapPorts;
  const withPorts = (main: ReturnType<Workload['sender']>, name: string): ReturnType<Workload['sender']> =>
    wrap === undefined ? main : (ports, context) => main(wrap(ports, name), context);
  senders.forEach((name, index) => simulation.addClient(name, withPorts(workload.sender(index), name)));
  receivers.forEach((name) => simulation.addClient(name, withPorts(workload.receiver(), name)));

  const nemesis = installNemesis(simulation, config.faults, {
    senders,
    receivers,
    startMs,
    healAtMs,
    onClientEvent: (timeMs, client, event) => clientEvents.push({ timeMs, client, event }),
    // The workload's header-lock holder (the client that created the queue is not one).
    lockHolder: {
      now: () => simulation.server.locks(kernelPath).find((lock) => isHeaderLock(lock) && lock.handleState === 'open' && lock.client !== 'setup')?.client,
      next: (then) => {
        const stop = simulation.server.onLockGranted(kernelPath, (grant) => {
          if (!isHeaderLock(grant) || grant.client === 'setup') return;
          stop();
          then();
        });
      },
    },
  });

  let simulationError: string | undefined;
  try {
    await simulation.run({ until: 'finished', untilMs: endMs + config.livenessBoundMs });
  } catch (error) {
    simulationError = error instanceof Error ? error.message : String(error);
  }
  for (const client of simulation.clients) {
    if (client.status === 'failed' && client.name !== 'setup') {
      const message = client.error instanceof Error ? `${client.error.name}: ${client.error.message}` : String(client.error);
      simulationError ??= `client ${client.name} failed: ${message}`;
    }
  }

  // Operations of incarnations that crashed are of unknown outcome; others still open are stuck.
  for (const operation of history.pending()) {
    const client = simulation.client(operation.client);
    operation.outcome = 'info';
    operation.error = client.incarnation > operation.incarnation || client.status === 'crashed' ? 'crash' : 'pending';
  }

  const { remainingIds, deadIds, bodyIds } = finalQueueState(simulation);
  const observations: Observations = {
    kernelViolations: kernelViolationsSeen,
    unlockedWrites,
    generationBreaks,
    remainingIds,
    deadIds,
    bodyIds,
    clientEvents,
    healAtMs,
    endMs: simulation.nowMs,
    arrayLost: nemesis.arrayLost,
    powerLossesMs: [...nemesis.powerLossesMs],
  };
  const results = runCheckers({ history, observations, config: { skewBoundMs: config.skewBoundMs, livenessBoundMs: config.livenessBoundMs, durable: config.durable } }, config.checkers);
  if (simulationError !== undefined) {
    results.push({
      checker: 'liveness',
      kind: /deadlock|stall|awaited/i.test(simulationError) ? 'liveness' : 'correctness',
      validity: 'invalid',
      explanation: `the simulation failed: ${simulationError}`,
      operations: [],
      tracePositions: [simulation.trace.count],
    });
  }
  const verdict = compose(results);
  const failed = results.filter((result) => result.validity === 'invalid');
  const failedKind = failed.some((result) => result.kind === 'correctness') ? 'correctness' : failed.length > 0 ? 'liveness' : undefined;
  return {
    config,
    verdict,
    failedKind,
    results,
    stats: simulation.stats(),
    summary: summarize(history, nemesis, commits),
    history,
    simulation,
    nemesis,
    simulationError,
    metrics: recorder?.finish(),
    exercised: exercisedOf({
      history,
      faultKinds: nemesis.injected.filter((fault) => fault.phase === 'start').map((fault) => fault.kind),
      clientEvents,
      headerLockConflicts: simulation.server.lockConflicts(kernelPath),
      headerLocksLost: simulation.server.locksLost(kernelPath),
      headerLockWaitersQueuedAhead: simulation.server.lockWaitersQueuedAhead(kernelPath),
      slotAreaWrites,
      deadLetters: deadIds.size,
      powerLosses: nemesis.powerLossesMs.length,
    }),
  };
}

function finalQueueState(simulation: Simulation): { remainingIds: Set<string>; deadIds: Set<string>; bodyIds: Set<string> } {
  const remainingIds = new Set<string>();
  const bytes = simulation.server.contents(kernelPath);
  if (bytes !== undefined) {
    try {
      for (const slot of readKernelImage(bytes).slots) {
        if (slot === undefined || slot.state === SlotState.empty || slot.flags === slotFlagFilling) continue;
        remainingIds.add(messageIdOf(slot));
      }
    } catch (error) {
      if (!(error instanceof NasqError)) throw error;
    }
  }
  const deadIds = new Set<string>();
  const bodyIds = new Set<string>();
  for (const file of simulation.server.files()) {
    const dead = /^q\/dead\/(\d+-\d+)\.json$/.exec(file.path);
    if (dead !== null) deadIds.add(dead[1]!);
    const body = /^q\/msg\/(\d+-\d+)$/.exec(file.path);
    if (body !== null) bodyIds.add(body[1]!);
    const bundled = /^q\/msg\/((\d+)-\d+\.bundle)$/.exec(file.path);
    if (bundled !== null) {
      // A bundle: each live body in it counts as that message's body file.
      const bytes = simulation.server.contents(file.path);
      const bundle = bytes === undefined ? 'missing' : decodeBundle(bytes);
      if (typeof bundle === 'string') continue;
      bundle.entries.forEach((entry, index) => {
        if (entry.mark === markLive) bodyIds.add(`${bundled[2]}-${bundle.firstSequence + index}`);
      });
    }
  }
  return { remainingIds, deadIds, bodyIds };
}

function summarize(history: History, nemesis: NemesisHandle, commits: number): RunSummary {
  let sendsOk = 0;
  let sendsInfo = 0;
  let deliveries = 0;
  let acksOk = 0;
  let redeliveries = 0;
  for (const operation of history.operations) {
    if (operation.kind === 'send') {
      const count = operation.sends?.length ?? 0;
      if (operation.outcome === 'ok') sendsOk += count;
      else if (operation.outcome === 'info') sendsInfo += count;
    } else if (operation.kind === 'receive' && operation.outcome === 'ok') {
      for (const delivered of operation.deliveries ?? []) {
        deliveries += 1;
        if (delivered.deliveryCount > 1) redeliveries += 1;
      }
    } else if (operation.kind === 'ack' && operation.outcome === 'ok') {
      acksOk += 1;
    }
  }
  return { sendsOk, sendsInfo, deliveries, acksOk, redeliveries, faultsInjected: nemesis.injected.filter((fault) => fault.phase === 'start').length, commits };
}

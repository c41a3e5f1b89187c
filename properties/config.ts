/**
 * A run's resolved configuration (every parameter of a scenario drawn to a value), and the
 * fast-check arbitraries that draw it. Failures shrink through these arbitraries: fewer clients,
 * fewer messages, fewer and smaller faults.
 */

import fc from 'fast-check';
import type { CheckerName } from './checkers.js';
import { faultKinds, type BooleanParameter, type FaultKind, type NumberParameter, type Scenario } from '../scenarios/schema.js';
import { defaultFaultParameters, lockHolderTarget, serverFaultKinds } from '../sim/nemesis.js';

export interface ResolvedFault {
  kind: FaultKind;
  atMs: number;
  durationMs: number;
  /** A client name, 'any-client' / 'any-sender' / 'any-receiver' / 'all-clients', or 'server'. */
  target: string;
  /** Picks the client of an 'any-*' target (modulo the number of candidates). */
  choice: number;
  parameters: Record<string, number | boolean | string>;
}

export interface LatencyProfileSpecification {
  name: string;
  roundTripMs: number;
  serviceMs: number;
  flushMs: number;
  jitterSigma: number;
  serverWorkers: number;
  [key: string]: unknown;
}

export interface RunConfig {
  scenario: string;
  simulationSeed: number;
  senders: number;
  receivers: number;
  messages: number;
  batch: number;
  receiveBatch: number;
  sendIntervalMs: number;
  delayedFraction: number;
  maxDelayMs: number;
  processMs: number;
  releaseFraction: number;
  waitMs: number;
  /** Bytes of each body (0: its label alone). Absent in failure files written before it existed: 0. */
  bodyBytes?: number;
  slots: number;
  leaseMs: number;
  pollIntervalMs: number;
  lockWaitMs: number;
  maximumDeliveries: number;
  journalSoftLimit: number;
  durable: boolean;
  durableHandles: boolean;
  latency: string | LatencyProfileSpecification;
  faults: ResolvedFault[];
  checkers: CheckerName[];
  faultPhaseMs: number;
  livenessBoundMs: number;
  settleMs: number;
  skewBoundMs: number;
  actimeoMs: number;
  /** The share's durable-handle rule (Samba's when true). Absent in failure files written before it existed: false. */
  durableLocksNeedSoleOpen?: boolean;
  /** The share grants lock waiters in a random order (Samba's race) when true. Absent in older failure files: false. */
  randomLockWaiterOrder?: boolean;
}

function numberArbitrary(parameter: NumberParameter): fc.Arbitrary<number> {
  if (typeof parameter === 'number') return fc.constant(parameter);
  if (Array.isArray(parameter)) return parameter.length === 1 ? fc.constant(parameter[0]!) : fc.constantFrom(...parameter);
  const { min, max } = parameter;
  if (min === max) return fc.constant(min);
  if (Number.isInteger(min) && Number.isInteger(max)) return fc.integer({ min, max });
  return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
}

function booleanArbitrary(parameter: BooleanParameter): fc.Arbitrary<boolean> {
  if (typeof parameter === 'boolean') return fc.constant(parameter);
  return parameter.length === 1 ? fc.constant(parameter[0]!) : fc.constantFrom(...parameter);
}

function parametersArbitrary(parameters: Record<string, NumberParameter | BooleanParameter | string>): fc.Arbitrary<Record<string, number | boolean | string>> {
  const entries = Object.keys(parameters)
    .sort()
    .map((key) => {
      const value = parameters[key]!;
      if (typeof value === 'string') return [key, fc.constant(value)] as const;
      if (typeof value === 'boolean' || (Array.isArray(value) && typeof value[0] === 'boolean')) {
        return [key, booleanArbitrary(value as BooleanParameter)] as const;
      }
      return [key, numberArbitrary(value as NumberParameter)] as const;
    });
  return fc.record(Object.fromEntries(entries) as Record<string, fc.Arbitrary<number | boolean | string>>);
}

/** The arbitrary of one scenario fault; present in nearly every run, shrinks to absent. */
function faultArbitrary(fault: Scenario['nemesis']['faults'][number]): fc.Arbitrary<ResolvedFault | undefined> {
  return fc.option(
    fc
      .record({
        atMs: numberArbitrary(fault.atMs),
        durationMs: numberArbitrary(fault.durationMs),
        choice: fc.nat({ max: 1_000 }),
        parameters: parametersArbitrary({ ...defaultFaultParameters(fault.kind), ...fault.parameters }),
      })
      .map(({ atMs, durationMs, choice, parameters }) => ({ kind: fault.kind, atMs, durationMs, target: fault.target, choice, parameters })),
    { freq: 40, nil: undefined },
  );
}

/** Client faults swarm mode may aim at the holder of the header lock (a fault inside a lock cycle). */
const lockHolderFaultKinds: ReadonlySet<FaultKind> = new Set(['crash', 'session-drop', 'pause', 'partition']);

/** Swarm mode: which fault kinds are on, how many, when and how big, all drawn from the seed. */
function swarmArbitrary(swarm: NonNullable<Scenario['nemesis']['swarm']>, faultPhaseMs: number): fc.Arbitrary<ResolvedFault[]> {
  const kinds: readonly FaultKind[] = swarm.kinds ?? faultKinds;
  const one = fc
    .constantFrom(...kinds)
    .chain((kind) =>
      fc.record({
        kind: fc.constant(kind),
        atMs: fc.integer({ min: 0, max: Math.max(0, Math.floor(faultPhaseMs * 0.8)) }),
        durationMs: fc.integer({ min: 0, max: Math.max(0, Math.floor(faultPhaseMs / 2)) }),
        target: serverFaultKinds.has(kind)
          ? fc.constant('server')
          : lockHolderFaultKinds.has(kind)
            ? fc.constantFrom('any-client', lockHolderTarget)
            : fc.constant('any-client'),
        choice: fc.nat({ max: 1_000 }),
        parameters: parametersArbitrary(defaultFaultParameters(kind)),
      }),
    );
  return fc.array(one, { maxLength: swarm.maximumFaults });
}

export function configArbitrary(scenario: Scenario): fc.Arbitrary<RunConfig> {
  const { workload, queue, options } = scenario;
  const scheduled = fc.tuple(...scenario.nemesis.faults.map(faultArbitrary));
  const base = fc.record({
    simulationSeed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    senders: numberArbitrary(scenario.clients.senders),
    receivers: numberArbitrary(scenario.clients.receivers),
    messages: numberArbitrary(workload.messages),
    batch: numberArbitrary(workload.batch),
    receiveBatch: numberArbitrary(workload.receiveBatch),
    sendIntervalMs: numberArbitrary(workload.sendIntervalMs),
    delayedFraction: numberArbitrary(workload.delayedFraction),
    maxDelayMs: numberArbitrary(workload.maxDelayMs),
    processMs: numberArbitrary(workload.processMs),
    releaseFraction: numberArbitrary(workload.releaseFraction),
    waitMs: numberArbitrary(workload.waitMs),
    slots: numberArbitrary(queue.slots),
    leaseMs: numberArbitrary(queue.leaseMs),
    pollIntervalMs: numberArbitrary(queue.pollIntervalMs),
    lockWaitMs: numberArbitrary(queue.lockWaitMs),
    maximumDeliveries: numberArbitrary(queue.maximumDeliveries),
    journalSoftLimit: numberArbitrary(queue.journalSoftLimit),
    durable: booleanArbitrary(queue.durable),
    durableHandles: booleanArbitrary(queue.durableHandles),
    faultPhaseMs: numberArbitrary(options.faultPhaseMs),
    livenessBoundMs: numberArbitrary(options.livenessBoundMs),
    settleMs: numberArbitrary(options.settleMs),
    skewBoundMs: numberArbitrary(options.skewBoundMs),
    actimeoMs: numberArbitrary(options.actimeoMs),
    bodyBytes: numberArbitrary(workload.bodyBytes),
    durableLocksNeedSoleOpen: booleanArbitrary(options.durableLocksNeedSoleOpen),
    randomLockWaiterOrder: booleanArbitrary(options.randomLockWaiterOrder),
  });
  return base.chain((drawn) => {
    const swarm = scenario.nemesis.swarm === undefined ? fc.constant([] as ResolvedFault[]) : swarmArbitrary(scenario.nemesis.swarm, drawn.faultPhaseMs);
    return fc.tuple(scheduled, swarm).map(([fixed, swarmFaults]): RunConfig => {
      const faults = [...fixed.filter((fault): fault is ResolvedFault => fault !== undefined), ...swarmFaults];
      // A power cut of a cache without battery loses unflushed writes: only durable sends survive it.
      const powerCut = faults.some((fault) => fault.kind === 'power-cut' || (fault.kind === 'failover' && fault.parameters['batteryBacked'] === false));
      return {
        scenario: scenario.name,
        ...drawn,
        senders: Math.max(1, Math.round(drawn.senders)),
        receivers: Math.max(1, Math.round(drawn.receivers)),
        messages: Math.max(1, Math.round(drawn.messages)),
        durable: drawn.durable || (powerCut && scenario.nemesis.swarm !== undefined),
        latency: scenario.latency as string | LatencyProfileSpecification,
        faults,
        checkers: [...scenario.checkers],
      };
    });
  });
}

/** The config of a scenario with every parameter at its first value: what `nasq run` uses without a path. */
export function nominalConfig(scenario: Scenario, simulationSeed: number): RunConfig {
  const first = (parameter: NumberParameter): number =>
    typeof parameter === 'number' ? parameter : Array.isArray(parameter) ? parameter[0]! : Math.round((parameter.min + parameter.max) / 2);
  const firstBoolean = (parameter: BooleanParameter): boolean => (typeof parameter === 'boolean' ? parameter : parameter[0]!);
  const { workload, queue, options } = scenario;
  return {
    scenario: scenario.name,
    simulationSeed,
    senders: Math.max(1, Math.round(first(scenario.clients.senders))),
    receivers: Math.max(1, Math.round(first(scenario.clients.receivers))),
    messages: Math.max(1, Math.round(first(workload.messages))),
    batch: first(workload.batch),
    receiveBatch: first(workload.receiveBatch),
    sendIntervalMs: first(workload.sendIntervalMs),
    delayedFraction: first(workload.delayedFraction),
    maxDelayMs: first(workload.maxDelayMs),
    processMs: first(workload.processMs),
    releaseFraction: first(workload.releaseFraction),
    waitMs: first(workload.waitMs),
    slots: first(queue.slots),
    leaseMs: first(queue.leaseMs),
    pollIntervalMs: first(queue.pollIntervalMs),
    lockWaitMs: first(queue.lockWaitMs),
    maximumDeliveries: first(queue.maximumDeliveries),
    journalSoftLimit: first(queue.journalSoftLimit),
    durable: firstBoolean(queue.durable),
    durableHandles: firstBoolean(queue.durableHandles),
    latency: scenario.latency as string | LatencyProfileSpecification,
    faults: scenario.nemesis.faults.map((fault, index) => {
      const parameters: Record<string, number | boolean | string> = {};
      for (const [key, value] of Object.entries({ ...defaultFaultParameters(fault.kind), ...fault.parameters })) {
        parameters[key] = typeof value === 'string' ? value : typeof value === 'boolean' ? value : Array.isArray(value) && typeof value[0] === 'boolean' ? (value[0] as boolean) : first(value as NumberParameter);
      }
      return { kind: fault.kind, atMs: first(fault.atMs), durationMs: first(fault.durationMs), target: fault.target, choice: index, parameters };
    }),
    checkers: [...scenario.checkers],
    faultPhaseMs: first(options.faultPhaseMs),
    livenessBoundMs: first(options.livenessBoundMs),
    settleMs: first(options.settleMs),
    skewBoundMs: first(options.skewBoundMs),
    actimeoMs: first(options.actimeoMs),
    bodyBytes: first(workload.bodyBytes),
    durableLocksNeedSoleOpen: firstBoolean(options.durableLocksNeedSoleOpen),
    randomLockWaiterOrder: firstBoolean(options.randomLockWaiterOrder),
  };
}

/** The share's rules a run chose where they differ from the default, in words (empty: the defaults). */
export function shareRulesOf(config: Pick<RunConfig, 'durableLocksNeedSoleOpen' | 'randomLockWaiterOrder'>): string[] {
  const rules: string[] = [];
  if (config.randomLockWaiterOrder === true) rules.push('lock waiters granted in a random order');
  if (config.durableLocksNeedSoleOpen === true) rules.push("durable locks kept only for a sole opener (Samba's rule)");
  return rules;
}


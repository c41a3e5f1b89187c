/**
 * The scenario file format: what a run is made of (clients, workload, queue options, latency
 * profile, nemesis, checkers), as data. A parameter is a fixed value, a range `{min, max}` or a
 * list of choices; each seed draws concrete values (fast-check arbitraries, so failures shrink).
 *
 * Validated with zod: a bad file gets an error that names the field, what was expected and what
 * was found.
 */

import { z } from 'zod';
import { checkerNames } from '../properties/checkers.js';
import { latencyProfileNames } from '../sim/profiles.js';

/** A number parameter: a value, a range (integers if both ends are), or choices. */
export const numberParameter = z.union([
  z.number().finite(),
  z
    .object({ min: z.number().finite(), max: z.number().finite() })
    .strict()
    .refine((range) => range.min <= range.max, { message: 'min must not be above max' }),
  z.array(z.number().finite()).min(1),
]);
export type NumberParameter = z.infer<typeof numberParameter>;

/** Largest message body a scenario may ask for (`workload.bodyBytes`). */
export const maximumBodyBytes = 16 * 1024 * 1024;

/** A number parameter whose every possible value is an integer from `minimum` to `maximum`. */
function integerParameter(minimum: number, maximum: number): typeof numberParameter {
  const inRange = (value: number): boolean => Number.isInteger(value) && value >= minimum && value <= maximum;
  return numberParameter.refine(
    (parameter) => (typeof parameter === 'number' ? inRange(parameter) : Array.isArray(parameter) ? parameter.every(inRange) : inRange(parameter.min) && inRange(parameter.max)),
    { message: `expected integers from ${minimum} to ${maximum}` },
  ) as unknown as typeof numberParameter;
}

export const booleanParameter = z.union([z.boolean(), z.array(z.boolean()).min(1)], {
  error: 'expected true, false, or a non-empty list of them (one drawn per seed)',
});
export type BooleanParameter = z.infer<typeof booleanParameter>;

export const faultKinds = [
  // clients
  'crash',
  'pause',
  'partition',
  'session-drop',
  'clock-skew',
  'clock-jump',
  'lose-notify',
  'delay-notify',
  'oplock-delay',
  // the NAS
  'failover',
  'disk-failure',
  'disk-slow',
  'power-cut',
] as const;
export type FaultKind = (typeof faultKinds)[number];

export const faultTargets = ['any-client', 'any-sender', 'any-receiver', 'all-clients', 'lock-holder', 'server'] as const;

export const faultSchema = z
  .object({
    kind: z.enum(faultKinds),
    /** When the fault starts, ms of virtual time from the start of the run. */
    atMs: numberParameter,
    /** How long it lasts before its heal, ms (0 = until the liveness phase heals everything). */
    durationMs: numberParameter.default(0),
    /** Who it hits: a client name, a kind of client, or the server. */
    target: z
      .string()
      .default('any-client')
      .superRefine((target, context) => {
        if ((faultTargets as readonly string[]).includes(target) || /^(sender|receiver)-\d+$/.test(target)) return;
        context.addIssue({ code: 'custom', message: `expected ${faultTargets.join(', ')} or a client name like sender-0 or receiver-2` });
      }),
    /** Kind-specific parameters (e.g. offsetMs for clock-skew, disk for disk-failure). */
    parameters: z.record(z.string(), z.union([numberParameter, booleanParameter, z.string()])).default({}),
  })
  .strict();
export type FaultSpecification = z.infer<typeof faultSchema>;

export const swarmSchema = z
  .object({
    /** Fault kinds the swarm may draw from (default: all). */
    kinds: z.array(z.enum(faultKinds)).min(1).optional(),
    /** Most faults one run draws. */
    maximumFaults: z.number().int().min(0).max(64).default(6),
  })
  .strict();

/** The disk array behind the share (sim/profiles.ts `RaidConfiguration`; defaults by level). */
export const raidSchema = z
  .object({
    level: z.union([z.literal(5), z.literal(6), z.literal(10)]),
    /** Disks in the array (RAID-5 >= 3, RAID-6 >= 4, RAID-10 even and >= 4). */
    disks: z.number().int().min(3).max(64).optional(),
    /** Storage service-time factor per failed disk (default by level: 5 -> 2.0, 6 -> 1.6, 10 -> 1.3). */
    degradedFactor: z.number().finite().min(1).optional(),
    /** Extra factor while a rebuild runs (default 1.5). */
    rebuildFactor: z.number().finite().min(1).optional(),
    /** How long a rebuild takes, ms. */
    rebuildMs: z.number().finite().nonnegative().optional(),
  })
  .strict();

/** A latency profile of a scenario's own (docs/latency-profiles.md). */
export const latencyProfileSchema = z
  .object({
    name: z.string().min(1),
    /** Round trip of the network, ms (median). */
    roundTripMs: z.number().finite().nonnegative(),
    /** Service time of a simple request (a lock, a stat) at the server, ms (median); other operations weigh more or less. */
    serviceMs: z.number().finite().nonnegative(),
    /** Extra time of a flush / write-through, ms (median). */
    flushMs: z.number().finite().nonnegative(),
    /** Lognormal shape of the per-call jitter (0 = none). */
    jitterSigma: z.number().finite().nonnegative().default(0.5),
    /** Requests the server works on at once (more wait in line, first in, first out). */
    serverWorkers: z.number().int().positive().max(4096).default(16),
    /** Whether the write cache survives a power loss (NVRAM / battery). */
    batteryBacked: z.boolean().default(false),
    /** The disk array (default: RAID-6 of 6 disks). */
    raid: raidSchema.optional(),
    /** Throughput of the link to the share, MB/s each way, shared by all clients (0 = payloads take no time). */
    linkMBps: z.number().finite().nonnegative().default(0),
  })
  .strict();

/** Names of the built-in latency profiles (sim/profiles.ts). */
export const latencyProfileNameSchema = z.enum(latencyProfileNames);

export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a name of lowercase letters, digits and dashes'),
    description: z.string().min(1),
    clients: z
      .object({
        senders: numberParameter,
        receivers: numberParameter,
      })
      .strict(),
    workload: z
      .object({
        /** Messages in all (split evenly among senders). */
        messages: numberParameter,
        batch: numberParameter.default(1),
        receiveBatch: numberParameter.default(1),
        sendIntervalMs: numberParameter.default(5),
        delayedFraction: numberParameter.default(0),
        maxDelayMs: numberParameter.default(0),
        processMs: numberParameter.default(1),
        releaseFraction: numberParameter.default(0),
        waitMs: numberParameter.default(2_000),
        /** Bytes of each message body (0: just its label, a few bytes); at most 16 MiB. */
        bodyBytes: integerParameter(0, maximumBodyBytes).default(0),
      })
      .strict(),
    queue: z
      .object({
        slots: numberParameter.default(64),
        leaseMs: numberParameter.default(5_000),
        pollIntervalMs: numberParameter.default(500),
        lockWaitMs: numberParameter.default(60_000),
        maximumDeliveries: numberParameter.default(50),
        journalSoftLimit: numberParameter.default(8),
        durable: booleanParameter.default(false),
        durableHandles: booleanParameter.default(false),
      })
      .strict()
      .prefault({}),
    /** A named profile (docs/latency-profiles.md: lan-nvram, lan-hdd-raid6, wan-branch) or a profile of your own. */
    latency: z
      .union([latencyProfileNameSchema, latencyProfileSchema], {
        error: (issue) =>
          typeof issue.input === 'string'
            ? `expected a profile name (${latencyProfileNames.join(', ')})`
            : 'expected a profile object {name, roundTripMs, serviceMs, flushMs, jitterSigma?, serverWorkers?, batteryBacked?, raid?: {level: 5 | 6 | 10, disks?, degradedFactor?, rebuildFactor?, rebuildMs?}, linkMBps?} with valid values',
      })
      .default('lan-nvram'),
    nemesis: z
      .object({
        faults: z.array(faultSchema).default([]),
        swarm: swarmSchema.optional(),
      })
      .strict()
      .prefault({}),
    checkers: z.array(z.enum(checkerNames)).min(1).default([...checkerNames]),
    options: z
      .object({
        /** Faults heal and the liveness phase begins at this time, ms. */
        faultPhaseMs: numberParameter.default(10_000),
        /** After heal, the longest a ready message may wait while a receiver is idle, ms. */
        livenessBoundMs: numberParameter.default(20_000),
        /** The run ends at the latest this long after heal, ms. */
        settleMs: numberParameter.default(120_000),
        /** Largest clock difference between clients, ms (clock faults raise it). */
        skewBoundMs: numberParameter.default(0),
        /** Attribute cache lifetime of clients, ms (Linux cifs actimeo). */
        actimeoMs: numberParameter.default(1_000),
        /**
         * The share keeps a durable handle's locks across a disconnect only for its file's sole
         * opener, as Samba does (docs/conformance.md); default: always (durable handles keep them).
         */
        durableLocksNeedSoleOpen: booleanParameter.default(false),
        /**
         * The share grants blocking lock requests in a random order drawn from the seed, as
         * Samba's racing waiters may (docs/conformance.md); default: first in, first out.
         */
        randomLockWaiterOrder: booleanParameter.default(false),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Scenario = z.infer<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;

export class ScenarioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioError';
  }
}

/** Validates a scenario, with errors that name the field, the expectation and the value found. */
export function parseScenario(input: unknown, source: string): Scenario {
  const result = scenarioSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.slice(0, 8).map((issue) => {
    const path = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
    const found = valueAt(input, issue.path);
    return `  ${path}: ${issue.message}${found === undefined ? '' : ` (found ${JSON.stringify(found)?.slice(0, 80)})`}`;
  });
  throw new ScenarioError(`scenario ${source} is not valid:\n${lines.join('\n')}`);
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

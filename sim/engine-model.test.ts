/**
 * The engine's model-based suite over the simulated share, with 8 concurrent virtual clients.
 *
 * fast-check draws a script for each of 8 clients (send, send a batch, receive, ack, release,
 * sleep: leases run out as virtual time passes) and the simulation seed, which decides the
 * latencies and the order of simultaneous events: so every case is one interleaving of the
 * engine's real port calls on the simulated CIFS share, and a failure shrinks to fewer and
 * shorter scripts and replays from its seed. Checked:
 * - after every write of the kernel file, every invariant of the format holds (the server's write
 *   hook and kernelViolations);
 * - every call agrees with what a model of the queue allows: a delivery is of a message whose
 *   send began, never before its delivery time, with a lease in the future; the deliveries of a
 *   message count 1, 2, 3 ... with a new lease token each; an ack succeeds only for the newest
 *   delivery of a message, and nothing is delivered after it was acked;
 * - at the end, after every lease has run out and one client drained the queue, every message
 *   whose send returned was acked exactly once, nothing else was, and the queue is empty.
 * Two planted bugs are shown to be caught: acks without the fencing check (a QueueClient whose
 * `leaseHolds` always says yes) and clients whose header lock does nothing (a ports wrapper).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNasqError } from '../engine/errors.js';
import type { Slot } from '../engine/format.js';
import { kernelViolations } from '../engine/kernel-image.js';
import type { FileSystem, Ports } from '../engine/ports.js';
import { QueueClient, createQueue, type Delivery, type Receipt } from '../engine/queue.js';
import { Simulation } from './simulation.js';

const clientCount = 8;
const leaseMs = 500;
const kernelPath = 'q/kernel';

type Step =
  | { kind: 'send'; delayMs: number }
  | { kind: 'sendBatch'; count: number }
  | { kind: 'receive'; maximum: number; waitMs: number }
  | { kind: 'ack' | 'release'; pick: number }
  | { kind: 'sleep'; durationMs: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), delayMs: fc.constantFrom(0, 0, 0, 20, 300) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sendBatch' as const), count: fc.integer({ min: 2, max: 4 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('receive' as const), maximum: fc.constantFrom(1, 1, 3), waitMs: fc.constantFrom(0, 0, 50) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat({ max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat({ max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sleep' as const), durationMs: fc.constantFrom(10, 200, 700) }) },
);

const scenario = fc.record({
  simulationSeed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  scripts: fc.array(fc.array(step, { minLength: 1, maxLength: 14 }), { minLength: clientCount, maxLength: clientCount }),
  slots: fc.integer({ min: 4, max: 24 }),
  journalSoftLimit: fc.integer({ min: 1, max: 8 }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

interface DeliveryRecord {
  readonly id: string;
  readonly deliveryCount: number;
  readonly leaseToken: number;
}

/** What a run saw; the checks read it afterwards. */
class Observed {
  /** Ids of messages whose send returned. */
  readonly sent = new Set<string>();
  /** Bodies of sends that began, by body (a delivered body must be one of them). */
  readonly bodiesSent = new Set<string>();
  readonly deliveries = new Map<string, DeliveryRecord[]>();
  /** Successful acks, in order: the id and the lease token acked. */
  readonly acks: Array<{ id: string; leaseToken: number }> = [];
  readonly ackedIds = new Set<string>();
  readonly violations: string[] = [];
}

type Variant = { clientClass: typeof QueueClient; wrapPorts?: (ports: Ports) => Ports };

async function runScenario({ simulationSeed, scripts, slots, journalSoftLimit }: Scenario, variant: Variant): Promise<Observed> {
  const observed = new Observed();
  const simulation = new Simulation({ seed: simulationSeed, latency: { oneWayMs: 0.1, jitterMs: 0.3 }, clientErrors: 'record' });
  simulation.server.onWrite(kernelPath, (event) => {
    for (const violation of kernelViolations(event.contents)) {
      observed.violations.push(`after a ${event.operation} of ${event.client} at ${event.timeMs.toFixed(3)} ms: ${violation}`);
    }
  });
  simulation.addClient('creator', (ports) => createQueue(ports, 'q', { slots, maximumDeliveries: 1_000 }));
  await simulation.run();
  const open = (ports: Ports) =>
    variant.clientClass.open(variant.wrapPorts === undefined ? ports : variant.wrapPorts(ports), 'q', { leaseMs, lockWaitMs: 600_000, journalSoftLimit });

  const record = (delivery: Delivery, now: number, client: string): void => {
    const body = new TextDecoder().decode(delivery.body);
    if (!observed.bodiesSent.has(body)) observed.violations.push(`${client} received ${delivery.id} with body ${body}, never sent`);
    if (observed.ackedIds.has(delivery.id)) observed.violations.push(`${client} received ${delivery.id} after it was acked`);
    if (delivery.deliverAt > now) observed.violations.push(`${client} received ${delivery.id} at ${now}, before its time ${delivery.deliverAt}`);
    if (delivery.receipt.leaseExpiry <= now) observed.violations.push(`${client} received ${delivery.id} with a lease already over`);
    const list = observed.deliveries.get(delivery.id) ?? [];
    list.push({ id: delivery.id, deliveryCount: delivery.deliveryCount, leaseToken: delivery.receipt.leaseToken });
    observed.deliveries.set(delivery.id, list);
  };
  const acked = (receipt: Receipt, client: string): void => {
    const newest = observed.deliveries.get(receipt.id)?.at(-1);
    if (newest === undefined || newest.leaseToken !== receipt.leaseToken) {
      observed.violations.push(`${client} acked ${receipt.id} with lease ${receipt.leaseToken}, not the newest delivery's (${newest?.leaseToken})`);
    }
    if (observed.ackedIds.has(receipt.id)) observed.violations.push(`${client} acked ${receipt.id} a second time`);
    observed.ackedIds.add(receipt.id);
    observed.acks.push({ id: receipt.id, leaseToken: receipt.leaseToken });
  };

  scripts.forEach((script, index) => {
    const name = `client-${index}`;
    simulation.addClient(name, async (ports) => {
      const client = await open(ports);
      const held: Delivery[] = [];
      let sequence = 0;
      for (const current of script) {
        try {
          switch (current.kind) {
            case 'send': {
              const body = `${name}/${sequence++}`;
              observed.bodiesSent.add(body);
              observed.sent.add(await client.send(body, { deliverAt: ports.clock.now() + current.delayMs }));
              break;
            }
            case 'sendBatch': {
              const bodies = Array.from({ length: current.count }, () => `${name}/${sequence++}`);
              for (const body of bodies) observed.bodiesSent.add(body);
              for (const id of await client.sendBatch(bodies.map((body) => ({ body })))) observed.sent.add(id);
              break;
            }
            case 'receive':
              for (const delivery of await client.receiveBatch(current.maximum, { waitMs: current.waitMs })) {
                record(delivery, ports.clock.now(), name);
                held.push(delivery);
              }
              break;
            case 'ack':
            case 'release': {
              if (held.length === 0) break;
              const [delivery] = held.splice(current.pick % held.length, 1);
              if (current.kind === 'ack') {
                await client.ack(delivery!.receipt);
                acked(delivery!.receipt, name);
              } else {
                await client.release(delivery!.receipt);
              }
              break;
            }
            case 'sleep':
              await ports.clock.sleepUntil(ports.clock.now() + current.durationMs);
              break;
          }
        } catch (error) {
          if (isNasqError(error, 'QUEUE_FULL')) {
            const partly = error.details['sent'];
            if (Array.isArray(partly)) for (const id of partly) observed.sent.add(id as string);
          } else if (!isNasqError(error, 'LEASE_LOST')) {
            throw error;
          }
        }
      }
      await client.close();
    });
  });
  await simulation.run();

  // Drain: once every lease has run out, one client takes and acks whatever is left.
  simulation.addClient(
    'drainer',
    async (ports) => {
      const client = await QueueClient.open(ports, 'q', { leaseMs: 60_000 });
      for (let round = 0; round < 1_000; round += 1) {
        const deliveries = await client.receiveBatch(8);
        if (deliveries.length === 0) break;
        for (const delivery of deliveries) {
          record(delivery, ports.clock.now(), 'drainer');
          await client.ack(delivery.receipt);
          acked(delivery.receipt, 'drainer');
        }
      }
      const stat = await client.stat();
      if (stat.emptyCount !== slots) observed.violations.push(`after the drain ${stat.emptyCount} of ${slots} slots are empty`);
      await client.close();
    },
    { startAtMs: simulation.nowMs + 10 * leaseMs + 2_000 },
  );
  await simulation.run();
  for (const client of simulation.clients) {
    if (client.status === 'failed') observed.violations.push(`${client.name} failed: ${String(client.error)}`);
  }
  return observed;
}

/** The end state against the model: every returned send acked exactly once, deliveries counted right. */
function endViolations(observed: Observed): string[] {
  const violations = [...observed.violations];
  for (const id of observed.sent) if (!observed.ackedIds.has(id)) violations.push(`${id} was sent but never acked`);
  for (const { id } of observed.acks) {
    if (!observed.sent.has(id) && !observed.deliveries.has(id)) violations.push(`${id} was acked but never sent`);
  }
  for (const [id, list] of observed.deliveries) {
    const counts = list.map((delivery) => delivery.deliveryCount).sort((a, b) => a - b);
    if (counts.some((count, index) => count !== index + 1)) violations.push(`${id} was delivered with counts ${counts.join(', ')}`);
    if (new Set(list.map((delivery) => delivery.leaseToken)).size !== list.length) violations.push(`${id} was delivered twice under one lease`);
  }
  return violations;
}

function property(variant: Variant) {
  return fc.asyncProperty(scenario, async (drawn) => {
    const violations = endViolations(await runScenario(drawn, variant));
    expect(violations).toEqual([]);
  });
}

/** Planted bug: ack and release without the fencing check. */
class UnfencedClient extends QueueClient {
  protected override leaseHolds(_slot: Slot, _receipt: Receipt): boolean {
    return true;
  }
}

/** Planted bug: the header lock does nothing (lock and unlock return at once). */
function withoutLocks(ports: Ports): Ports {
  const fs = ports.fs;
  const unlocked: FileSystem = new Proxy(fs, {
    get(target, property) {
      if (property === 'lock' || property === 'unlock') return async () => undefined;
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { fs: unlocked, clock: ports.clock };
}

describe('engine model-based suite over the simulated share (8 concurrent virtual clients)', () => {
  it('keeps the kernel invariants after every write and agrees with the model', async () => {
    await fc.assert(property({ clientClass: QueueClient }), { numRuns: 300 });
  });

  it('finds a planted bug: ack without the fencing check', async () => {
    const result = await fc.check(property({ clientClass: UnfencedClient }), { numRuns: 300, seed: 11 });
    expect(result.failed).toBe(true);
  });

  it('finds a planted bug: a header lock that does nothing', async () => {
    const result = await fc.check(property({ clientClass: QueueClient, wrapPorts: withoutLocks }), { numRuns: 300, seed: 11 });
    expect(result.failed).toBe(true);
  });
});

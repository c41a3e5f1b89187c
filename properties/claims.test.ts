/**
 * The claims about where the queue lives (8, 9, 10, 14, 15), shown on the simulated share: a
 * CIFS file system with strictly enforced, network-wide byte-range locks, on a fault-tolerant
 * NAS, reached by clients over a network. (Claims 1-7, 11-13, 16, 17 are shown by
 * engine/queue.test.ts; docs/claims.md maps every claim.)
 */

import { describe, expect, it } from 'vitest';
import { NasqError } from '../engine/errors.js';
import { headerRegionSize } from '../engine/format.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import type { FileSystem } from '../engine/ports.js';
import { resolveScenarios } from '../scenarios/index.js';
import { Simulation } from '../sim/simulation.js';
import { check } from './check.js';

describe('claims 8 and 14: a queue on a CIFS file system with strictly enforced, network-wide locks', () => {
  it('keeps every other client, on its own session, out of the header while one holds the lock', async () => {
    const simulation = new Simulation({ seed: 8 });
    simulation.addClient('setup', async (ports) => {
      await createQueue(ports, 'q', { slots: 8 });
    });
    await simulation.run();
    const seen: string[] = [];
    // The holder takes the header lock and keeps it for a second, while the other client tries.
    simulation.addClient('holder', async ({ fs, clock }) => {
      const kernel = await fs.open('q/kernel');
      await fs.lock(kernel, { offset: 0, length: headerRegionSize });
      seen.push('holder locked');
      await clock.sleepUntil(clock.now() + 1_000);
      await fs.unlock(kernel, { offset: 0, length: headerRegionSize });
      await fs.close(kernel);
    });
    simulation.addClient('other', async ({ fs, clock }) => {
      await clock.sleepUntil(clock.now() + 50);
      const kernel = await fs.open('q/kernel');
      const attempt = async (what: string, call: (files: FileSystem) => Promise<unknown>) => {
        try {
          await call(fs);
          seen.push(`${what}: allowed`);
        } catch (error) {
          seen.push(`${what}: ${(error as NasqError).code}`);
        }
      };
      await attempt('read header', (files) => files.read(kernel, 0, 128));
      await attempt('write header', (files) => files.write(kernel, 0, new Uint8Array(8)));
      await attempt('lock header', (files) => files.lock(kernel, { offset: 0, length: headerRegionSize }));
      await attempt('read a slot', (files) => files.read(kernel, headerRegionSize, 96));
      await fs.close(kernel);
    });
    await simulation.run();
    expect(seen).toEqual(['holder locked', 'read header: LOCK_CONFLICT', 'write header: LOCK_CONFLICT', 'lock header: LOCK_NOT_GRANTED', 'read a slot: allowed']);
  });

  it('runs the queue over it: 6 clients on 6 sessions send, receive and ack exactly once', async () => {
    const simulation = new Simulation({ seed: 14 });
    simulation.addClient('setup', async (ports) => {
      await createQueue(ports, 'q', { slots: 32 });
    });
    await simulation.run();
    const acked: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      simulation.addClient(`sender-${index}`, async (ports) => {
        const client = await QueueClient.open(ports, 'q');
        for (let count = 0; count < 10; count += 1) await client.send(`from ${index}: ${count}`);
        await client.close();
      });
      simulation.addClient(`receiver-${index}`, async (ports) => {
        const client = await QueueClient.open(ports, 'q');
        for (let round = 0; round < 100 && acked.length < 30; round += 1) {
          const delivery = await client.receive({ waitMs: 200 });
          if (delivery === null) continue;
          await client.ack(delivery.receipt);
          acked.push(delivery.id);
        }
        await client.close();
      });
    }
    await simulation.run();
    expect(acked).toHaveLength(30);
    expect(new Set(acked).size).toBe(30);
  });

  it('keeps the lock rules when the network drops a session: the server, not the client, decides', async () => {
    const report = await check({ scenarios: await resolveScenarios('session-drop'), seeds: 20, seed: 14 }, () => 0);
    expect(report.failures).toBe(0);
  });
});

describe('claim 15: the clients reach the file system over a network', () => {
  it('pays a network round trip for every call', async () => {
    const oneWayMs = 5;
    const simulation = new Simulation({ seed: 15, latency: { oneWayMs, jitterMs: 0, serviceMs: { lock: 0, unlock: 0, open: 0 } } });
    simulation.addClient('setup', async (ports) => {
      await createQueue(ports, 'q', { slots: 4 });
    });
    await simulation.run();
    const durations: number[] = [];
    simulation.addClient('client', async ({ fs }) => {
      const kernel = await fs.open('q/kernel');
      const before = simulation.nowMs;
      await fs.lock(kernel, { offset: 0, length: headerRegionSize });
      durations.push(simulation.nowMs - before);
      await fs.unlock(kernel, { offset: 0, length: headerRegionSize });
      await fs.close(kernel);
    });
    await simulation.run();
    expect(durations[0]).toBeCloseTo(2 * oneWayMs, 6);
  });
});

/**
 * Latency profiles (docs/latency-profiles.md): over a long run, the latency clients measure
 * matches each profile's configured distribution within 5 % at p50 and p99, and a busy server
 * queues first in, first out.
 *
 * The configured distribution of an operation at a server that is not saturated (fewer clients
 * than workers, so nobody waits for a worker) is lognormal: median = round trips x roundTripMs +
 * service weight x serviceMs (+ flushMs for a flush), p99 = median x e^(2.3263 jitterSigma).
 */

import { describe, expect, it } from 'vitest';
import type { Clock, FileHandle } from '../engine/ports.js';
import { Operation } from './protocol.js';
import {
  ProfileLatency,
  builtinProfile,
  latencyModelFor,
  latencyProfileNames,
  medianCostMs,
  normalQuantile99,
  resolveProfile,
} from './profiles.js';
import { CallFlag } from './protocol.js';
import { Simulation } from './simulation.js';

/** Times calls on `clock`: `time(name, call)` puts how long `call` took into `elapsed[name]`. */
function stopwatch(clock: Clock, elapsed: Record<string, number>): (name: string, call: () => Promise<unknown>) => Promise<void> {
  return async (name, call) => {
    const start = clock.now();
    await call();
    elapsed[name] = clock.now() - start;
  };
}

function quantile(sorted: readonly number[], fraction: number): number {
  // Nearest rank on the sorted sample.
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index]!;
}

type Measured = Record<'read' | 'lock' | 'writeFileSync' | 'stat', number[]>;

/** `clients` clients, each on files of its own (no lock waits), each call timed on an exact clock. */
async function measure(profileName: (typeof latencyProfileNames)[number], clients: number, rounds: number, seed: number): Promise<Measured> {
  const simulation = new Simulation({ seed, latency: latencyModelFor(profileName), clockResolutionMs: 0, actimeoMs: 0, host: null });
  const measured: Measured = { read: [], lock: [], writeFileSync: [], stat: [] };
  const payload = new Uint8Array(64);
  for (let index = 0; index < clients; index += 1) {
    simulation.addClient(`client-${index}`, async ({ fs, clock }) => {
      const path = `file-${index}`;
      await fs.writeFile(path, payload);
      const handle: FileHandle = await fs.open(path);
      const time = async (list: number[], call: () => Promise<unknown>): Promise<void> => {
        const start = clock.now();
        await call();
        list.push(clock.now() - start);
      };
      for (let round = 0; round < rounds; round += 1) {
        await time(measured.read, () => fs.read(handle, 0, 64));
        await time(measured.lock, () => fs.lock(handle, { offset: 0, length: 8 }));
        await fs.unlock(handle, { offset: 0, length: 8 });
        await time(measured.writeFileSync, () => fs.writeFile(`${path}.copy`, payload, { sync: true }));
        await time(measured.stat, () => fs.stat(path));
      }
      await fs.close(handle);
    });
  }
  await simulation.run();
  return measured;
}

describe('latency profiles: measured latency matches the configured distribution (within 5 % at p50 and p99)', () => {
  for (const name of latencyProfileNames) {
    it(name, async () => {
      const profile = builtinProfile(name);
      // Fewer clients than workers: the server is never saturated, so no call waits in line.
      const clients = Math.min(8, profile.serverWorkers);
      const measured = await measure(name, clients, 3_000, 7);
      const expected: Array<[keyof Measured, number]> = [
        ['read', medianCostMs(profile, Operation.read)],
        ['lock', medianCostMs(profile, Operation.lock)],
        ['writeFileSync', medianCostMs(profile, Operation.writeFile, CallFlag.sync)],
        ['stat', medianCostMs(profile, Operation.stat)],
      ];
      const tail = Math.exp(normalQuantile99 * profile.jitterSigma);
      for (const [operation, median] of expected) {
        const sample = [...measured[operation]].sort((a, b) => a - b);
        expect(sample.length).toBe(clients * 3_000);
        const p50 = quantile(sample, 0.5);
        const p99 = quantile(sample, 0.99);
        expect(Math.abs(p50 / median - 1), `${name} ${operation} p50 ${p50} vs ${median}`).toBeLessThan(0.05);
        expect(Math.abs(p99 / (median * tail) - 1), `${name} ${operation} p99 ${p99} vs ${median * tail}`).toBeLessThan(0.05);
      }
      // The profiles differ where the model doc says they do (section 4).
      if (name === 'lan-hdd-raid6') expect(medianCostMs(profile, Operation.sync) - medianCostMs(profile, Operation.stat)).toBeGreaterThan(5);
      if (name === 'wan-branch') expect(medianCostMs(profile, Operation.lock)).toBeGreaterThan(10);
    });
  }

  it('the test can fail: a profile with twice the round trip is 5 % off', async () => {
    const profile = builtinProfile('lan-nvram');
    const measured = await measure('lan-nvram', 4, 500, 3);
    const sample = [...measured.read].sort((a, b) => a - b);
    const wrongMedian = medianCostMs({ ...profile, roundTripMs: profile.roundTripMs * 2 }, Operation.read);
    expect(Math.abs(quantile(sample, 0.5) / wrongMedian - 1)).toBeGreaterThan(0.05);
  });
});

describe('a flush costs its time', () => {
  it('an unlink or rename with sync (a durable ack, a durable dead letter) pays flushMs on top, like a writeFile with sync', async () => {
    const latency = new ProfileLatency(resolveProfile({ name: 'flush', roundTripMs: 1, serviceMs: 2, flushMs: 7, jitterSigma: 0, serverWorkers: 4 }));
    const simulation = new Simulation({ seed: 1, latency, clockResolutionMs: 0, tieBreak: 'sequence', host: null });
    const elapsed: Record<string, number> = {};
    simulation.addClient('acker', async ({ fs, clock }) => {
      const timed = stopwatch(clock, elapsed);
      await fs.writeFile('a', new Uint8Array(1));
      await fs.writeFile('b', new Uint8Array(1));
      await timed('unlink', () => fs.unlink('a'));
      await timed('unlinkSync', () => fs.unlink('b', { sync: true }));
      await fs.writeFile('c', new Uint8Array(1));
      await timed('rename', () => fs.rename('c', 'd'));
      await timed('renameSync', () => fs.rename('d', 'e', { sync: true }));
    });
    await simulation.run();
    // One round trip (1 ms) + unlink's (and rename's) service weight 1 x 2 ms; the flush adds 7 ms.
    expect(elapsed['unlink']).toBeCloseTo(3, 6);
    expect(elapsed['unlinkSync']).toBeCloseTo(10, 6);
    expect(elapsed['rename']).toBeCloseTo(3, 6);
    expect(elapsed['renameSync']).toBeCloseTo(10, 6);
    expect(medianCostMs(latency.profile, Operation.unlink, CallFlag.sync) - medianCostMs(latency.profile, Operation.unlink)).toBeCloseTo(7, 6);
  });
});

describe('a busy server queues requests first in, first out for its workers', () => {
  it('one worker, no jitter: each of 10 simultaneous requests waits for the ones before it', async () => {
    const latency = new ProfileLatency(resolveProfile({ name: 'one-worker', roundTripMs: 1, serviceMs: 2, flushMs: 0, jitterSigma: 0, serverWorkers: 1 }));
    const simulation = new Simulation({ seed: 1, latency, clockResolutionMs: 0, tieBreak: 'sequence', host: null });
    const finished: Array<{ name: string; elapsedMs: number }> = [];
    for (let index = 0; index < 10; index += 1) {
      simulation.addClient(`client-${index}`, async ({ fs, clock }) => {
        const start = clock.now();
        await fs.stat('');
        finished.push({ name: `client-${index}`, elapsedMs: clock.now() - start });
      });
    }
    await simulation.run();
    // stat: one round trip (1 ms) + 0.3 x 2 ms of service; the k-th in line waits k services.
    expect(finished.map((entry) => entry.name)).toEqual(Array.from({ length: 10 }, (_, index) => `client-${index}`));
    finished.forEach((entry, index) => expect(entry.elapsedMs).toBeCloseTo(1 + 0.6 * (index + 1), 3));
  });

  it('more workers, less waiting: 64 clients on 4 workers wait longer than on 64', async () => {
    const run = async (workers: number): Promise<number> => {
      const latency = new ProfileLatency(resolveProfile({ name: 'busy', roundTripMs: 0.2, serviceMs: 1, flushMs: 0, jitterSigma: 0.3, serverWorkers: workers }));
      const simulation = new Simulation({ seed: 2, latency, clockResolutionMs: 0, actimeoMs: 0, host: null });
      let total = 0;
      for (let index = 0; index < 64; index += 1) {
        simulation.addClient(`client-${index}`, async ({ fs, clock }) => {
          for (let round = 0; round < 50; round += 1) {
            const start = clock.now();
            await fs.stat('');
            total += clock.now() - start;
          }
        });
      }
      await simulation.run();
      return total / (64 * 50);
    };
    const crowded = await run(4);
    const roomy = await run(64);
    expect(roomy).toBeLessThan(0.6);
    expect(crowded).toBeGreaterThan(3 * roomy);
  });
});

describe('the link to the share: payloads take bytes / throughput, one at a time each way', () => {
  // 1 ms round trip, no service time, no jitter: a call's cost is its round trips plus its payload.
  const linked = (linkMBps: number): ProfileLatency =>
    new ProfileLatency(resolveProfile({ name: 'link', roundTripMs: 1, serviceMs: 0, flushMs: 0, jitterSigma: 0, serverWorkers: 64, linkMBps }));

  it('a write and a read of 100,000 bytes on a 10 MB/s link take 10 ms more each; small calls do not notice', async () => {
    const simulation = new Simulation({ seed: 1, latency: linked(10), clockResolutionMs: 0, actimeoMs: 0, host: null });
    const elapsed: Record<string, number> = {};
    simulation.addClient('client', async ({ fs, clock }) => {
      const time = stopwatch(clock, elapsed);
      const handle = await fs.open('file', { create: true });
      await time('write', () => fs.write(handle, 0, new Uint8Array(100_000)));
      await time('read', () => fs.read(handle, 0, 100_000));
      await time('lock', () => fs.lock(handle, { offset: 0, length: 1 }));
      await fs.unlock(handle, { offset: 0, length: 1 });
      await time('readFile', () => fs.readFile('file'));
    });
    await simulation.run();
    expect(simulation.client('client').status).toBe('finished');
    // 100,000 bytes at 10^7 bytes per second: 10 ms.
    expect(elapsed['write']).toBeCloseTo(1 + 10, 6);
    expect(elapsed['read']).toBeCloseTo(1 + 10, 6);
    expect(elapsed['lock']).toBeCloseTo(1, 6);
    expect(elapsed['readFile']).toBeCloseTo(3 + 10, 6);
  });

  it('clients share the link: four simultaneous writes of 50,000 bytes end 5 ms apart; without a link, together', async () => {
    const run = async (linkMBps: number): Promise<number[]> => {
      const simulation = new Simulation({ seed: 3, latency: linked(linkMBps), clockResolutionMs: 0, actimeoMs: 0, tieBreak: 'sequence', host: null });
      const ends: number[] = [];
      for (let index = 0; index < 4; index += 1) {
        simulation.addClient(`client-${index}`, async ({ fs, clock }) => {
          const handle = await fs.open(`file-${index}`, { create: true });
          const start = clock.now();
          await fs.write(handle, 0, new Uint8Array(50_000));
          ends.push(clock.now() - start);
        });
      }
      await simulation.run();
      return ends.sort((a, b) => a - b);
    };
    const shared = await run(10);
    shared.forEach((elapsedMs, index) => expect(elapsedMs).toBeCloseTo(1 + 5 * (index + 1), 6));
    expect(await run(0)).toEqual([1, 1, 1, 1]);
  });
});

describe('profile descriptions', () => {
  it('a scenario profile is completed with defaults and checked', () => {
    const profile = resolveProfile({ name: 'mine', roundTripMs: 2, serviceMs: 1, flushMs: 3 });
    expect(profile.jitterSigma).toBe(0.5);
    expect(profile.serverWorkers).toBe(16);
    expect(profile.raid.level).toBe(6);
    expect(resolveProfile({ name: 'r5', roundTripMs: 2, serviceMs: 1, flushMs: 3, raid: { level: 5 } }).raid.degradedFactor).toBe(2);
    expect(() => resolveProfile({ name: 'bad', roundTripMs: -1, serviceMs: 1, flushMs: 0 })).toThrow(/roundTripMs: expected a finite number >= 0, got -1/);
    expect(() => resolveProfile({ name: 'bad', roundTripMs: 1, serviceMs: 1, flushMs: 0, serverWorkers: 0 })).toThrow(/serverWorkers/);
    expect(() => resolveProfile({ name: 'bad', roundTripMs: 1, serviceMs: 1, flushMs: 0, raid: { level: 10, disks: 5 } })).toThrow(/even/);
    expect(() => resolveProfile('lan-fast')).toThrow(/unknown; expected one of lan-nvram, lan-hdd-raid6, wan-branch/);
    expect(profile.linkMBps).toBe(0);
    expect(() => resolveProfile({ name: 'bad', roundTripMs: 1, serviceMs: 1, flushMs: 0, linkMBps: -5 })).toThrow(/linkMBps: expected a finite number >= 0, got -5/);
  });
});

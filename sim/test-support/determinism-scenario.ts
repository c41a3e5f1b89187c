/**
 * A busy scenario for determinism checks: contended header locks with bounded waits, durable and
 * plain handles, notifications, seeded jitter and workload choices, a crash with a restart, a
 * dropped session and a clock change. Run in-process by the tests and in child processes by
 * determinism-main.ts; the same seed must give the same trace hash everywhere.
 */

import { isNasqError } from '../../engine/errors.js';
import type { FileHandle, FileSystem, Ports } from '../../engine/ports.js';
import type { ClientContext } from '../client.js';
import { Simulation } from '../simulation.js';

export interface ScenarioOutcome {
  readonly traceHash: string;
  readonly events: number;
  readonly fsOps: number;
  readonly simulatedMs: number;
  /** Which client took the header lock, in order: the interleaving. */
  readonly lockOrder: string;
  readonly counter: number;
}

const header = { offset: 0, length: 64 } as const;

async function openKernel(fs: FileSystem, durable: boolean): Promise<FileHandle> {
  return fs.open('queue/kernel', { create: true, durable });
}

export async function runDeterminismScenario(seed: number | string, clientCount = 8, iterations = 40): Promise<ScenarioOutcome> {
  const simulation = new Simulation({ seed, latency: { oneWayMs: 0.1, jitterMs: 0.2 }, host: null });
  const lockOrder: string[] = [];
  let counter = 0;

  const worker = async ({ fs, clock }: Ports, context: ClientContext): Promise<void> => {
    await fs.mkdir('queue', { recursive: true });
    let handle = await openKernel(fs, context.index % 2 === 0);
    for (let iteration = 0; iteration < iterations; iteration += 1) {
      await clock.sleepUntil(clock.now() + context.random.uniform(0, 3));
      try {
        await fs.lock(handle, header, { waitMs: 5 + context.random.integer(20) });
        lockOrder.push(context.name);
        const bytes = await fs.read(handle, 0, 8);
        const value = bytes.length === 8 ? new DataView(bytes.buffer, bytes.byteOffset).getFloat64(0, true) : 0;
        const next = new Uint8Array(8);
        new DataView(next.buffer).setFloat64(0, value + 1, true);
        await fs.write(handle, 0, next);
        counter = Math.max(counter, value + 1);
        if (context.random.chance(0.3)) await fs.setTimes('queue/notify', clock.now(), clock.now()).catch(() => fs.writeFile('queue/notify', next));
        await fs.unlock(handle, header);
      } catch (error) {
        if (isNasqError(error, 'LOCK_NOT_GRANTED', 'RANGE_NOT_LOCKED')) continue;
        if (isNasqError(error, 'CLOSED_HANDLE', 'SHARE_UNAVAILABLE')) {
          handle = await openKernel(fs, context.index % 2 === 0);
          continue;
        }
        throw error;
      }
    }
    await fs.close(handle).catch(() => undefined);
  };

  const watcher = async ({ fs, clock }: Ports): Promise<number> => {
    await fs.mkdir('queue', { recursive: true });
    const watch = await fs.watch('queue', { lastWrite: true, size: true, fileName: true });
    let changes = 0;
    const end = clock.now() + 400;
    while (clock.now() < end) {
      const result = await clock.waitForChange(watch, Math.min(end, clock.now() + 25));
      if (result !== 'timeout') changes += 1;
    }
    return changes;
  };

  for (let index = 0; index < clientCount; index += 1) {
    simulation.addClient(`worker-${index}`, worker, { startAtMs: index * 0.05 });
  }
  simulation.addClient('watcher', watcher);
  if (clientCount > 4) {
    simulation.at(30, (sim) => {
      sim.crash('worker-2');
      sim.restart('worker-2', undefined, { afterMs: 5 });
    });
    simulation.at(45, (sim) => sim.dropSession('worker-3'));
    simulation.at(20, (sim) => sim.setClockOffset('worker-4', 250));
  }
  const { stats } = await simulation.run();
  return {
    traceHash: stats.traceHash,
    events: stats.events,
    fsOps: stats.fsOps,
    simulatedMs: stats.simulatedMs,
    lockOrder: lockOrder.join(','),
    counter,
  };
}

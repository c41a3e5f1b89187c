/**
 * The simulator's speed and size (issue 4):
 *
 * - `sim.fsOpsPerSec`: simulated file-system port calls per wall second, 64 virtual clients
 *   running the engine (send, receive, ack: sim/plain-run.ts) on one queue on the simulated share.
 * - `sim.ceilingOpsPerSec`: the same port calls over a share that does nothing (sim/null-server.ts):
 *   the simulator's own cost per call, with no engine and no server work. The calls are those an
 *   engine run made, recorded per client and replayed in order (the engine cannot run on a share
 *   that stores nothing).
 * - `sim.fsOpsShareOfCeiling`: the first over the second (target at least 0.25), as the median of
 *   the ratios of runs made in pairs, one of each in turn (pairedRuns): a host that slows down
 *   for a while slows both runs of a pair.
 * - `sim.engineAloneOpsPerSec`: the same engine run's port calls with every answer free: the
 *   recorded answers replayed to the same client programs (bench/engine-alone.ts). The engine's
 *   own cost per call; no simulator running this engine can do more calls per second.
 * - `sim.floorOpsPerSec`: as many awaited calls of 64 clients with nothing but a promise and an
 *   arrival and a reply event each (floorRun): what any simulator of this design pays per call,
 *   the bound under the ceiling.
 * - `sim.fsOpsPerCpuSec`, `sim.ceilingOpsPerCpuSec`: the same per second of this process's CPU
 *   time (user + system, garbage collector threads included): steadier on a busy shared machine.
 * - `sim.peakRssMb.1000clients`: peak resident memory of one run of 1,000 clients and 1,000,000
 *   messages, in a child process with a 4 GiB heap limit (sim-peak-worker.ts); the run's own
 *   rate is `sim.fsOpsPerSec.1000clients`.
 *
 * Each rate is the median of several runs (at least three, more while the time budget lasts), after
 * one untimed warm-up run.
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ByteRange, FileHandle, LockOptions, OpenOptions, WatchFilter, WriteFileOptions } from '../engine/ports.js';
import { EventQueue, type EventHandler, SimEvent } from '../sim/event-queue.js';
import { createNullServer } from '../sim/null-server.js';
import { type HandleReference, type RecordedCall, handleMethods, recordEngineRun, replayAnswers } from './engine-alone.js';
import { runPlainWorkload } from '../sim/plain-run.js';
import { Simulation } from '../sim/simulation.js';
import { median, round, type Figures, type Suite } from './harness.js';

const benchmarkClients = 64;
const messagesPerClient = 50;
const minimumRuns = 3;
const maximumRuns = 15;

type Run = () => Promise<{ fsOps: number; wallMs: number }>;

interface Rates {
  readonly perWallSecond: number;
  readonly perCpuSecond: number;
}

/** The rates of runs, per wall second and per second of this process's CPU time. */
class RunRates {
  private readonly perWall: number[] = [];
  private readonly perCpu: number[] = [];
  /** Wall time the runs took, ms. */
  spentMs = 0;

  /** Runs `run` once; returns its rate per wall second. */
  async time(run: Run): Promise<number> {
    const cpuBefore = process.cpuUsage();
    const { fsOps, wallMs } = await run();
    const cpu = process.cpuUsage(cpuBefore);
    const perWall = (fsOps * 1000) / wallMs;
    this.perWall.push(perWall);
    this.perCpu.push((fsOps * 1_000_000) / (cpu.user + cpu.system));
    this.spentMs += wallMs;
    return perWall;
  }

  get runs(): number {
    return this.perWall.length;
  }

  medians(): Rates {
    return { perWallSecond: median(this.perWall), perCpuSecond: median(this.perCpu) };
  }
}

/**
 * Runs `once` at least `minimumRuns` times and while the budget lasts; the median rates per wall
 * second and per second of this process's CPU time (which a busy shared machine disturbs less).
 */
async function medianOfRuns(timeMs: number, once: Run): Promise<Rates> {
  const rates = new RunRates();
  while (rates.runs < minimumRuns || (rates.spentMs < timeMs && rates.runs < maximumRuns)) await rates.time(once);
  return rates.medians();
}

/**
 * Runs `first` and `second` in alternation, pair after pair (at least `minimumRuns` pairs, more
 * while the budget lasts): each one's median rates as `medianOfRuns` gives them, and the median
 * of the ratios first / second within each pair. The two runs of a pair are a few hundred ms
 * apart, so a shared host that slows down slows both: the ratio is steadier than the ratio of
 * medians timed minutes apart.
 */
export async function pairedRuns(timeMs: number, first: Run, second: Run): Promise<{ first: Rates; second: Rates; ratio: number }> {
  const firstRates = new RunRates();
  const secondRates = new RunRates();
  const ratios: number[] = [];
  while (ratios.length < minimumRuns || (firstRates.spentMs + secondRates.spentMs < timeMs && ratios.length < maximumRuns)) {
    const a = await firstRates.time(first);
    ratios.push(a / (await secondRates.time(second)));
  }
  return { first: firstRates.medians(), second: secondRates.medians(), ratio: median(ratios) };
}

export async function engineRun(seed: number): Promise<{ fsOps: number; wallMs: number }> {
  const result = await runPlainWorkload({ seed, clients: benchmarkClients, messages: benchmarkClients * messagesPerClient });
  if (result.duplicates !== 0 || result.missing !== 0) throw new Error(`benchmark: ${result.duplicates} duplicate and ${result.missing} missing acks`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The ceiling: the port calls of a recorded engine run (bench/engine-alone.ts), replayed on the
// null server.

export async function ceilingRun(seed: number, recorded: readonly (readonly RecordedCall[])[]): Promise<{ fsOps: number; wallMs: number }> {
  const simulation = new Simulation({ seed, trace: { windowSize: 256 }, createServer: createNullServer });
  recorded.forEach((calls, index) => {
    simulation.addClient(`client-${index}`, async ({ fs }) => {
      const handles: unknown[] = [];
      const resolve = (argument: unknown): unknown =>
        typeof argument === 'object' && argument !== null && 'handle' in argument ? handles[(argument as HandleReference).handle] : argument;
      // Arguments resolved before the call (outside the awaited port call), each method called
      // directly: the replay adds as little as it can to the simulator's own cost.
      for (const call of calls) {
        // Indexed, not destructured: destructuring runs the array iterator on every call.
        const args = call.args;
        const first = args[0];
        const second = args[1];
        const third = args[2];
        switch (call.method) {
          case 'open':
            handles.push(await fs.open(first as string, second as OpenOptions | undefined));
            break;
          case 'watch':
            handles.push(await fs.watch(first as string, second as WatchFilter));
            break;
          case 'lock':
            await fs.lock(resolve(first) as FileHandle, second as ByteRange, third as LockOptions | undefined);
            break;
          case 'unlock':
            await fs.unlock(resolve(first) as FileHandle, second as ByteRange);
            break;
          case 'read':
            await fs.read(resolve(first) as FileHandle, second as number, third as number);
            break;
          case 'write':
            await fs.write(resolve(first) as FileHandle, second as number, third as Uint8Array);
            break;
          case 'readFile':
            await fs.readFile(first as string);
            break;
          case 'writeFile':
            await fs.writeFile(first as string, second as Uint8Array, third as WriteFileOptions | undefined);
            break;
          case 'unlink':
            await fs.unlink(first as string);
            break;
          case 'setTimes':
            await fs.setTimes(first as string, second as number, third as number);
            break;
          default: {
            const args = call.args.map(resolve);
            const result = await (fs[call.method] as (...parameters: unknown[]) => Promise<unknown>).apply(fs, args);
            if (handleMethods.has(call.method)) handles.push(result);
          }
        }
      }
    });
  });
  const { stats } = await simulation.run();
  return stats;
}

// ---------------------------------------------------------------------------------------------
// The floor: what any simulator built like this one pays per port call, and nothing else.

/**
 * 64 clients, each awaiting `callsPerClient` calls, where a call is only what no simulator of
 * this design can skip: a promise the client awaits, an arrival and a reply event through the
 * simulator's own event queue (sim/event-queue.ts), and a pump one microtask after the call that
 * dispatches events until a reply settles a client. No trace, no latency draws, no sessions, no
 * server. `sim.ceilingOpsPerSec` is this plus the simulator's bookkeeping; `sim.fsOpsPerSec` is
 * that plus the engine and the simulated share.
 */
export async function floorRun(callsPerClient: number): Promise<{ fsOps: number; wallMs: number }> {
  const queue = new EventQueue();
  let nowMs = 0;
  let order = 0;
  let calls = 0;
  const settled = Promise.resolve();
  const arrival = 1;
  class FloorClient implements EventHandler {
    readonly event = new SimEvent(this, arrival);
    settle: ((value: unknown) => void) | null = null;
    handleEvent(event: SimEvent): void {
      if (event.kind === arrival) {
        event.kind = 2;
        event.timeMs = nowMs + 0.1;
        event.order = order++;
        queue.push(event);
        return;
      }
      const settle = this.settle!;
      this.settle = null;
      settle(undefined);
    }
    call(): Promise<unknown> {
      calls += 1;
      const event = this.event;
      event.kind = arrival;
      event.timeMs = nowMs + 0.1;
      event.order = order++;
      queue.push(event);
      const promise = new Promise((resolve) => {
        this.settle = resolve;
      });
      void settled.then(pump);
      return promise;
    }
  }
  // Dispatches until a reply settles a client (that client then runs until its next call).
  const pump = (): void => {
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      nowMs = next.timeMs;
      const replied = next.kind !== arrival;
      next.handler.handleEvent(next);
      if (replied) return;
    }
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: benchmarkClients }, async () => {
      const client = new FloorClient();
      for (let index = 0; index < callsPerClient; index += 1) await client.call();
    }),
  );
  return { fsOps: calls, wallMs: performance.now() - started };
}

// ---------------------------------------------------------------------------------------------
// Peak memory of 1,000 clients and 1,000,000 messages, in a child process.

export interface PeakReport {
  readonly maxRssMb: number;
  readonly wallMs: number;
  readonly fsOps: number;
  readonly acked: number;
  readonly duplicates: number;
  readonly missing: number;
}

async function peakRun(): Promise<PeakReport> {
  const here = fileURLToPath(import.meta.url);
  const compiled = here.endsWith('.js');
  const worker = fileURLToPath(new URL(compiled ? './sim-peak-worker.js' : './sim-peak-worker.ts', import.meta.url));
  const args = ['--max-old-space-size=4096', ...(compiled ? [] : ['--import', 'tsx']), worker, '1000', '1000000'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`benchmark: the 1,000-client run exited with ${code} (heap limit 4 GiB)`));
        return;
      }
      resolve(JSON.parse(stdout) as PeakReport);
    });
  });
}

export const simSuite: Suite = {
  name: 'sim',
  async run({ timeMs, verbose }): Promise<Figures> {
    const log = (line: string): void => {
      if (verbose) process.stderr.write(`  ${line}\n`);
    };
    // One untimed run of each first: the optimizing compiler's warm-up is not the simulator's speed.
    await engineRun(0);
    // One recorded engine run: its calls for the ceiling, its answers for the engine alone.
    const run = await recordEngineRun(1, benchmarkClients, benchmarkClients * messagesPerClient);
    const recorded = run.calls;
    await ceilingRun(0, recorded);
    // The engine's runs and the ceiling's in alternation: the share is the median of each pair's ratio.
    let seed = 1;
    const paired = await pairedRuns(
      2 * timeMs,
      () => engineRun(seed++),
      () => ceilingRun(seed++, recorded),
    );
    const engine = paired.first;
    const ceiling = paired.second;
    log(`engine over the simulated share: ${Math.round(engine.perWallSecond)} fs ops/s (${Math.round(engine.perCpuSecond)} per CPU second)`);
    log(`the same calls over the null share: ${Math.round(ceiling.perWallSecond)} fs ops/s (${Math.round(ceiling.perCpuSecond)} per CPU second); share per pair ${paired.ratio.toFixed(3)}`);
    await replayAnswers(run);
    const alone = await medianOfRuns(timeMs, () => replayAnswers(run));
    log(`the engine alone, its answers replayed at no cost: ${Math.round(alone.perWallSecond)} fs ops/s`);
    const callsPerClient = Math.round(recorded.reduce((sum, calls) => sum + calls.length, 0) / recorded.length);
    await floorRun(callsPerClient);
    const floor = await medianOfRuns(timeMs, () => floorRun(callsPerClient));
    log(`as many bare awaited calls (a promise and two events each): ${Math.round(floor.perWallSecond)} calls/s`);
    const peak = await peakRun();
    if (peak.duplicates !== 0 || peak.missing !== 0) throw new Error(`benchmark: the 1,000-client run had ${peak.duplicates} duplicate and ${peak.missing} missing acks`);
    log(`1,000 clients, 1,000,000 messages: ${(peak.wallMs / 1000).toFixed(1)} s, peak RSS ${peak.maxRssMb.toFixed(0)} MB`);
    return {
      'sim.fsOpsPerSec': Math.round(engine.perWallSecond),
      'sim.ceilingOpsPerSec': Math.round(ceiling.perWallSecond),
      'sim.fsOpsShareOfCeiling': round(paired.ratio, 3),
      'sim.engineAloneOpsPerSec': Math.round(alone.perWallSecond),
      'sim.floorOpsPerSec': Math.round(floor.perWallSecond),
      'sim.fsOpsPerCpuSec': Math.round(engine.perCpuSecond),
      'sim.ceilingOpsPerCpuSec': Math.round(ceiling.perCpuSecond),
      'sim.peakRssMb.1000clients': round(peak.maxRssMb, 1),
      'sim.fsOpsPerSec.1000clients': Math.round((peak.fsOps * 1000) / peak.wallMs),
    };
  },
};

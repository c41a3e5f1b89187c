/**
 * `nasq check` throughput: seeds (runs) per second of wall time over the default scenario set,
 * in this thread (1 worker) and on 2 worker threads. Steady state: the thread, or the pool, is
 * started and warmed up by a first check, then each figure is the median of several whole checks,
 * the two kinds taken in turns so that background load hits both alike. (A fresh `nasq check`
 * process also pays the pool's start-up and each worker's JIT warm-up, a fraction of a second.)
 *
 * In the same rounds it measures what this machine gives a second thread at all
 * (`machine.twoThreadsOverOne.*`, bench/machine-scaling.ts): two reference workloads that share
 * nothing, one that allocates like a check and one that only does arithmetic. On a shared cloud VM
 * the check's ratio follows the allocation reference's from one moment to the next.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inThreadExecutor, poolExecutor, type RunExecutor } from '../properties/check-executor.js';
import { checkOn } from '../properties/check.js';
import { defaultScenarioSet, resolveScenarios } from '../scenarios/index.js';
import { median, round, type Figures, type Suite } from './harness.js';
import { MachineScaling } from './machine-scaling.js';

/** Seeds per scenario of one measured check (14 scenarios: 224 runs). */
const seedsPerScenario = 16;
/** Whole checks measured per figure. */
const repetitions = 7;
/** Checks run before measuring in this thread (the pool runs twice as many: see below). */
const warmUpChecks = 2;
const seed = 1;

export const checkSuite: Suite = {
  name: 'check',
  async run({ verbose }): Promise<Figures> {
    const scenarios = await resolveScenarios(defaultScenarioSet);
    const failureDirectory = await mkdtemp(join(tmpdir(), 'nasq-bench-check-'));
    const executors: Record<1 | 2, RunExecutor> = { 1: inThreadExecutor(undefined), 2: poolExecutor({ workers: 2 }) };
    const machine = new MachineScaling();
    const coresBusy: Record<1 | 2, number[]> = { 1: [], 2: [] };
    const rate = async (workers: 1 | 2): Promise<number> => {
      const cpuBefore = process.cpuUsage();
      const startedMs = performance.now();
      const report = await checkOn(executors[workers], { scenarios, seeds: seedsPerScenario, seed, failureDirectory }, () => performance.now());
      const elapsedMs = performance.now() - startedMs;
      const cpu = process.cpuUsage(cpuBefore);
      coresBusy[workers].push((cpu.user + cpu.system) / 1000 / elapsedMs);
      // A failing check spends its time shrinking: not what this measures.
      if (report.failures > 0) throw new Error(`benchmark check: ${report.failures} scenario(s) failed with seed ${seed}; see ${failureDirectory}`);
      const perSecond = report.seeds / (elapsedMs / 1000);
      if (verbose) process.stderr.write(`  check, ${workers} worker(s): ${report.seeds} runs in ${(elapsedMs / 1000).toFixed(2)} s, ${perSecond.toFixed(1)} seeds/s\n`);
      return perSecond;
    };
    try {
      // Warm-up: V8 tiers the engine and the simulator up over a few hundred runs per thread (in
      // this thread the first check is twice as slow as the next ones); each worker makes half of a
      // check's runs, so the pool gets twice the checks.
      for (let check = 0; check < warmUpChecks; check += 1) await rate(1);
      for (let check = 0; check < 2 * warmUpChecks; check += 1) await rate(2);
      await machine.warmUp();
      coresBusy[1].length = 0;
      coresBusy[2].length = 0;
      const one: number[] = [];
      const two: number[] = [];
      const allocation: number[] = [];
      const arithmetic: number[] = [];
      for (let repetition = 0; repetition < repetitions; repetition += 1) {
        one.push(await rate(1));
        two.push(await rate(2));
        allocation.push(await machine.twoOverOne('allocation'));
        arithmetic.push(await machine.twoOverOne('arithmetic'));
        if (verbose) {
          const last = one.length - 1;
          process.stderr.write(
            `  round ${last + 1}: check ${(two[last]! / one[last]!).toFixed(2)}x, allocation reference ${allocation[last]!.toFixed(2)}x, arithmetic reference ${arithmetic[last]!.toFixed(2)}x\n`,
          );
        }
      }
      return {
        'check.seedsPerSec.workers1': round(median(one)),
        'check.seedsPerSec.workers2': round(median(two)),
        'check.seedsPerSec.workers2OverWorkers1': round(median(two) / median(one), 3),
        // CPU time of the whole process (every thread: workers, V8's compiler and collector
        // helpers) over wall time. One thread already keeps more than one core busy, so on two
        // cores the ratio cannot exceed 2 / check.coresBusy.workers1 even with no contention.
        'check.coresBusy.workers1': round(median(coresBusy[1]), 3),
        'check.coresBusy.workers2': round(median(coresBusy[2]), 3),
        'machine.twoThreadsOverOne.allocation': round(median(allocation), 3),
        'machine.twoThreadsOverOne.arithmetic': round(median(arithmetic), 3),
      };
    } finally {
      await machine.close();
      await executors[2].close();
      await rm(failureDirectory, { recursive: true, force: true });
    }
  },
};

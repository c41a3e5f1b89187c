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

interface CheckMeasure {
  readonly perSecond: number;
  /** The process's CPU time (every thread) over wall time during the check. */
  readonly coresBusy: number;
}

/** One round: a check on 1 worker, on 2, and the machine's two reference ratios. */
interface Round {
  readonly one: CheckMeasure;
  readonly two: CheckMeasure;
  readonly allocation: number;
  readonly arithmetic: number;
}

export const checkSuite: Suite = {
  name: 'check',
  async run({ verbose }): Promise<Figures> {
    const scenarios = await resolveScenarios(defaultScenarioSet);
    const failureDirectory = await mkdtemp(join(tmpdir(), 'nasq-bench-check-'));
    const executors: Record<1 | 2, RunExecutor> = { 1: inThreadExecutor(undefined), 2: poolExecutor({ workers: 2 }) };
    const machine = new MachineScaling();
    /** One check: seeds per second, and the process's CPU time over wall time meanwhile. */
    const measure = async (workers: 1 | 2): Promise<CheckMeasure> => {
      const cpuBefore = process.cpuUsage();
      const startedMs = performance.now();
      const report = await checkOn(executors[workers], { scenarios, seeds: seedsPerScenario, seed, failureDirectory }, () => performance.now());
      const elapsedMs = performance.now() - startedMs;
      const cpu = process.cpuUsage(cpuBefore);
      // A failing check spends its time shrinking: not what this measures.
      if (report.failures > 0) throw new Error(`benchmark check: ${report.failures} scenario(s) failed with seed ${seed}; see ${failureDirectory}`);
      const perSecond = report.seeds / (elapsedMs / 1000);
      if (verbose) process.stderr.write(`  check, ${workers} worker(s): ${report.seeds} runs in ${(elapsedMs / 1000).toFixed(2)} s, ${perSecond.toFixed(1)} seeds/s\n`);
      return { perSecond, coresBusy: (cpu.user + cpu.system) / 1000 / elapsedMs };
    };
    try {
      // Warm-up: V8 tiers the engine and the simulator up over a few hundred runs per thread (in
      // this thread the first check is twice as slow as the next ones); each worker makes half of a
      // check's runs, so the pool gets twice the checks.
      for (let check = 0; check < warmUpChecks; check += 1) await measure(1);
      for (let check = 0; check < 2 * warmUpChecks; check += 1) await measure(2);
      await machine.warmUp();
      const rounds: Round[] = [];
      for (let repetition = 0; repetition < repetitions; repetition += 1) {
        const measured: Round = {
          one: await measure(1),
          two: await measure(2),
          allocation: await machine.twoOverOne('allocation'),
          arithmetic: await machine.twoOverOne('arithmetic'),
        };
        rounds.push(measured);
        if (verbose) {
          process.stderr.write(
            `  round ${rounds.length}: check ${(measured.two.perSecond / measured.one.perSecond).toFixed(2)}x, allocation reference ${measured.allocation.toFixed(2)}x, arithmetic reference ${measured.arithmetic.toFixed(2)}x\n`,
          );
        }
      }
      const medianOf = (pick: (measured: Round) => number): number => median(rounds.map(pick));
      const one = medianOf((measured) => measured.one.perSecond);
      const two = medianOf((measured) => measured.two.perSecond);
      return {
        'check.seedsPerSec.workers1': round(one),
        'check.seedsPerSec.workers2': round(two),
        'check.seedsPerSec.workers2OverWorkers1': round(two / one, 3),
        // CPU time of the whole process (every thread: workers, V8's compiler and collector
        // helpers) over wall time. One thread already keeps more than one core busy, so on two
        // cores the ratio cannot exceed 2 / check.coresBusy.workers1 even with no contention.
        'check.coresBusy.workers1': round(medianOf((measured) => measured.one.coresBusy), 3),
        'check.coresBusy.workers2': round(medianOf((measured) => measured.two.coresBusy), 3),
        'machine.twoThreadsOverOne.allocation': round(medianOf((measured) => measured.allocation), 3),
        'machine.twoThreadsOverOne.arithmetic': round(medianOf((measured) => measured.arithmetic), 3),
      };
    } finally {
      await machine.close();
      await executors[2].close();
      await rm(failureDirectory, { recursive: true, force: true });
    }
  },
};

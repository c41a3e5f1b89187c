/**
 * Where a check's runs happen: in this thread (`workers: 1`, and whenever run options hold
 * functions) or on a pool of worker threads (tinypool) that load the compiled worker entry
 * `dist/properties/check-worker.js`. The scheduler in check.ts treats both alike.
 */

import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import Tinypool from 'tinypool';
import { compiledEntry } from '../adapters/compiled-entry.js';
import type { Scenario } from '../scenarios/schema.js';
import type { RunConfig } from './config.js';
import { shrinkFrom, traceFailure, type FailureEvidence, type RunDigest, type ShrinkResult, type ShrinkTask } from './failure.js';
import { handleWorkerTask, type WorkerAnswer, type WorkerRunSettings, type WorkerTask } from './check-worker.js';
import type { RunOptions } from './run.js';

export interface FailureAnswer {
  readonly shrink: ShrinkResult;
  readonly evidence: FailureEvidence | undefined;
}

export interface RunExecutor {
  /** Runs worth having in flight at once. */
  readonly concurrency: number;
  run(config: RunConfig): Promise<RunDigest>;
  /** Shrinks from a path and traces the smallest failing run; `onStep` told each shrink step, in order. */
  failure(scenario: Scenario, task: ShrinkTask, onStep: (step: number) => void): Promise<FailureAnswer>;
  close(): Promise<void>;
}

/** Runs everything in this thread, one run at a time. */
export function inThreadExecutor(runOptions: RunOptions | undefined): RunExecutor {
  return {
    concurrency: 1,
    async run(config) {
      const answer = await handleWorkerTask({ kind: 'run', config }, runOptions);
      if (answer.kind !== 'run') throw new Error(`expected a run answer, got ${answer.kind}`);
      return answer.digest;
    },
    async failure(scenario, task, onStep) {
      const shrink = await shrinkFrom(scenario, task, runOptions, onStep);
      const evidence = shrink.shrunk === undefined ? undefined : await traceFailure(shrink.shrunk.config, runOptions);
      return { shrink, evidence };
    },
    async close() {},
  };
}

/** The compiled worker entry next to the compiled check (from sources: the one under dist/). */
export function defaultWorkerEntry(): URL {
  return compiledEntry(import.meta.url, 'properties', 'check-worker.js');
}

export interface PoolOptions {
  readonly workers: number;
  /** The worker entry module (a tinypool worker whose default export handles a WorkerTask). Default: defaultWorkerEntry(). */
  readonly entry?: URL | string;
  /** Run options as plain data, rebuilt in each worker. */
  readonly settings?: WorkerRunSettings;
}

/** Tasks queued per worker: enough to hide a message round trip between two runs. */
const tasksInFlightPerWorker = 2;

/** Runs on `workers` worker threads. Fails clearly when the worker entry is not built. */
export function poolExecutor(options: PoolOptions): RunExecutor {
  const entry = options.entry === undefined ? defaultWorkerEntry() : typeof options.entry === 'string' ? pathToFileURL(options.entry) : options.entry;
  if (entry.protocol === 'file:' && !existsSync(fileURLToPath(entry))) {
    throw new Error(
      `worker threads run the compiled code, and their entry ${fileURLToPath(entry)} is missing: build it with "npm run build" (npm install and npm test build it too), or run in this thread with --workers 1`,
    );
  }
  const pool = new Tinypool({
    filename: entry.href,
    minThreads: options.workers,
    maxThreads: options.workers,
    // Workers live as long as the check: each keeps its JIT warm across runs.
    idleTimeout: 60_000,
    isolateWorkers: false,
  });
  const settings = options.settings ?? {};
  const withSettings = <T extends object>(task: T): T => (Object.keys(settings).length === 0 ? task : { ...task, settings });
  return {
    concurrency: options.workers * tasksInFlightPerWorker,
    async run(config) {
      const answer = (await pool.run(withSettings({ kind: 'run', config } satisfies WorkerTask))) as WorkerAnswer;
      if (answer.kind !== 'run') throw new Error(`expected a run answer, got ${answer.kind}`);
      return answer.digest;
    },
    async failure(scenario, task, onStep) {
      const channel = new MessageChannel();
      // Steps arrive on their own port, possibly after the answer: tell each once, in order, and
      // tell the rest from the answer's count.
      let told = 0;
      const tell = (step: number): void => {
        while (told < step) {
          told += 1;
          onStep(told);
        }
      };
      channel.port1.on('message', (step: number) => tell(step));
      try {
        const answer = (await pool.run(withSettings({ kind: 'failure', scenario, task, progress: channel.port2 } satisfies WorkerTask), {
          transferList: [channel.port2],
        })) as WorkerAnswer;
        if (answer.kind !== 'failure') throw new Error(`expected a failure answer, got ${answer.kind}`);
        channel.port1.removeAllListeners('message');
        tell(answer.shrink.shrunk?.shrinkSteps ?? 0);
        return { shrink: answer.shrink, evidence: answer.evidence };
      } finally {
        channel.port1.close();
      }
    },
    async close() {
      await pool.destroy();
    },
  };
}

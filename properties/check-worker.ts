/**
 * The worker-thread side of `nasq check --workers N`: a tinypool worker entry (its default export
 * handles one task) that runs one configuration, or shrinks and traces a failure. Tasks and
 * answers are plain data; run options (planted bugs in tests) are functions and cannot cross a
 * thread boundary, so a worker entry resolves them by name (`createCheckWorker`): this production
 * entry knows none.
 */

import type { MessagePort } from 'node:worker_threads';
import { MetricsCollector } from '../reports/metrics.js';
import type { Scenario } from '../scenarios/schema.js';
import type { RunConfig } from './config.js';
import { digestOf, shrinkFrom, traceFailure, type FailureEvidence, type RunDigest, type ShrinkResult, type ShrinkTask } from './failure.js';
import { runScenario, type RunOptions } from './run.js';

/** Run options as plain data, which cross a thread boundary: the worker builds RunOptions from them. */
export interface WorkerRunSettings {
  /** Collect metrics (RunOptions.metrics, a MetricsCollector). */
  readonly metrics?: boolean;
  readonly checkEveryCommit?: boolean;
  /** A name the worker entry resolves to run options (test-only planted bugs). */
  readonly runOptionsName?: string;
}

export type WorkerTask =
  | { readonly kind: 'run'; readonly config: RunConfig; readonly settings?: WorkerRunSettings }
  | {
      readonly kind: 'failure';
      readonly scenario: Scenario;
      readonly task: ShrinkTask;
      readonly settings?: WorkerRunSettings;
      /** Told each shrink step (a number), for progress. */
      readonly progress?: MessagePort;
    };

export type WorkerAnswer =
  | { readonly kind: 'run'; readonly digest: RunDigest }
  | { readonly kind: 'failure'; readonly shrink: ShrinkResult; readonly evidence: FailureEvidence | undefined };

/** Resolves a name given in CheckOptions.worker.runOptionsName to run options, in the worker. */
export type RunOptionsResolver = (name: string) => RunOptions;

/** Runs one worker task; the same function answers in-thread and worker-thread tasks alike. */
export async function handleWorkerTask(task: WorkerTask, runOptions: RunOptions | undefined): Promise<WorkerAnswer> {
  if (task.kind === 'run') return { kind: 'run', digest: digestOf(await runScenario(task.config, runOptions)) };
  const progress = task.progress;
  try {
    const shrink = await shrinkFrom(task.scenario, task.task, runOptions, progress === undefined ? undefined : (step) => progress.postMessage(step));
    const evidence = shrink.shrunk === undefined ? undefined : await traceFailure(shrink.shrunk.config, runOptions);
    return { kind: 'failure', shrink, evidence };
  } finally {
    progress?.close();
  }
}

/**
 * The plain-data part of run options, or undefined when they hold anything else (a client class,
 * a ports wrapper, a trace sink: functions, which stay in their thread).
 */
export function settingsOf(runOptions: RunOptions | undefined): WorkerRunSettings | undefined {
  if (runOptions === undefined) return {};
  const { metrics, checkEveryCommit, ...rest } = runOptions;
  if (Object.values(rest).some((value) => value !== undefined)) return undefined;
  // A collector of another class may record differently: only ours is rebuilt in the worker.
  if (metrics !== undefined && Object.getPrototypeOf(metrics) !== MetricsCollector.prototype) return undefined;
  return { ...(metrics === undefined ? {} : { metrics: true }), ...(checkEveryCommit === undefined ? {} : { checkEveryCommit }) };
}

/** A worker entry's handler; `resolve` maps run-option names (test-only planted bugs) to run options. */
export function createCheckWorker(resolve?: RunOptionsResolver): (task: WorkerTask) => Promise<WorkerAnswer> {
  return (task) => {
    const settings = task.settings ?? {};
    let runOptions: RunOptions = {};
    if (settings.runOptionsName !== undefined) {
      if (resolve === undefined) throw new Error(`this worker entry knows no run options (asked for ${JSON.stringify(settings.runOptionsName)}): give a worker entry that resolves them`);
      runOptions = resolve(settings.runOptionsName);
    }
    if (settings.metrics === true) runOptions = { ...runOptions, metrics: new MetricsCollector() };
    if (settings.checkEveryCommit !== undefined) runOptions = { ...runOptions, checkEveryCommit: settings.checkEveryCommit };
    return handleWorkerTask(task, runOptions);
  };
}

export default createCheckWorker();

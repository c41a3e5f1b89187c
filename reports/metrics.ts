/**
 * Metrics of a simulated run, for reports: throughput and latency percentiles over simulated
 * time, latency histograms, the header lock's wait and hold times, and the queue depth.
 *
 * A run pays for them only when asked (`RunOptions.metrics`): the recorder watches the trace (lock
 * requests, grants and releases at the server, as the server applies them) and the kernel file's
 * header commits (the unread and pending counts), and reads the history when the run ends.
 *
 * ```ts
 * const outcome = await runScenario(config, { metrics: new MetricsCollector() });
 * outcome.metrics?.lock.hold.summary.p50Ms;
 * ```
 *
 * The lock figures are the server's view: the wait runs from the lock request's arrival at the
 * server to its grant, the hold from the grant to the unlock's arrival. The next waiter is granted
 * at that same instant, so at saturation grants per second = 1 / mean hold: the analytic bound of
 * `nasq capacity`.
 */

import { NasqError } from '../engine/errors.js';
import { chooseHeader, headerRegionSize } from '../engine/format.js';
import type { History } from '../properties/history.js';
import { Operation, Status } from '../sim/protocol.js';
import type { Simulation } from '../sim/simulation.js';
import { TraceKind, type TraceObserver } from '../sim/trace.js';
import { type EncodedHistogram, createHistogram, encodeHistogram, percentileOfSorted, recordMs } from './histogram.js';

/** One bucket of simulated time. Rates are per second of simulated time; null = nothing to measure. */
export interface MetricsBucket {
  /** Start of the bucket, ms of simulated time. */
  readonly timeMs: number;
  readonly sentPerSecond: number;
  readonly deliveredPerSecond: number;
  readonly ackedPerSecond: number;
  readonly lockGrantsPerSecond: number;
  readonly sendP50Ms: number | null;
  readonly sendP99Ms: number | null;
  readonly receiveP50Ms: number | null;
  readonly receiveP99Ms: number | null;
  readonly ackP50Ms: number | null;
  readonly ackP99Ms: number | null;
  /** Unread and pending messages at the last header commit of the bucket (or before it). */
  readonly unread: number | null;
  readonly pending: number | null;
}

export interface LockMetrics {
  /** Grants of the header lock in the window. */
  readonly grants: number;
  /** Grants without a wait (the lock was free when the request arrived). */
  readonly grantedAtOnce: number;
  readonly grantsPerSecond: number;
  /** Share of the window the lock was held (sum of holds / window). */
  readonly busyFraction: number;
  /** Request arrival at the server to grant. */
  readonly wait: EncodedHistogram;
  /** Grant to the unlock's arrival at the server. */
  readonly hold: EncodedHistogram;
}

export interface RunMetrics {
  readonly version: 1;
  /** The measured window, ms of simulated time. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly bucketMs: number;
  readonly series: MetricsBucket[];
  /** Call latencies (invocation to completion) of calls that succeeded; receive: those that returned messages. */
  readonly latency: {
    readonly send: EncodedHistogram;
    readonly receive: EncodedHistogram;
    readonly ack: EncodedHistogram;
    /** A message's send invocation to its ack's completion. */
    readonly endToEnd: EncodedHistogram;
  };
  readonly lock: LockMetrics;
  readonly totals: {
    readonly sent: number;
    readonly delivered: number;
    readonly acked: number;
    readonly operations: number;
  };
}

export interface MetricsWindow {
  /** Start of the measured window, ms of simulated time. Default: the first operation's invocation. */
  readonly fromMs?: number;
  /** End of the window. Default: the simulation's time now. */
  readonly toMs?: number;
  /** Most buckets of the series. Default 120. */
  readonly bucketsMaximum?: number;
}

/** Hands a recorder to each run (one collector serves every run of a check). */
export class MetricsCollector {
  startRun(kernelPath: string): RunMetricsRecorder {
    return new RunMetricsRecorder(kernelPath);
  }
}

/** A bucket size of 1, 2 or 5 times a power of ten, so the window has at most `maximum` buckets. */
export function niceBucketMs(durationMs: number, maximum: number): number {
  const raw = Math.max(durationMs, 1e-3) / Math.max(1, maximum);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const step of [1, 2, 5, 10]) if (step * power >= raw) return step * power;
  return 10 * power;
}

/** Most lock samples kept per run (a bound on memory; later grants are counted, not kept). */
const lockSamplesMaximum = 2_000_000;

export class RunMetricsRecorder {
  readonly traceObserver: TraceObserver;
  private simulation: Simulation | undefined;
  private history: History | undefined;
  /** Per client index: when its lock request arrived (waiting), or NaN. */
  private readonly waitingSinceMs: number[] = [];
  /** Per client index: when it was granted the lock (holding), or NaN. */
  private readonly grantedAtMs: number[] = [];
  private readonly grantTimesMs: number[] = [];
  private readonly waitsMs: number[] = [];
  private readonly holdStartsMs: number[] = [];
  private readonly holdsMs: number[] = [];
  private readonly depthTimesMs: number[] = [];
  private readonly depthUnread: number[] = [];
  private readonly depthPending: number[] = [];

  constructor(readonly kernelPath: string) {
    this.traceObserver = (timeMs, kind, client, operation, status, position, length, path) => {
      if (operation === Operation.lock || operation === Operation.unlock) {
        if (kind !== TraceKind.apply || position !== 0 || length !== headerRegionSize || path !== kernelPath) return;
        if (operation === Operation.lock) this.lockApplied(timeMs, client, status);
        else if (status === Status.success) this.released(timeMs, client);
      } else if (kind === TraceKind.control && (operation === Operation.clientCrash || operation === Operation.sessionDrop) && client >= 0) {
        // The server let go of the client's locks and waits without an unlock: no sample.
        this.waitingSinceMs[client] = Number.NaN;
        this.grantedAtMs[client] = Number.NaN;
      }
    };
  }

  /** Watches the kernel's header commits; the history is read at `finish`. */
  attach(simulation: Simulation, history: History): void {
    this.simulation = simulation;
    this.history = history;
    simulation.server.onWrite(this.kernelPath, (event) => {
      if (event.position >= headerRegionSize || event.contents.length < headerRegionSize) return;
      try {
        const header = chooseHeader(event.contents.subarray(0, headerRegionSize)).header;
        this.depthTimesMs.push(event.timeMs);
        this.depthUnread.push(header.unreadCount);
        this.depthPending.push(header.pendingCount);
      } catch (error) {
        if (!(error instanceof NasqError)) throw error; // a torn or damaged header: the checkers judge it
      }
    });
  }

  private lockApplied(timeMs: number, client: number, status: number): void {
    if (status === Status.pending) {
      this.waitingSinceMs[client] = timeMs;
      return;
    }
    const since = this.waitingSinceMs[client];
    this.waitingSinceMs[client] = Number.NaN;
    if (status !== Status.success) return; // cancelled or not granted
    if (this.grantTimesMs.length < lockSamplesMaximum) {
      this.grantTimesMs.push(timeMs);
      this.waitsMs.push(since === undefined || Number.isNaN(since) ? 0 : timeMs - since);
    }
    this.grantedAtMs[client] = timeMs;
  }

  private released(timeMs: number, client: number): void {
    const grantedAt = this.grantedAtMs[client];
    this.grantedAtMs[client] = Number.NaN;
    if (grantedAt === undefined || Number.isNaN(grantedAt) || this.holdsMs.length >= lockSamplesMaximum) return;
    this.holdStartsMs.push(grantedAt);
    this.holdsMs.push(timeMs - grantedAt);
  }

  /** The metrics over a window of the run (default: from the first operation to now). */
  finish(window: MetricsWindow = {}): RunMetrics {
    const simulation = this.simulation;
    const history = this.history;
    if (simulation === undefined || history === undefined) throw new Error('RunMetricsRecorder.finish: attach() was never called');
    const operations = history.operations;
    const fromMs = window.fromMs ?? operations[0]?.invokeMs ?? 0;
    const toMs = Math.max(fromMs + 1e-3, window.toMs ?? simulation.nowMs);
    const bucketMs = niceBucketMs(toMs - fromMs, window.bucketsMaximum ?? 120);
    const bucketCount = Math.max(1, Math.ceil((toMs - fromMs) / bucketMs - 1e-9));
    const bucketOf = (timeMs: number): number => Math.min(bucketCount - 1, Math.floor((timeMs - fromMs) / bucketMs));
    const inWindow = (timeMs: number | undefined): timeMs is number => timeMs !== undefined && timeMs >= fromMs && timeMs <= toMs;

    const sent = new Array<number>(bucketCount).fill(0);
    const delivered = new Array<number>(bucketCount).fill(0);
    const acked = new Array<number>(bucketCount).fill(0);
    const grants = new Array<number>(bucketCount).fill(0);
    const bucketLatencies = { send: bucketArrays(bucketCount), receive: bucketArrays(bucketCount), ack: bucketArrays(bucketCount) };
    const histograms = { send: createHistogram(), receive: createHistogram(), ack: createHistogram(), endToEnd: createHistogram() };
    const sendInvokedMs = new Map<string, number>();
    let totalSent = 0;
    let totalDelivered = 0;
    let totalAcked = 0;
    let counted = 0;

    for (const operation of operations) {
      if (operation.kind === 'send' && operation.outcome === 'ok') {
        for (const message of operation.sends ?? []) if (message.id !== undefined) sendInvokedMs.set(message.id, operation.invokeMs);
      }
      if (operation.outcome !== 'ok' || !inWindow(operation.completeMs)) continue;
      const bucket = bucketOf(operation.completeMs);
      const latencyMs = operation.completeMs - operation.invokeMs;
      counted += 1;
      switch (operation.kind) {
        case 'send': {
          const count = operation.sends?.length ?? 0;
          sent[bucket]! += count;
          totalSent += count;
          bucketLatencies.send[bucket]!.push(latencyMs);
          recordMs(histograms.send, latencyMs);
          break;
        }
        case 'receive': {
          const count = operation.deliveries?.length ?? 0;
          if (count === 0) break; // an empty receive waited for nothing: not a latency
          delivered[bucket]! += count;
          totalDelivered += count;
          bucketLatencies.receive[bucket]!.push(latencyMs);
          recordMs(histograms.receive, latencyMs);
          break;
        }
        case 'ack': {
          acked[bucket]! += 1;
          totalAcked += 1;
          bucketLatencies.ack[bucket]!.push(latencyMs);
          recordMs(histograms.ack, latencyMs);
          const sentAtMs = operation.target === undefined ? undefined : sendInvokedMs.get(operation.target.id);
          if (sentAtMs !== undefined) recordMs(histograms.endToEnd, operation.completeMs - sentAtMs);
          break;
        }
        default:
          break;
      }
    }

    const waitHistogram = createHistogram();
    let grantCount = 0;
    let grantedAtOnce = 0;
    for (let index = 0; index < this.grantTimesMs.length; index += 1) {
      const grantMs = this.grantTimesMs[index]!;
      if (!inWindow(grantMs)) continue;
      grantCount += 1;
      grants[bucketOf(grantMs)]! += 1;
      if (this.waitsMs[index]! === 0) grantedAtOnce += 1;
      recordMs(waitHistogram, this.waitsMs[index]!);
    }
    const holdHistogram = createHistogram();
    let heldMs = 0;
    for (let index = 0; index < this.holdsMs.length; index += 1) {
      if (!inWindow(this.holdStartsMs[index])) continue;
      heldMs += this.holdsMs[index]!;
      recordMs(holdHistogram, this.holdsMs[index]!);
    }

    const perSecond = 1000 / bucketMs;
    const series: MetricsBucket[] = [];
    let depthIndex = 0;
    let unread: number | null = null;
    let pending: number | null = null;
    for (let bucket = 0; bucket < bucketCount; bucket += 1) {
      const endMs = fromMs + (bucket + 1) * bucketMs;
      while (depthIndex < this.depthTimesMs.length && this.depthTimesMs[depthIndex]! < endMs) {
        unread = this.depthUnread[depthIndex]!;
        pending = this.depthPending[depthIndex]!;
        depthIndex += 1;
      }
      const send = percentiles(bucketLatencies.send[bucket]!);
      const receive = percentiles(bucketLatencies.receive[bucket]!);
      const ack = percentiles(bucketLatencies.ack[bucket]!);
      series.push({
        timeMs: fromMs + bucket * bucketMs,
        sentPerSecond: sent[bucket]! * perSecond,
        deliveredPerSecond: delivered[bucket]! * perSecond,
        ackedPerSecond: acked[bucket]! * perSecond,
        lockGrantsPerSecond: grants[bucket]! * perSecond,
        sendP50Ms: send.p50,
        sendP99Ms: send.p99,
        receiveP50Ms: receive.p50,
        receiveP99Ms: receive.p99,
        ackP50Ms: ack.p50,
        ackP99Ms: ack.p99,
        unread,
        pending,
      });
    }
    const windowSeconds = (toMs - fromMs) / 1000;
    return {
      version: 1,
      fromMs,
      toMs,
      bucketMs,
      series,
      latency: {
        send: encodeHistogram(histograms.send),
        receive: encodeHistogram(histograms.receive),
        ack: encodeHistogram(histograms.ack),
        endToEnd: encodeHistogram(histograms.endToEnd),
      },
      lock: {
        grants: grantCount,
        grantedAtOnce,
        grantsPerSecond: grantCount / windowSeconds,
        busyFraction: Math.min(1, heldMs / (toMs - fromMs)),
        wait: encodeHistogram(waitHistogram),
        hold: encodeHistogram(holdHistogram),
      },
      totals: { sent: totalSent, delivered: totalDelivered, acked: totalAcked, operations: counted },
    };
  }
}

function bucketArrays(count: number): number[][] {
  return Array.from({ length: count }, () => []);
}

function percentiles(values: number[]): { p50: number | null; p99: number | null } {
  if (values.length === 0) return { p50: null, p99: null };
  values.sort((a, b) => a - b);
  return { p50: percentileOfSorted(values, 50), p99: percentileOfSorted(values, 99) };
}


/**
 * A plain run: one queue on the simulated share, N virtual clients running the engine's own
 * QueueClient, no faults. What `nasq sim run` and the simulator benchmarks run.
 *
 * The workload is mixed: every client both sends and receives. Client i sends its share of the
 * M messages (M / N, the first M mod N clients one more), and loops: send one (while it has some
 * left), receive one (waiting up to `receiveWaitMs` on the notification file), ack what it got.
 * It stops when it has sent its share and all M messages have been acked by someone. Mixed rather
 * than half senders and half receivers because it is what clients of a shared queue on a NAS do,
 * it keeps every client in the header-lock queue (the contention the simulator is for), and it
 * works for any N, also 1.
 *
 * Every body says who sent it and its number ("3:17"); each ack marks that message in a bitmap,
 * so a message acked twice, or not at all, is counted (`duplicates`, `missing`): with no faults
 * both must be 0. Any operating error fails the run (the client fails; no faults, so none is
 * expected) except QUEUE_FULL, which the sender answers by receiving first.
 */

import type { Host } from '../adapters/host.js';
import { assert, isNasqError } from '../engine/errors.js';
import type { Ports } from '../engine/ports.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import type { LatencyModel } from './latency.js';
import type { RunSeed } from './random.js';
import type { Scheduler } from './scheduler.js';
import type { SimServer, ServerOptions } from './server.js';
import { Simulation, type SimulationOptions } from './simulation.js';
import type { Trace, TraceSink } from './trace.js';

export interface PlainRunOptions {
  /** The run's seed. Required. */
  readonly seed: RunSeed;
  /** Virtual clients, 1 to 100,000. Required. */
  readonly clients: number;
  /** Messages sent (and acked) in all, 1 to 100,000,000. Required. */
  readonly messages: number;
  /** Slots of the queue. Default max(64, 2 x clients): a slot for every client's message in flight, twice. */
  readonly slots?: number;
  /** Receives every trace record as a line. Default none. */
  readonly traceSink?: TraceSink;
  /** Trace records kept in memory (the window). Default 256. */
  readonly traceWindow?: number;
  /** How long a receive waits for a message, ms of virtual time. Default 1,000. */
  readonly receiveWaitMs?: number;
  /** Latency model. Default: the simulation's (FixedLatency: 0.1 ms each way plus jitter, service times). */
  readonly latency?: LatencyModel;
  /** Host hook of the scheduler. Default: the simulation's (nodeHost). */
  readonly host?: Host | null;
  /** Wraps each worker's ports (a recorder for the benchmarks' ceiling). Default none. */
  readonly wrapPorts?: (ports: Ports, clientIndex: number) => Ports;
  /** Builds the simulated share. Default: the simulation's (SimServer). */
  readonly createServer?: (scheduler: Scheduler, trace: Trace, options: ServerOptions | undefined) => SimServer;
}

/** What the clients of a plain workload did, summed. */
export interface PlainWorkloadTally {
  /** Messages whose send returned. */
  readonly sent: number;
  /** Acks that returned, and messages acked more than once / never. */
  readonly acked: number;
  readonly duplicates: number;
  readonly missing: number;
  /** Sends refused with QUEUE_FULL (retried after a receive). */
  readonly queueFull: number;
  /** Header lock cycles of all clients. */
  readonly cycles: number;
}

export interface PlainRunResult extends PlainWorkloadTally {
  readonly seed: RunSeed;
  readonly clients: number;
  readonly messages: number;
  readonly slots: number;
  /** Virtual time of the whole run (queue creation included), ms. */
  readonly simulatedMs: number;
  readonly events: number;
  /** File-system port calls of all clients. */
  readonly fsOps: number;
  /** Clock port calls (sleeps, waits on the notification file). */
  readonly clockOps: number;
  readonly traceHash: string;
  readonly traceRecords: number;
  /** Wall time of the simulation (setup included), ms. */
  readonly wallMs: number;
}

export const plainRunLimits = { clients: 100_000, messages: 100_000_000, slots: 1_000_000 } as const;

const queueDirectory = 'q';
/** Bound of every client loop (TigerBeetle style): far above any real run's rounds per client. */
const maximumRoundsPerMessage = 1_000;

function checkCount(name: string, value: unknown, maximum: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > maximum) {
    throw new TypeError(`plain run: ${name} must be an integer from 1 to ${maximum}, got ${String(value)}`);
  }
  return value;
}

/** The sender and number of a body "SENDER:NUMBER" (ASCII digits), without decoding a string. */
function parseBody(body: Uint8Array): [number, number] {
  const colon = 58;
  const zero = 48;
  let sender = 0;
  let index = 0;
  for (; index < body.length && body[index] !== colon; index += 1) sender = sender * 10 + body[index]! - zero;
  assert(index < body.length, 'plain run: a body without a colon');
  let number = 0;
  for (index += 1; index < body.length; index += 1) number = number * 10 + body[index]! - zero;
  return [sender, number];
}


export interface PlainWorkload {
  /** Client `index`'s program (0 to clients - 1), on its ports; the queue must exist. */
  main(index: number, ports: Ports): Promise<void>;
  /** The clients' counts so far (missing: messages no client has acked yet). */
  tally(): PlainWorkloadTally;
}

/**
 * The clients of a plain run (the loop described above) on queue `q`, sharing their counts: run
 * by `runPlainWorkload` on the simulated share, and by the benchmarks on replayed answers.
 */
export function plainWorkload(options: { readonly clients: number; readonly messages: number; readonly receiveWaitMs: number }): PlainWorkload {
  const { clients, messages, receiveWaitMs } = options;
  const quota = (index: number): number => Math.floor(messages / clients) + (index < messages % clients ? 1 : 0);
  // acks[sender] counts the acks of each of its messages (0, 1, or more: a duplicate).
  const acks = Array.from({ length: clients }, (_, index) => new Uint8Array(quota(index)));
  const encoder = new TextEncoder();
  let sent = 0;
  let acked = 0;
  let duplicates = 0;
  let queueFull = 0;
  let cycles = 0;
  return {
    async main(index: number, ports: Ports): Promise<void> {
      const mine = quota(index);
      const client = await QueueClient.open(ports, queueDirectory, { lockWaitMs: 3_600_000 });
      let sentByMe = 0;
      const rounds = maximumRoundsPerMessage * (mine + 1) + maximumRoundsPerMessage;
      for (let round = 0; round < rounds && (sentByMe < mine || acked < messages); round += 1) {
        if (sentByMe < mine) {
          try {
            await client.send(encoder.encode(`${index}:${sentByMe}`));
            sentByMe += 1;
            sent += 1;
          } catch (error) {
            if (!isNasqError(error, 'QUEUE_FULL')) throw error;
            queueFull += 1;
          }
        }
        const delivery = await client.receive({ waitMs: receiveWaitMs });
        if (delivery === null) continue;
        await client.ack(delivery.receipt);
        acked += 1;
        const [sender, number] = parseBody(delivery.body);
        const marks = acks[sender];
        assert(marks !== undefined && number < marks.length, () => `plain run: a body names message ${sender}:${number}, never sent`);
        if (marks[number]! > 0) duplicates += 1;
        marks[number] = Math.min(255, marks[number]! + 1);
      }
      cycles += client.counters.cycles;
      await client.close();
    },
    tally(): PlainWorkloadTally {
      let missing = 0;
      for (const marks of acks) for (const count of marks) if (count === 0) missing += 1;
      return { sent, acked, duplicates, missing, queueFull, cycles };
    },
  };
}

export async function runPlainWorkload(options: PlainRunOptions): Promise<PlainRunResult> {
  const clients = checkCount('clients', options.clients, plainRunLimits.clients);
  const messages = checkCount('messages', options.messages, plainRunLimits.messages);
  const slots = checkCount('slots', options.slots ?? Math.max(64, 2 * clients), plainRunLimits.slots);
  const receiveWaitMs = options.receiveWaitMs ?? 1_000;
  const simulationOptions: SimulationOptions = {
    seed: options.seed,
    trace: { windowSize: options.traceWindow ?? 256, ...(options.traceSink === undefined ? {} : { sink: options.traceSink }) },
    ...(options.latency === undefined ? {} : { latency: options.latency }),
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.createServer === undefined ? {} : { createServer: options.createServer }),
  };
  const simulation = new Simulation(simulationOptions);
  simulation.addClient('creator', (ports) => createQueue(ports, queueDirectory, { slots }));
  await simulation.run();
  assert(simulation.client('creator').status === 'finished', () => `plain run: creating the queue failed: ${String(simulation.client('creator').error)}`);

  const workload = plainWorkload({ clients, messages, receiveWaitMs });
  for (let index = 0; index < clients; index += 1) {
    simulation.addClient(`client-${index}`, (rawPorts) =>
      workload.main(index, options.wrapPorts === undefined ? rawPorts : options.wrapPorts(rawPorts, index)),
    );
  }
  const { stats } = await simulation.run();
  const tally = workload.tally();
  return {
    seed: options.seed,
    clients,
    messages,
    slots,
    simulatedMs: stats.simulatedMs,
    events: stats.events,
    fsOps: stats.fsOps,
    clockOps: stats.clockOps,
    ...tally,
    traceHash: stats.traceHash,
    traceRecords: stats.traceRecords,
    wallMs: stats.wallMs,
  };
}

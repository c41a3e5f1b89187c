/**
 * Runs conformance cases (conformance/cases.ts) against the simulated share, through the same
 * ports the engine uses: each client of a case is a virtual client with its own session, step i
 * runs at virtual time (i + 1) x `stepMs` (a setup client makes the case's directory first), and
 * each step is observed half a step later, as the Samba driver observes a real server (a
 * blocking lock or notify not answered by then is PENDING).
 */

import { isNasqError } from '../engine/errors.js';
import type { Clock, FileHandle, FileSystem, WaitResult, WatchHandle } from '../engine/ports.js';
import { Status, ntStatusNames } from '../sim/protocol.js';
import { defaultEpochMs } from '../sim/server.js';
import { Simulation, type SimulationOptions } from '../sim/simulation.js';
import type { ConformanceCase, Step } from './cases.js';
import { compareCase, type CaseComparison } from './compare.js';

const success = ntStatusNames[Status.success];

export interface SimDriverOptions {
  /** Virtual time between two steps, ms. Default 1000 (a round trip takes 0.2 ms: room for a step of a thousand requests). */
  readonly stepMs?: number;
  /** Builds the simulated share (tests plant broken servers here). Default: SimServer. */
  readonly createServer?: SimulationOptions['createServer'];
  /** The simulation's seed (what it draws: the order of racing lock waiters). Default 1. */
  readonly seed?: number;
}

/** What a port call's outcome is as an NT status name. */
function ntStatusOf(error: unknown): string {
  if (!isNasqError(error)) throw error;
  // A simulated error names the server's status (sim/client.ts makeError).
  const status = (error.details as { status?: unknown } | undefined)?.status;
  const code = typeof status === 'string' ? Status[status as keyof typeof Status] : undefined;
  return code === undefined ? `${error.code} (${error.message})` : ntStatusNames[code];
}

/** What a client of a case holds: its file handles and watches by name. */
type Handles = Map<string, FileHandle | WatchHandle>;

const waitStatuses: Record<WaitResult, string> = { changed: success, overflow: ntStatusNames[Status.notifyEnumDir], timeout: 'PENDING' };

/** Runs a step's request; its NT status (a failure is thrown and named by the caller). */
async function perform(ports: { fs: FileSystem; clock: Clock }, handles: Handles, step: Step, directory: string, timeMs: number, endMs: number): Promise<string> {
  const { fs, clock } = ports;
  const file = (name: string): FileHandle => handles.get(name) as FileHandle;
  const blockingWaitMs = endMs - timeMs;
  switch (step.op) {
    case 'open':
      handles.set(step.handle, await fs.open(`${directory}/${step.path}`, { create: true, durable: step.durable === true }));
      break;
    case 'lock':
      // A blocking lock waits at most until the case ends (then it is past its last observation).
      await fs.lock(file(step.handle), { offset: step.offset, length: step.length }, { mode: step.mode, waitMs: step.wait ? blockingWaitMs : 0 });
      break;
    case 'unlock':
      await fs.unlock(file(step.handle), { offset: step.offset, length: step.length });
      break;
    case 'read':
      await fs.read(file(step.handle), step.offset, step.length);
      break;
    case 'write':
      await fs.write(file(step.handle), step.offset, new Uint8Array(step.length).fill(0x77));
      break;
    case 'close':
      await fs.close(file(step.handle));
      break;
    case 'watch':
      handles.set(step.handle, await fs.watch(step.path === '.' ? directory : `${directory}/${step.path}`, step.filter));
      break;
    case 'notify':
      return waitStatuses[await clock.waitForChange(handles.get(step.handle) as WatchHandle, defaultEpochMs + endMs)];
    case 'touch':
      // A distinct time each, as the Samba driver sets.
      for (let time = 0; time < (step.times ?? 1); time += 1) {
        await fs.setTimes(`${directory}/${step.path}`, defaultEpochMs + timeMs + time, defaultEpochMs + timeMs + time);
      }
      break;
    case 'reconnect':
      // The simulated client reconnects by itself with its next request after a drop.
      break;
    default:
      throw new Error(`sim driver: step ${step.op} is not a client request`);
  }
  return success;
}

/** The client that makes a step (undefined for an observation). */
function clientOf(step: Step, handleClients: ReadonlyMap<string, string>): string | undefined {
  if (step.op === 'open' || step.op === 'drop' || step.op === 'reconnect' || step.op === 'watch' || step.op === 'touch') return step.client;
  if (step.op === 'outcome') return undefined;
  return handleClients.get(step.handle);
}

/** Runs one case on a fresh simulated share; the status observed at each step. */
export async function runCaseOnSimulator(conformanceCase: ConformanceCase, options: SimDriverOptions = {}): Promise<string[]> {
  const stepMs = options.stepMs ?? 1_000;
  const steps = conformanceCase.steps;
  const endMs = (steps.length + 2) * stepMs;
  const at = (index: number): number => (index + 1) * stepMs;
  const directory = conformanceCase.name;
  const simulation = new Simulation({
    seed: options.seed ?? 1,
    latency: { oneWayMs: 0.1, jitterMs: 0, serviceMs: {} },
    clockResolutionMs: 0,
    server: { durableHandles: true, ...conformanceCase.simServer },
    ...(options.createServer === undefined ? {} : { createServer: options.createServer }),
  });
  const handleClients = new Map<string, string>();
  const stepsOfClient = new Map<string, number[]>();
  steps.forEach((step, index) => {
    if (step.op === 'open' || step.op === 'watch') handleClients.set(step.handle, step.client);
    const client = clientOf(step, handleClients);
    if (client === undefined || step.op === 'drop') return;
    const list = stepsOfClient.get(client) ?? [];
    list.push(index);
    stepsOfClient.set(client, list);
  });
  const results = new Map<number, string>();
  const observed = steps.map(() => 'PENDING');
  const sleepUntil = (clock: Clock, ms: number): Promise<void> => clock.sleepUntil(defaultEpochMs + ms);
  simulation.addClient('setup', async ({ fs }) => {
    await fs.mkdir(directory, { recursive: true });
  });
  for (const [client, indexes] of stepsOfClient) {
    simulation.addClient(client, async (ports) => {
      const handles: Handles = new Map();
      for (const index of indexes) {
        await sleepUntil(ports.clock, at(index));
        let status: string;
        try {
          status = await perform(ports, handles, steps[index]!, directory, at(index), endMs);
        } catch (error) {
          status = ntStatusOf(error);
        }
        results.set(index, status);
      }
      // Stay connected to the end: a client that finishes ends its session, and its locks go.
      await sleepUntil(ports.clock, endMs);
    });
  }
  steps.forEach((step, index) => {
    if (step.op === 'drop') {
      simulation.at(at(index), (sim) => {
        sim.dropSession(step.client);
        results.set(index, success);
      });
    }
    simulation.at(at(index) + stepMs / 2, () => {
      observed[index] = results.get(step.op === 'outcome' ? step.of : index) ?? 'PENDING';
    });
  });
  await simulation.run();
  return observed;
}

/** Runs every case on the simulator and compares each with what a server answered to it. */
export async function compareWithServer(
  cases: readonly ConformanceCase[],
  observed: ReadonlyArray<{ readonly name: string; readonly observed: readonly string[] }>,
  options: SimDriverOptions = {},
): Promise<CaseComparison[]> {
  const comparisons: CaseComparison[] = [];
  for (const entry of cases) {
    const simulator = await runCaseOnSimulator(entry, options);
    comparisons.push(compareCase(entry, simulator, observed.find((observation) => observation.name === entry.name)?.observed));
  }
  return comparisons;
}

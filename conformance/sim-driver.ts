/**
 * Runs conformance cases (conformance/cases.ts) against the simulated share, through the same
 * ports the engine uses: each client of a case is a virtual client with its own session, step i
 * runs at virtual time i x `stepMs`, and each step is observed half a step later, as the Samba
 * driver observes a real server (a blocking lock not granted by then is PENDING).
 */

import { isNasqError } from '../engine/errors.js';
import type { Clock, FileHandle, FileSystem } from '../engine/ports.js';
import { statusNames } from '../sim/protocol.js';
import { defaultEpochMs } from '../sim/server.js';
import { Simulation, type SimulationOptions } from '../sim/simulation.js';
import type { ConformanceCase, Step } from './cases.js';

/** The NT status names of the simulator's statuses (MS-ERREF 2.3). */
const ntStatusNames: Record<string, string> = {
  success: 'STATUS_SUCCESS',
  lockNotGranted: 'STATUS_LOCK_NOT_GRANTED',
  fileLockConflict: 'STATUS_FILE_LOCK_CONFLICT',
  rangeNotLocked: 'STATUS_RANGE_NOT_LOCKED',
  invalidLockRange: 'STATUS_INVALID_LOCK_RANGE',
  cancelled: 'STATUS_CANCELLED',
  objectNameNotFound: 'STATUS_OBJECT_NAME_NOT_FOUND',
  objectPathNotFound: 'STATUS_OBJECT_PATH_NOT_FOUND',
  objectNameCollision: 'STATUS_OBJECT_NAME_COLLISION',
  fileClosed: 'STATUS_FILE_CLOSED',
  userSessionDeleted: 'STATUS_USER_SESSION_DELETED',
  networkNameDeleted: 'STATUS_NETWORK_NAME_DELETED',
  invalidParameter: 'STATUS_INVALID_PARAMETER',
  fileIsADirectory: 'STATUS_FILE_IS_A_DIRECTORY',
  notADirectory: 'STATUS_NOT_A_DIRECTORY',
  ioDeviceError: 'STATUS_IO_DEVICE_ERROR',
};

export interface SimDriverOptions {
  /** Virtual time between two steps, ms. Default 50 (round trips take 0.2 ms). */
  readonly stepMs?: number;
  /** Builds the simulated share (tests plant broken servers here). Default: SimServer. */
  readonly createServer?: SimulationOptions['createServer'];
}

/** What a port call's outcome is as an NT status name. */
function ntStatusOf(error: unknown): string {
  if (!isNasqError(error)) throw error;
  const status = (error.details as { status?: unknown } | undefined)?.status;
  const name = typeof status === 'string' ? ntStatusNames[status] : undefined;
  return name ?? `${error.code} (${error.message})`;
}

async function perform(fs: FileSystem, handles: Map<string, FileHandle>, step: Step, blockingWaitMs: number): Promise<void> {
  switch (step.op) {
    case 'open':
      handles.set(step.handle, await fs.open(step.path, { create: true, durable: step.durable === true }));
      return;
    case 'lock':
      await fs.lock(handles.get(step.handle)!, { offset: step.offset, length: step.length }, { mode: step.mode, waitMs: step.wait ? blockingWaitMs : 0 });
      return;
    case 'unlock':
      await fs.unlock(handles.get(step.handle)!, { offset: step.offset, length: step.length });
      return;
    case 'read':
      await fs.read(handles.get(step.handle)!, step.offset, step.length);
      return;
    case 'write':
      await fs.write(handles.get(step.handle)!, step.offset, new Uint8Array(step.length).fill(0x77));
      return;
    case 'close':
      await fs.close(handles.get(step.handle)!);
      return;
    case 'reconnect':
      // The simulated client reconnects by itself with its next request after a drop.
      return;
    default:
      throw new Error(`sim driver: step ${step.op} is not a client request`);
  }
}

/** The client that makes a step (undefined for an observation). */
function clientOf(step: Step, handleClients: ReadonlyMap<string, string>): string | undefined {
  if (step.op === 'open' || step.op === 'drop' || step.op === 'reconnect') return step.client;
  if (step.op === 'outcome') return undefined;
  return handleClients.get(step.handle);
}

/** Runs one case on a fresh simulated share; the status observed at each step. */
export async function runCaseOnSimulator(conformanceCase: ConformanceCase, options: SimDriverOptions = {}): Promise<string[]> {
  const stepMs = options.stepMs ?? 50;
  const steps = conformanceCase.steps;
  const endMs = (steps.length + 1) * stepMs;
  const simulation = new Simulation({
    seed: 1,
    latency: { oneWayMs: 0.1, jitterMs: 0, serviceMs: {} },
    clockResolutionMs: 0,
    server: { durableHandles: true, ...conformanceCase.simServer },
    ...(options.createServer === undefined ? {} : { createServer: options.createServer }),
  });
  const handleClients = new Map<string, string>();
  const stepsOfClient = new Map<string, number[]>();
  steps.forEach((step, index) => {
    if (step.op === 'open') handleClients.set(step.handle, step.client);
    const client = clientOf(step, handleClients);
    if (client === undefined || step.op === 'drop') return;
    const list = stepsOfClient.get(client) ?? [];
    list.push(index);
    stepsOfClient.set(client, list);
  });
  const results = new Map<number, string>();
  const observed = steps.map(() => 'PENDING');
  const sleepUntil = (clock: Clock, ms: number): Promise<void> => clock.sleepUntil(defaultEpochMs + ms);
  for (const [client, indexes] of stepsOfClient) {
    simulation.addClient(client, async ({ fs, clock }) => {
      const handles = new Map<string, FileHandle>();
      for (const index of indexes) {
        await sleepUntil(clock, index * stepMs);
        let status = ntStatusNames.success!;
        try {
          // A blocking lock waits at most until the case ends (then it is past its last observation).
          await perform(fs, handles, steps[index]!, endMs - index * stepMs);
        } catch (error) {
          status = ntStatusOf(error);
        }
        results.set(index, status);
      }
      // Stay connected to the end: a client that finishes ends its session, and its locks go.
      await sleepUntil(clock, endMs);
    });
  }
  steps.forEach((step, index) => {
    if (step.op === 'drop') {
      simulation.at(index * stepMs, (sim) => {
        sim.dropSession(step.client);
        results.set(index, ntStatusNames.success!);
      });
    }
    simulation.at(index * stepMs + stepMs / 2, () => {
      observed[index] = results.get(step.op === 'outcome' ? step.of : index) ?? 'PENDING';
    });
  });
  await simulation.run();
  return observed;
}

/** Every simulator status has an NT name (a new status without one would read as an engine code). */
export function unnamedStatuses(): string[] {
  return Object.values(statusNames).filter((name) => !['pending', 'notifyEnumDir', 'timeout'].includes(name) && ntStatusNames[name] === undefined);
}


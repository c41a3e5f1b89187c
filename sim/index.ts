/**
 * The simulator's public surface: what tests, scenarios and the CLI use.
 */

export { Simulation } from './simulation.js';
export type {
  CrashOptions,
  RestartOptions,
  RunOptions,
  RunResult,
  SimulationAction,
  SimulationOptions,
  SimulationStats,
} from './simulation.js';
export { VirtualClient, SimFileSystem, SimClock, SimFileHandle, SimWatchHandle } from './client.js';
export type { ClientContext, ClientMain, ClientOptions, ClientStatus } from './client.js';
export { SimServer, normalizePath, defaultEpochMs } from './server.js';
export type { FileInfo, LockInfo, ServerOptions, WriteEvent, WriteHook } from './server.js';
export { FixedLatency, zeroLatency, defaultServiceMs } from './latency.js';
export type { FixedLatencyOptions, LatencyModel, ServerCostModel, ServerOperationName } from './latency.js';
export { ProfileLatency, builtinProfile, latencyModelFor, latencyProfileNames, medianCostMs, resolveProfile } from './profiles.js';
export type { LatencyProfile, LatencyProfileInput, RaidConfiguration, RaidLevel } from './profiles.js';
export { NasState, RaidArray } from './nas.js';
export { defaultFaultParameters, installNemesis } from './nemesis.js';
export type { ClientEventKind, InjectedFault, NemesisFault, NemesisHandle, NemesisOptions } from './nemesis.js';
export { Trace, TraceKind, formatRecord } from './trace.js';
export type { TraceNames, TraceOptions, TraceRecord, TraceSink } from './trace.js';
export { RandomStream, RandomStreams, streamSeed } from './random.js';
export type { RunSeed } from './random.js';
export type { StopReason, TieBreak } from './scheduler.js';
export { Operation, Status } from './protocol.js';

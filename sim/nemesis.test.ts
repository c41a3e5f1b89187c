/**
 * The nemesis over the real engine: every fault kind at once on a queue workload. Same seed, same
 * trace hash (faults included); different seeds differ; every fault start has its heal; the run
 * settles after the heal with every property holding.
 */

import { describe, expect, it } from 'vitest';
import { type RunConfig, nominalConfig } from '../properties/config.js';
import { runScenario } from '../properties/run.js';
import { builtinScenarioList } from '../scenarios/index.js';
import type { FaultKind } from '../scenarios/schema.js';
import { defaultFaultParameters } from './nemesis.js';

const everyKind: Array<{ kind: FaultKind; atMs: number; durationMs: number; target: string; parameters: Record<string, number | boolean> }> = [
  { kind: 'pause', atMs: 100, durationMs: 1_500, target: 'any-receiver', parameters: {} },
  { kind: 'partition', atMs: 200, durationMs: 2_000, target: 'any-sender', parameters: { sessionTimeoutMs: 800 } },
  { kind: 'session-drop', atMs: 250, durationMs: 0, target: 'any-client', parameters: {} },
  { kind: 'clock-skew', atMs: 0, durationMs: 2_000, target: 'any-receiver', parameters: { offsetMs: 300 } },
  { kind: 'clock-jump', atMs: 700, durationMs: 0, target: 'any-sender', parameters: { jumpMs: -400 } },
  { kind: 'lose-notify', atMs: 0, durationMs: 1_000, target: 'all-clients', parameters: {} },
  { kind: 'delay-notify', atMs: 1_000, durationMs: 1_000, target: 'any-receiver', parameters: { delayMs: 400 } },
  { kind: 'oplock-delay', atMs: 300, durationMs: 1_500, target: 'any-receiver', parameters: { breakDelayMs: 1_500 } },
  { kind: 'crash', atMs: 400, durationMs: 0, target: 'any-client', parameters: { restartAfterMs: 300 } },
  { kind: 'disk-failure', atMs: 150, durationMs: 0, target: 'server', parameters: { disk: 1, spareAfterMs: 200, rebuildMs: 60_000 } },
  { kind: 'disk-slow', atMs: 900, durationMs: 0, target: 'server', parameters: { stallMs: 1_500 } },
  { kind: 'failover', atMs: 1_200, durationMs: 1_000, target: 'server', parameters: { continuousAvailability: false, batteryBacked: true } },
  { kind: 'power-cut', atMs: 2_600, durationMs: 0, target: 'server', parameters: { batteryBacked: false, rebootMs: 500 } },
];

function config(simulationSeed: number): RunConfig {
  const swarm = builtinScenarioList().find((loaded) => loaded.scenario.name === 'swarm')!.scenario;
  return {
    ...nominalConfig(swarm, simulationSeed),
    senders: 2,
    receivers: 3,
    messages: 40,
    sendIntervalMs: 60,
    durable: true,
    faultPhaseMs: 3_500,
    latency: 'lan-hdd-raid6',
    faults: everyKind.map((fault, index) => ({ ...fault, choice: index })),
  };
}

describe('the nemesis over the engine', () => {
  it('every fault kind at once: deterministic (same seed, same trace hash), healed, and the run settles', async () => {
    const first = await runScenario(config(11));
    const second = await runScenario(config(11));
    const other = await runScenario(config(12));
    expect(second.stats.traceHash).toBe(first.stats.traceHash);
    expect(second.nemesis.injected).toEqual(first.nemesis.injected);
    expect(other.stats.traceHash).not.toBe(first.stats.traceHash);
    for (const outcome of [first, other]) {
      const explanation = outcome.results.filter((result) => result.validity !== 'valid').map((result) => `${result.checker}: ${result.explanation}`);
      expect(explanation).toEqual([]);
      expect(outcome.simulationError).toBeUndefined();
      // Every kind was injected, and everything that started also healed (the array survives one disk).
      const started = new Set(outcome.nemesis.injected.filter((entry) => entry.phase === 'start').map((entry) => entry.kind));
      expect([...started].sort()).toEqual(everyKind.map((fault) => fault.kind).sort());
      const open = new Map<string, number>();
      for (const entry of outcome.nemesis.injected) {
        const key = `${entry.kind} ${entry.target}`;
        open.set(key, (open.get(key) ?? 0) + (entry.phase === 'start' ? 1 : -1));
      }
      const neverHealed = [...open].filter(([key, count]) => count > 0 && !key.startsWith('session-drop'));
      expect(neverHealed).toEqual([]);
      expect(outcome.nemesis.powerLossesMs.length).toBe(1);
      expect(outcome.nemesis.arrayLost).toBe(false);
      expect(outcome.summary.sendsOk).toBeGreaterThan(20);
      // Every ok send is acked (sends of unknown outcome may be acked too); an ack whose outcome is
      // unknown (its client lost the share mid-call) may have taken effect, as no-loss judges.
      const unknownAcks = outcome.history.operations.filter((operation) => operation.kind === 'ack' && operation.outcome === 'info').length;
      expect(outcome.summary.acksOk + unknownAcks).toBeGreaterThanOrEqual(outcome.summary.sendsOk);
    }
  });

  it('every kind has default parameters that the nemesis accepts', () => {
    for (const fault of everyKind) {
      for (const name of Object.keys(fault.parameters)) {
        expect(Object.keys(defaultFaultParameters(fault.kind)), `${fault.kind} ${name}`).toContain(name);
      }
    }
  });
});

/**
 * `check --determinism K` runs every K-th run twice and fails the check when the two traces
 * differ: shown on a deliberately leaky setup (state kept between runs) and passing on the real
 * engine, in this thread and across worker threads.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileSystem, Ports } from '../engine/ports.js';
import { builtinScenarioList } from '../scenarios/index.js';
import { NondeterminismError, check, type CheckOptions } from './check.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'nasq-determinism-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const smoke = builtinScenarioList().find((loaded) => loaded.scenario.name === 'smoke')!;

/**
 * A planted leak: a count kept across runs decides whether sender-0 looks at the queue directory
 * before its first body write, so every other run of one configuration makes one more call.
 */
function leakyPorts(): (ports: Ports, client: string) => Ports {
  let setups = 0;
  return (ports, client) => {
    if (client !== 'sender-0') return ports;
    setups += 1;
    if (setups % 2 === 1) return ports;
    let looked = false;
    const fs = new Proxy(ports.fs, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property !== 'writeFile' || typeof value !== 'function') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return async (...args: unknown[]) => {
          if (!looked) {
            looked = true;
            await target.readdir('q');
          }
          return (value as (...a: unknown[]) => Promise<void>).apply(target, args);
        };
      },
    }) as FileSystem;
    return { fs, clock: ports.clock };
  };
}

const base = (overrides: Partial<CheckOptions>): CheckOptions => ({ scenarios: [smoke], seeds: 6, seed: 4, failureDirectory: directory, ...overrides });

describe('check --determinism', () => {
  it('fails the check on a run whose second run differs, saying which and how to run it twice', async () => {
    const error = await check(base({ determinism: 1, runOptions: { wrapPorts: leakyPorts() } }), () => 0).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NondeterminismError);
    const nondeterminism = error as NondeterminismError;
    expect(nondeterminism.runIndex).toBe(0);
    expect(nondeterminism.traceHashes[0]).not.toBe(nondeterminism.traceHashes[1]);
    expect(nondeterminism.message).toMatch(/^run 0 of scenario smoke \(seed 4\) is not deterministic: run twice from one configuration it gave trace hashes [0-9a-f]{16} and [0-9a-f]{16}\./);
    expect(nondeterminism.replay).toBe('npx nasq check --scenario smoke --seed 4 --path 0 --determinism 1');
    // The replay line: the path, run twice, fails the same way.
    await expect(check(base({ path: '0', determinism: 1, runOptions: { wrapPorts: leakyPorts() } }), () => 0)).rejects.toBeInstanceOf(NondeterminismError);
    // Without --determinism the leak goes unnoticed: every run passes.
    expect((await check(base({ runOptions: { wrapPorts: leakyPorts() } }), () => 0)).failures).toBe(0);
  });

  it('passes the real engine, in this thread and on two worker threads, with the same report as without', async () => {
    const plain = await check(base({}), () => 0);
    const inThread = await check(base({ determinism: 1 }), () => 0);
    const pooled = await check(base({ determinism: 2, workers: 2 }), () => 0);
    for (const report of [inThread, pooled]) {
      expect(report.failures).toBe(0);
      expect(report.fsOps).toBe(plain.fsOps); // the second runs are not counted
      expect(report.scenarios[0]!.exercised).toEqual(plain.scenarios[0]!.exercised);
    }
  });
});

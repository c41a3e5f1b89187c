/**
 * `nasq sim run` as a user runs it, in separate Node processes (the TypeScript sources through
 * tsx): the same seed twice prints the same trace hash, another seed another one; every message
 * is acked exactly once; wrong arguments exit 2 with a message that says what was expected.
 */

import { describe, expect, it } from 'vitest';
import { nasq as runNasq } from './test-support/run-nasq.js';

/** The CLI from its TypeScript sources, as a user runs it. */
const nasq = (...args: string[]) => runNasq(args, { fromSources: true, timeoutMs: 50_000 });

interface Summary {
  seed: number;
  simulatedMs: number;
  events: number;
  fsOps: number;
  sent: number;
  acked: number;
  duplicates: number;
  missing: number;
  traceHash: string;
  wallMs: number;
}

describe('nasq sim run', () => {
  it('prints the same trace hash for the same seed in two processes, and another for another seed', async () => {
    const runs = await Promise.all([7, 7, 8].map((seed) => nasq('sim', 'run', '--clients', '6', '--messages', '120', '--seed', String(seed), '--json')));
    for (const run of runs) expect(run.stderr).toBe('');
    for (const run of runs) expect(run.code).toBe(0);
    const [first, second, other] = runs.map((run) => JSON.parse(run.stdout) as Summary);
    expect(first).toMatchObject({ seed: 7, sent: 120, acked: 120, duplicates: 0, missing: 0 });
    for (const key of ['seed', 'simulatedMs', 'events', 'fsOps', 'sent', 'acked', 'traceHash', 'wallMs'] as const) expect(first).toHaveProperty(key);
    expect(first!.traceHash).toMatch(/^[0-9a-f]{16}$/);
    expect(second!.traceHash).toBe(first!.traceHash);
    expect(second!.events).toBe(first!.events);
    expect(second!.simulatedMs).toBe(first!.simulatedMs);
    expect(other!.traceHash).not.toBe(first!.traceHash);
  });

  it('refuses wrong arguments with exit code 2 and says what it expected', async () => {
    const [zeroClients, badSeed, unknown] = await Promise.all([
      nasq('sim', 'run', '--clients', '0'),
      nasq('sim', 'run', '--seed', 'soon'),
      nasq('sim', 'run', '--speed', '3'),
    ]);
    expect(zeroClients.code).toBe(2);
    expect(zeroClients.stderr).toContain('--clients: expected an integer from 1 to 100000, got "0"');
    expect(badSeed.code).toBe(2);
    expect(badSeed.stderr).toContain('--seed: expected a non-negative integer, got "soon"');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option --speed");
  });
});

/**
 * Determinism: one seed, one run. The same seed twice in one process, and in two separate Node
 * processes, gives the same trace hash; different seeds interleave differently.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type ScenarioOutcome, runDeterminismScenario } from './test-support/determinism-scenario.js';

const run = promisify(execFile);
const repository = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('determinism', () => {
  it('the same seed twice gives the same trace hash and interleaving', async () => {
    const first = await runDeterminismScenario(42);
    const second = await runDeterminismScenario(42);
    expect(second).toEqual(first);
    expect(first.fsOps).toBeGreaterThan(500);
    expect(first.lockOrder.split(',').length).toBeGreaterThan(100);
  });

  it('different seeds give different interleavings', async () => {
    const outcomes = await Promise.all([1, 2, 3, 4].map((seed) => runDeterminismScenario(seed)));
    expect(new Set(outcomes.map((outcome) => outcome.traceHash)).size).toBe(4);
    expect(new Set(outcomes.map((outcome) => outcome.lockOrder)).size).toBe(4);
  });

  it('two separate Node processes agree with this one', async () => {
    // Compile the scenario (and what it imports) with the project's compiler into a temporary
    // directory, then run it twice in fresh processes.
    const directory = mkdtempSync(join(tmpdir(), 'nasq-determinism-'));
    try {
      symlinkSync(join(repository, 'node_modules'), join(directory, 'node_modules'), 'dir');
      writeFileSync(join(directory, 'package.json'), JSON.stringify({ type: 'module' }));
      writeFileSync(
        join(directory, 'tsconfig.json'),
        JSON.stringify({
          extends: join(repository, 'tsconfig.json'),
          compilerOptions: {
            outDir: join(directory, 'out'),
            rootDir: repository,
            noEmit: false,
            sourceMap: false,
            typeRoots: [join(repository, 'node_modules', '@types')],
          },
          include: [],
          files: [join(repository, 'sim', 'test-support', 'determinism-main.ts')],
        }),
      );
      const compiler = join(repository, 'node_modules', 'typescript', 'bin', 'tsc');
      await run(process.execPath, [compiler, '-p', join(directory, 'tsconfig.json')], { cwd: directory });
      const main = join(directory, 'out', 'sim', 'test-support', 'determinism-main.js');
      const children = await Promise.all(
        [0, 1].map(async () => {
          const { stdout } = await run(process.execPath, [main, '42'], { cwd: directory });
          return JSON.parse(stdout) as ScenarioOutcome;
        }),
      );
      const here = await runDeterminismScenario(42);
      expect(children[0]).toEqual(here);
      expect(children[1]).toEqual(here);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

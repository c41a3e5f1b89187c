/**
 * Runs that once failed because of an engine bug, kept as regression tests: each must now hold.
 * (Each file says which bug it found; the configuration replays the run exactly.)
 */

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { RunConfig } from './config.js';
import { runScenario } from './run.js';

const directory = fileURLToPath(new URL('./regressions/', import.meta.url));

describe('regressions', () => {
  for (const file of readdirSync(directory).filter((name) => name.endsWith('.json')).sort()) {
    const { bug, config } = JSON.parse(readFileSync(`${directory}${file}`, 'utf8')) as { bug: string; config: RunConfig };
    it(`${file}: ${bug}`, async () => {
      const outcome = await runScenario(config);
      const failing = outcome.results.filter((result) => result.validity === 'invalid').map((result) => `${result.checker}: ${result.explanation}`);
      expect(failing).toEqual([]);
      expect(outcome.verdict).not.toBe('invalid');
    });
  }
});

/**
 * `npm run bench [-- --json] [-- --only PREFIX] [-- --time-ms N]`: runs every benchmark suite and
 * prints its figures, or one JSON object with all of them.
 */

import { checkSuite } from './check.js';
import { engineDiskSuite } from './engine-disk.js';
import { engineMemorySuite } from './engine-memory.js';
import type { Figures, Suite } from './harness.js';
import { simSuite } from './sim.js';

const suites: Suite[] = [engineMemorySuite, engineDiskSuite, simSuite, checkSuite];

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const only = argument('--only');
  const timeText = argument('--time-ms');
  const timeMs = timeText === undefined ? 2_000 : Number(timeText);
  if (!Number.isFinite(timeMs) || timeMs <= 0) {
    process.stderr.write(`bench: --time-ms expects a positive number of milliseconds, got ${String(timeText)}\n`);
    process.exit(2);
  }
  const figures: Figures = {};
  for (const suite of suites) {
    if (only !== undefined && !suite.name.startsWith(only)) continue;
    if (!json) process.stderr.write(`running ${suite.name} ...\n`);
    Object.assign(figures, await suite.run({ timeMs, verbose: !json }));
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } else {
    for (const [name, value] of Object.entries(figures)) process.stdout.write(`${name.padEnd(44)} ${value}\n`);
  }
}

await main();

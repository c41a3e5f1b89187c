/**
 * Child-process entry of the determinism test: runs the scenario for the seed given as the first
 * argument and prints its outcome as one JSON line.
 */

import { runDeterminismScenario } from './determinism-scenario.js';

const seed = process.argv[2] ?? '1';
const outcome = await runDeterminismScenario(/^\d+$/.test(seed) ? Number(seed) : seed);
process.stdout.write(`${JSON.stringify(outcome)}\n`);

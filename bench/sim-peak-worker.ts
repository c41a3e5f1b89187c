/**
 * Child process of the `sim.peakRssMb.1000clients` benchmark: one plain run of CLIENTS clients and
 * MESSAGES messages, then one JSON line with the process's peak resident memory (maxRSS) and the
 * run's figures. `node sim-peak-worker.js CLIENTS MESSAGES`.
 */

import { runPlainWorkload } from '../sim/plain-run.js';
import type { PeakReport } from './sim.js';

const clients = Number(process.argv[2] ?? 1000);
const messages = Number(process.argv[3] ?? 1_000_000);
const result = await runPlainWorkload({ seed: 1, clients, messages });
const report: PeakReport = {
  // resourceUsage().maxRSS is in kilobytes (KiB), the peak of the whole process.
  maxRssMb: process.resourceUsage().maxRSS / 1024,
  wallMs: result.wallMs,
  fsOps: result.fsOps,
  acked: result.acked,
  duplicates: result.duplicates,
  missing: result.missing,
};
process.stdout.write(`${JSON.stringify(report)}\n`);

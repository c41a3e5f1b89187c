/**
 * What this machine gives a second thread, measured beside the check's own scaling.
 *
 * `check.seedsPerSec.workers2OverWorkers1` says how a check scales from one thread to two. On a
 * machine whose two cores are shared with other tenants (a cloud VM) that ratio depends as much on
 * the host as on the pool: work that allocates a lot, like a check, leans on the shared cache and
 * memory, and scales by whatever the neighbours leave. So the check suite also measures two
 * reference workloads that share nothing at all (no data, no messages, no pool), in the same
 * rounds as the check:
 *
 * - `allocation`: builds and drops small objects, arrays, Maps and typed arrays (the young
 *   generation of the garbage collector, as in a check) and nothing else;
 * - `arithmetic`: eight independent integer chains: it keeps a core's execution units busy and
 *   touches no memory, so it shows whether the two cores are really two.
 *
 * Each is timed alone on this thread (like a check with 1 worker), then on two worker threads at
 * once; the figure is twice the first time over the second: 2.0 is perfect scaling. A check ratio
 * near the allocation reference's is as good as the machine allowed at that moment.
 */

import { existsSync } from 'node:fs';
import { compiledEntry } from '../adapters/compiled-entry.js';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

export type ReferenceKind = 'allocation' | 'arithmetic';

/** Work units per timed piece: about a quarter of a second of one thread here. */
export const referenceUnits: Record<ReferenceKind, number> = { allocation: 120_000, arithmetic: 400_000_000 };

/** Short-lived objects of a few shapes, a Map per unit: about 6.5 KiB allocated per unit. */
function allocation(units: number): number {
  let sum = 0;
  for (let unit = 0; unit < units; unit += 1) {
    const entries = new Map<number, { readonly index: number; readonly pair: number[]; readonly bytes: Uint8Array }>();
    for (let index = 0; index < 16; index += 1) {
      entries.set(index, { index, pair: [unit, index], bytes: new Uint8Array(32 + (index & 7)) });
    }
    for (const entry of entries.values()) sum += entry.pair[1]! + entry.bytes.length;
    sum += String(unit).length;
  }
  return sum;
}

/** Eight independent multiply-add chains, `units` steps in all. */
function arithmetic(units: number): number {
  let a = 1;
  let b = 2;
  let c = 3;
  let d = 4;
  let e = 5;
  let f = 6;
  let g = 7;
  let h = 8;
  for (let step = 0; step < units; step += 8) {
    a = (Math.imul(a, 1103515245) + 12345) | 0;
    b = (Math.imul(b, 1103515245) + 12345) | 0;
    c = (Math.imul(c, 1103515245) + 12345) | 0;
    d = (Math.imul(d, 1103515245) + 12345) | 0;
    e = (Math.imul(e, 1103515245) + 12345) | 0;
    f = (Math.imul(f, 1103515245) + 12345) | 0;
    g = (Math.imul(g, 1103515245) + 12345) | 0;
    h = (Math.imul(h, 1103515245) + 12345) | 0;
  }
  return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

const workloads: Record<ReferenceKind, (units: number) => number> = { allocation, arithmetic };

/** Runs one piece of reference work and returns its wall time in milliseconds (and a result the optimizer cannot drop). */
export function timeReference(kind: ReferenceKind, units: number): { readonly ms: number; readonly result: number } {
  const work = workloads[kind];
  if (work === undefined) throw new TypeError(`reference workload: expected 'allocation' or 'arithmetic', got ${JSON.stringify(kind)}`);
  if (!Number.isSafeInteger(units) || units < 1) throw new RangeError(`reference workload: units must be a positive integer, got ${String(units)}`);
  const started = performance.now();
  const result = work(units);
  return { ms: performance.now() - started, result };
}

interface Request {
  readonly kind: ReferenceKind;
  readonly units: number;
}

/** Two worker threads that time reference work on request, and the same work on this thread. */
export class MachineScaling {
  private readonly workers: Worker[];

  constructor() {
    const entry = compiledEntry(import.meta.url, 'bench', 'machine-scaling-worker.js');
    if (!existsSync(fileURLToPath(entry))) throw new Error(`the reference workers run compiled code, and ${fileURLToPath(entry)} is missing: run "npm run build"`);
    this.workers = [0, 1].map(() => new Worker(entry));
  }

  private timeOn(worker: Worker, request: Request): Promise<number> {
    return new Promise((resolve, reject) => {
      const onMessage = (answer: { readonly ms: number }): void => {
        worker.off('error', reject);
        resolve(answer.ms);
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
      worker.postMessage(request);
    });
  }

  /** Runs each workload once here and once on each worker thread (compiler warm-up). */
  async warmUp(): Promise<void> {
    for (const kind of ['allocation', 'arithmetic'] as const) {
      const request = { kind, units: Math.ceil(referenceUnits[kind] / 4) };
      timeReference(kind, request.units);
      await Promise.all(this.workers.map((worker) => this.timeOn(worker, request)));
    }
  }

  /** One measurement: twice the time alone on this thread over the time of two at once (2.0 = perfect). */
  async twoOverOne(kind: ReferenceKind): Promise<number> {
    const request = { kind, units: referenceUnits[kind] };
    const alone = timeReference(kind, request.units).ms;
    const started = performance.now();
    await Promise.all(this.workers.map((worker) => this.timeOn(worker, request)));
    const together = performance.now() - started;
    return (2 * alone) / together;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

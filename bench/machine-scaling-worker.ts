/** Worker thread of bench/machine-scaling.ts: times the reference work it is sent. */

import { parentPort } from 'node:worker_threads';
import { timeReference, type ReferenceKind } from './machine-scaling.js';

if (parentPort === null) throw new Error('machine-scaling-worker runs as a worker thread');
const port = parentPort;
port.on('message', (request: { readonly kind: ReferenceKind; readonly units: number }) => {
  port.postMessage({ ms: timeReference(request.kind, request.units).ms });
});

/**
 * The entry of a `nasq torture` process (see worker.ts): `node worker-main.js PLAN_JSON`, run by
 * the runner from the compiled package (dist/torture/worker-main.js), or from the sources through
 * tsx when the runner itself runs from them.
 */

import { QueueClient } from '../engine/queue.js';
import { workerMain } from './worker.js';

await workerMain(QueueClient);

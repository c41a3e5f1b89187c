/**
 * A torture process with a planted bug, for tests only: the worker of worker.ts on a queue client
 * whose ack and release skip the fencing check (UnfencedQueueClient of planted-bugs.ts). A test
 * points the runner at this entry (`workerEntry`); production code has no switch for it.
 */

import { UnfencedQueueClient } from '../../properties/test-support/planted-bugs.js';
import { workerMain } from '../worker.js';

await workerMain(UnfencedQueueClient);

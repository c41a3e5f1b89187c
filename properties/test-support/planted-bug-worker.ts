/**
 * A worker entry for tests: the check worker of check-worker.ts, run from the TypeScript sources,
 * that resolves the planted bugs of planted-bugs.ts by name (functions cannot cross a thread
 * boundary, names can). Loaded through planted-bug-worker.mjs.
 */

import { createCheckWorker } from '../check-worker.js';
import { plantedBugs } from './planted-bugs.js';

export default createCheckWorker((name) => {
  const bug = plantedBugs[name];
  if (bug === undefined) throw new Error(`no planted bug named ${JSON.stringify(name)}; expected one of: ${Object.keys(plantedBugs).join(', ')}`);
  return bug.runOptions;
});

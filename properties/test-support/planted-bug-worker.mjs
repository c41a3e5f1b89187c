// The tinypool worker entry of tests that plant bugs in worker threads: a worker thread cannot load
// TypeScript by itself, so this loads planted-bug-worker.ts (and everything it imports, from the
// sources) through tsx.
import { tsImport } from 'tsx/esm/api';

const module = await tsImport('./planted-bug-worker.ts', import.meta.url);

export default module.default;

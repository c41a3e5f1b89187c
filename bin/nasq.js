#!/usr/bin/env node
// The nasq command: runs the compiled CLI (npm install builds it into dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('nasq: the CLI is not built; run "npm install" (or "npm run build") in the nasq directory first\n');
  process.exit(2);
}
await import(entry.href);

/**
 * The engine's boundary: it defines its ports and reaches the world only through them, so the
 * simulator can run it unchanged and one seed replays one run exactly. No import of the harness
 * or of the adapters, no ambient time, randomness or timers in engine code (tests and the
 * real-process test support excepted). A guard: the day someone writes `Date.now()` in the engine,
 * this fails and says where, before a replay silently stops reproducing.
 */

import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const engineDirectory = fileURLToPath(new URL('.', import.meta.url));

/** Module specifiers engine code may import besides its own modules (`./x.js`). */
const allowedImports = new Set(['node:buffer']);

/** What would bring the world in around the ports: ambient time, randomness and timers. */
const ambient: ReadonlyArray<{ readonly pattern: RegExp; readonly what: string }> = [
  { pattern: /\bDate\s*\.\s*now\b/, what: 'Date.now (time comes from the Clock port)' },
  { pattern: /\bnew\s+Date\s*\(\s*\)/, what: 'new Date() (time comes from the Clock port)' },
  { pattern: /\bMath\s*\.\s*random\b/, what: 'Math.random (randomness would not replay from a seed)' },
  { pattern: /\b(?:setTimeout|setInterval|setImmediate|queueMicrotask)\s*\(/, what: 'a timer (waiting goes through the Clock port)' },
  { pattern: /\bperformance\s*\.\s*now\b/, what: 'performance.now (time comes from the Clock port)' },
  { pattern: /\bprocess\s*\.\s*hrtime\b/, what: 'process.hrtime (time comes from the Clock port)' },
  { pattern: /\b(?:getRandomValues|randomUUID|randomBytes|randomInt)\b/, what: 'crypto randomness (it would not replay from a seed)' },
];

/** Source without comments and string contents (so prose about Date.now is not flagged). */
function codeOnly(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
    .replace(/`(?:\\[\s\S]|[^`\\])*`/g, '``');
}

/** Lines of `source` that use ambient time, randomness or timers. */
function ambientViolations(file: string, source: string): string[] {
  const violations: string[] = [];
  codeOnly(source)
    .split('\n')
    .forEach((line, index) => {
      for (const { pattern, what } of ambient) if (pattern.test(line)) violations.push(`${file}:${index + 1}: ${what}`);
    });
  return violations;
}

/** Why `source` (engine file `file`) crosses the boundary; empty if it does not. */
function boundaryViolations(file: string, source: string): string[] {
  const violations: string[] = [];
  const specifiers = /(?:^|\s|;)(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\s|;)import\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const match of source.matchAll(specifiers)) {
    const specifier = match[1] ?? match[2] ?? match[3]!;
    const ownModule = /^\.\/[\w.-]+\.js$/.test(specifier);
    if (!ownModule && !allowedImports.has(specifier)) violations.push(`${file}: imports ${specifier} (the engine reaches the world only through its ports)`);
  }
  violations.push(...ambientViolations(file, source));
  return violations;
}

async function sourcesOf(directory: string): Promise<Array<{ file: string; source: string }>> {
  const files = (await readdir(directory)).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts')).sort();
  return Promise.all(files.map(async (file) => ({ file, source: await readFile(`${directory}${file}`, 'utf8') })));
}

describe('the engine boundary', () => {
  it('engine code imports only its own modules and uses no ambient time, randomness or timers', async () => {
    const sources = await sourcesOf(engineDirectory);
    expect(sources.length).toBeGreaterThan(10);
    expect(sources.flatMap(({ file, source }) => boundaryViolations(file, source))).toEqual([]);
  });

  it('the simulator core uses no ambient time, randomness or timers either (wall time comes from its Host, randomness from the seed)', async () => {
    const sources = await sourcesOf(fileURLToPath(new URL('../sim/', import.meta.url)));
    expect(sources.length).toBeGreaterThan(10);
    expect(sources.flatMap(({ file, source }) => ambientViolations(`sim/${file}`, source))).toEqual([]);
  });

  it('the guard catches each kind of crossing (planted), and lets prose and its own modules be', () => {
    const planted = [
      "import { Simulation } from '../sim/simulation.js';",
      "import { readFile } from 'node:fs/promises';",
      'import {\n  NodeFileSystem,\n} from "../adapters/node-file-system.js";',
      "const clock = await import('../adapters/system-clock.js');",
      'const now = Date.now();',
      'const when = new Date();',
      'const coin = Math.random() < 0.5;',
      'setTimeout(() => undefined, 10);',
      'const started = performance.now();',
      'const id = crypto.randomUUID();',
    ];
    for (const source of planted) expect(boundaryViolations('planted.ts', source), source).toHaveLength(1);
    const innocent = [
      "import { crc32c } from './crc32.js';",
      "import { Buffer } from 'node:buffer';",
      '/** Like Date.now(), but from the Clock port. */\nconst now = clock.now();',
      '// never Math.random here\nconst value = random.next();',
      'const message = `no setTimeout( in the engine`;',
      'const deadline = this.clock.now() + waitMs;',
    ];
    for (const source of innocent) expect(boundaryViolations('innocent.ts', source), source).toEqual([]);
  });
});

/**
 * Which code made a run: a fingerprint of the code a run executes (the engine, the simulator, the
 * scenarios and the checkers, as this process loaded them), kept in failure files. A replay whose
 * trace differs can then say why: another build (the code changed since the file was written:
 * expected), or the same build (the simulation is not deterministic: a bug of nasq).
 */

import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BuildStamp {
  /** SHA-256 (first 16 hex digits) of the run's code files, by relative path. */
  readonly fingerprint: string;
  /** The Node.js version that ran it. */
  readonly node: string;
}

/** The folders whose code a simulated run executes. */
const runCodeFolders = ['adapters', 'engine', 'properties', 'scenarios', 'sim'] as const;

async function codeFiles(directory: string, extension: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...(await codeFiles(path, extension)));
    // Tests never run in a check; declaration and map files are not code.
    else if (entry.isFile() && extname(entry.name) === extension && !entry.name.includes('.test.') && !entry.name.endsWith('.d.ts')) found.push(path);
  }
  return found;
}

/** The fingerprint of the code in `root`'s run folders with `extension` (.js compiled, .ts from sources). */
export async function fingerprintOf(root: string, extension: string): Promise<string> {
  const files: string[] = [];
  for (const folder of runCodeFolders) files.push(...(await codeFiles(join(root, folder), extension)));
  const named = files.map((file) => ({ file, name: relative(root, file).split('\\').join('/') }));
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hash = createHash('sha256');
  for (const { file, name } of named) {
    const contents = await readFile(file);
    hash.update(`${name}\0${contents.length}\0`);
    hash.update(contents);
  }
  return hash.digest('hex').slice(0, 16);
}

let current: Promise<BuildStamp> | undefined;

/** This process's build (computed once). */
export function currentBuild(): Promise<BuildStamp> {
  current ??= (async () => {
    const here = fileURLToPath(import.meta.url);
    const root = fileURLToPath(new URL('..', import.meta.url));
    return { fingerprint: await fingerprintOf(root, extname(here)), node: process.version };
  })();
  return current;
}

export type BuildComparison = 'same' | 'code-changed' | 'node-changed' | 'unknown';

/**
 * How a recorded build compares with this one: the same code on the same Node.js, other code,
 * the same code on another Node.js (whose math library may round differently), or 'unknown' (a
 * file from before builds were kept).
 */
export function compareBuild(recorded: BuildStamp | undefined, now: BuildStamp): BuildComparison {
  if (recorded === undefined || typeof recorded.fingerprint !== 'string') return 'unknown';
  if (recorded.fingerprint !== now.fingerprint) return 'code-changed';
  return recorded.node === now.node ? 'same' : 'node-changed';
}

/**
 * Runs the nasq command line in a fresh process, as a user does, for the CLI tests: the compiled
 * CLI (bin/nasq.js; `npm test` builds it first), or the TypeScript sources through tsx.
 */

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../../bin/nasq.js', import.meta.url));
const sources = fileURLToPath(new URL('../main.ts', import.meta.url));

export interface NasqResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time of the process, ms. */
  readonly wallMs: number;
}

export interface NasqOptions {
  readonly cwd?: string;
  /** Written to its standard input (default: none, input closed). */
  readonly input?: string;
  /** Killed after this long. Default 120 s. */
  readonly timeoutMs?: number;
  /** Run the TypeScript sources through tsx instead of the compiled CLI. */
  readonly fromSources?: boolean;
}

export function nasq(args: readonly string[], options: NasqOptions = {}): Promise<NasqResult> {
  const started = performance.now();
  const entry = options.fromSources === true ? ['--import', 'tsx', sources] : [compiled];
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...entry, ...args],
      { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1;
        resolve({ code, stdout, stderr, wallMs: performance.now() - started });
      },
    );
    child.stdin?.end(options.input);
  });
}

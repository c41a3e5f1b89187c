/** Where commands write: JSON or text on stdout, and the process's exit code. */

export interface Output {
  /** Prints `value` as JSON when `json`, else `text` (nothing if empty). */
  result(json: boolean, value: unknown, text: string): void;
  line(text: string): void;
  /** Sets the exit code (the highest requested wins). */
  exitCode(code: number): void;
}

export function processOutput(): Output {
  // A reader that goes away (nasq check | head) is not an error of ours.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  return {
    result(json, value, text) {
      if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
      else if (text !== '') process.stdout.write(`${text}\n`);
    },
    line(text) {
      process.stdout.write(`${text}\n`);
    },
    exitCode(code) {
      process.exitCode = Math.max(Number(process.exitCode ?? 0), code);
    },
  };
}

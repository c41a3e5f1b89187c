/** Usage errors of the command line that yargs reports badly, said plainly. */

import { UsageError } from './durations.js';

/**
 * yargs's own usage messages, made to say what was typed: "Did you mean run?" names the unknown
 * command, "Unknown argument: sedes" says whether it was an option or a stray word.
 */
export function explainUsage(message: string, rawArgs: readonly string[]): string {
  const recommended = /^Did you mean (.+)\?$/.exec(message);
  if (recommended !== null) {
    const firstOption = rawArgs.findIndex((token) => token.startsWith('-'));
    const words = firstOption === -1 ? rawArgs : rawArgs.slice(0, firstOption);
    const typed = words[words.length - 1];
    return typed === undefined ? message : `unknown command ${JSON.stringify(typed)}; did you mean ${recommended[1]}?`;
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown !== null) {
    const described = unknown[1]!.split(', ').map((name) => {
      const flag = name.length === 1 ? `-${name}` : `--${name}`;
      if (rawArgs.some((token) => token === flag || token.startsWith(`${flag}=`))) return `unknown option ${flag}`;
      return rawArgs[0] === name ? `unknown command ${JSON.stringify(name)} (nasq --help lists the commands)` : `unexpected argument ${JSON.stringify(name)}`;
    });
    return described.join('; ');
  }
  return message;
}

/**
 * A numeric option given text that is not a number: yargs parses it to NaN, which would be shown
 * as "null". Names the option and the text as typed.
 */
export function notANumberError(parsed: Record<string, unknown>, rawArgs: readonly string[]): UsageError | undefined {
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'number' || !Number.isNaN(value) || key === '_' || /[A-Z]/.test(key)) continue;
    const flag = key.length === 1 ? `-${key}` : `--${key}`;
    let raw: string | undefined;
    for (let index = 0; index < rawArgs.length && raw === undefined; index += 1) {
      const token = rawArgs[index]!;
      if (token === flag) raw = rawArgs[index + 1] ?? '';
      else if (token.startsWith(`${flag}=`)) raw = token.slice(flag.length + 1);
    }
    return new UsageError(`${flag}: expected a number, got ${JSON.stringify(raw ?? String(value))}`);
  }
  return undefined;
}

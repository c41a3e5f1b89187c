/** Usage errors of the command line that yargs reports badly, said plainly. */

import { UsageError } from './durations.js';

function flagOf(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** What was typed after `flag` (the next word, or the text after "="); undefined if `flag` was not typed. */
function typedValue(flag: string, rawArgs: readonly string[]): string | undefined {
  for (const [index, token] of rawArgs.entries()) {
    if (token === flag) return rawArgs[index + 1] ?? '';
    if (token.startsWith(`${flag}=`)) return token.slice(flag.length + 1);
  }
  return undefined;
}

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
      const flag = flagOf(name);
      if (typedValue(flag, rawArgs) !== undefined) return `unknown option ${flag}`;
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
    const flag = flagOf(key);
    return new UsageError(`${flag}: expected a number, got ${JSON.stringify(typedValue(flag, rawArgs) ?? String(value))}`);
  }
  return undefined;
}

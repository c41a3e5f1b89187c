/** Parsing of the CLI's durations ("500ms", "2s", "1.5m", "2h", "1d") and times. */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration like 500ms, 2s, 1.5m, 2h, 1d (a bare number is milliseconds). */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (match === null) throw new UsageError(`${what}: expected a duration like 500ms, 2s, 5m, 1h or 1d, got ${JSON.stringify(text)}`);
  const value = Number(match[1]) * units[match[2] ?? 'ms']!;
  if (!Number.isFinite(value)) throw new UsageError(`${what}: the duration ${JSON.stringify(text)} is too large`);
  return value;
}

/** A delivery time: an ISO 8601 date-time, or +DURATION from `nowMs`. */
export function parseDeliverAt(text: string, nowMs: number): number {
  if (text.startsWith('+')) return Math.round(nowMs + parseDuration(text.slice(1), '--deliver-at'));
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new UsageError(`--deliver-at: expected an ISO 8601 time like 2026-11-25T18:00:00Z or +DURATION like +5m, got ${JSON.stringify(text)}`);
  }
  const value = Date.parse(text);
  if (Number.isNaN(value)) throw new UsageError(`--deliver-at: ${JSON.stringify(text)} is not a valid ISO 8601 time`);
  return value;
}

/** A positive integer option. */
export function parsePositiveInteger(value: unknown, what: string, maximum = Number.MAX_SAFE_INTEGER): number {
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(number) || number < 1 || number > maximum) {
    throw new UsageError(`${what}: expected an integer from 1 to ${maximum}, got ${JSON.stringify(value)}`);
  }
  return number;
}

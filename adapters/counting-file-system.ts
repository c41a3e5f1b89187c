/**
 * Wraps a FileSystem and counts (and optionally records) every port call by method. Used by the
 * benchmarks (port calls per message) and by tests that check the order of calls of a claim.
 */

import type { FileSystem } from '../engine/ports.js';

export interface PortCall {
  readonly method: string;
  readonly path: string;
}

export interface CountingFileSystem extends FileSystem {
  readonly counts: Map<string, number>;
  readonly calls: PortCall[];
  /** Total port calls since the last reset. */
  total(): number;
  reset(): void;
}

export function countingFileSystem(inner: FileSystem, options: { record?: boolean } = {}): CountingFileSystem {
  const counts = new Map<string, number>();
  const calls: PortCall[] = [];
  const record = options.record ?? false;
  const extra = {
    counts,
    calls,
    total: () => {
      let sum = 0;
      for (const count of counts.values()) sum += count;
      return sum;
    },
    reset: () => {
      counts.clear();
      calls.length = 0;
    },
  };
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (typeof property === 'string' && property in extra) return extra[property as keyof typeof extra];
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const method = String(property);
      return (...args: unknown[]) => {
        counts.set(method, (counts.get(method) ?? 0) + 1);
        if (record) {
          const first = args[0];
          const path = typeof first === 'string' ? first : ((first as { path?: string } | undefined)?.path ?? '');
          calls.push({ method, path });
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as CountingFileSystem;
}

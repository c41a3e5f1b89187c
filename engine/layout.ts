/**
 * The layout of a queue directory (docs/format.md), and the few file steps every part of the
 * engine takes on it the same way.
 */

import { isNasqError } from './errors.js';
import type { FileSystem } from './ports.js';

export const queueLayout = {
  kernel: 'kernel',
  messages: 'msg',
  notify: 'notify',
  bell: 'notify/bell',
  dead: 'dead',
} as const;

export function joinPath(directory: string, name: string): string {
  if (directory === '' || directory === '.') return name;
  return directory.endsWith('/') ? `${directory}${name}` : `${directory}/${name}`;
}

/** Where dead letter `id` of the queue in `directory` lives: its body, and the record of why. */
export function deadLetterPaths(directory: string, id: string): { readonly body: string; readonly record: string } {
  const dead = joinPath(directory, queueLayout.dead);
  return { body: joinPath(dead, id), record: joinPath(dead, `${id}.json`) };
}

/**
 * Deletes a file; one that is already gone is no error (a step repeated after a crash). With
 * `sync`, the directory is flushed either way (unlink's `sync`).
 */
export async function unlinkIfPresent(fs: FileSystem, path: string, sync = false): Promise<void> {
  try {
    await fs.unlink(path, { sync });
  } catch (error) {
    if (!isNasqError(error, 'NOT_FOUND')) throw error;
  }
}

/** A whole file, or undefined if there is none. */
export async function readIfPresent(fs: FileSystem, path: string): Promise<Uint8Array | undefined> {
  try {
    return await fs.readFile(path);
  } catch (error) {
    if (isNasqError(error, 'NOT_FOUND')) return undefined;
    throw error;
  }
}

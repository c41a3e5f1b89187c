/**
 * FileSystem.read's `into` (engine/ports.ts), the same on the three file systems the engine runs
 * on: the memory adapter, the node adapter (a real directory) and the simulated share. The bytes
 * come back in `into` (or a view of its start at end of file); a buffer too small, or not a
 * Uint8Array, is INVALID_ARGUMENT; without `into` a read is what it always was.
 */

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNasqError } from '../engine/errors.js';
import type { FileSystem } from '../engine/ports.js';
import { Simulation } from '../sim/simulation.js';
import { ManualClock } from './manual-clock.js';
import { MemoryFileSystem } from './memory-file-system.js';
import { NodeFileSystem } from './node-file-system.js';

const content = new TextEncoder().encode('0123456789abcdef');

/** Runs the same checks on one file system; returns what failed (empty if nothing). */
async function checkReadInto(fileSystem: FileSystem): Promise<string[]> {
  const failures: string[] = [];
  const expectThat = (ok: boolean, what: string): void => {
    if (!ok) failures.push(what);
  };
  await fileSystem.writeFile('file', content);
  const handle = await fileSystem.open('file');
  try {
    const into = new Uint8Array(8).fill(0xee);
    const read = await fileSystem.read(handle, 4, 8, into);
    expectThat(new TextDecoder().decode(read) === '456789ab', `read 8 at 4 into a buffer gave ${JSON.stringify(new TextDecoder().decode(read))}`);
    expectThat(read.buffer === into.buffer && read.byteOffset === into.byteOffset, 'the bytes did not come back in the given buffer');

    // At end of file: fewer bytes, a view of the start of the buffer.
    const tail = new Uint8Array(10).fill(0xee);
    const short = await fileSystem.read(handle, 12, 10, tail);
    expectThat(new TextDecoder().decode(short) === 'cdef', `a read past the end gave ${JSON.stringify(new TextDecoder().decode(short))}`);
    expectThat(short.length === 0 || short.buffer === tail.buffer, 'a short read did not come back in the given buffer');

    // A bigger buffer than asked is fine; the read stays `length` bytes.
    const big = await fileSystem.read(handle, 0, 3, new Uint8Array(64));
    expectThat(big.length === 3 && new TextDecoder().decode(big) === '012', `a read of 3 into 64 bytes gave ${big.length} bytes`);

    // Without into: a buffer of its own, as before.
    const plain = await fileSystem.read(handle, 0, 4);
    expectThat(new TextDecoder().decode(plain) === '0123', 'a read without into changed');

    for (const [label, bad] of [
      ['a buffer too small', new Uint8Array(3)],
      ['not a Uint8Array', [0, 0, 0, 0, 0, 0, 0, 0] as unknown as Uint8Array],
    ] as const) {
      const outcome = await fileSystem.read(handle, 0, 8, bad).then(
        () => 'no error',
        (error: unknown) => (isNasqError(error) ? error.code : String(error)),
      );
      expectThat(outcome === 'INVALID_ARGUMENT', `${label}: expected INVALID_ARGUMENT, got ${outcome}`);
    }
  } finally {
    await fileSystem.close(handle);
  }
  return failures;
}

describe('FileSystem.read into a given buffer', () => {
  let root: string;
  beforeAll(async () => {
    root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-read-into-'));
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('memory adapter', async () => {
    expect(await checkReadInto(new MemoryFileSystem({ clock: new ManualClock(0) }))).toEqual([]);
  });

  it('node adapter (a real directory)', async () => {
    expect(await checkReadInto(new NodeFileSystem(root))).toEqual([]);
  });

  it('simulated share', async () => {
    const simulation = new Simulation({ seed: 1 });
    let failures: string[] = ['the client did not run'];
    simulation.addClient('client', async ({ fs: fileSystem }) => {
      failures = await checkReadInto(fileSystem);
    });
    await simulation.run();
    expect(simulation.client('client').status).toBe('finished');
    expect(failures).toEqual([]);
  });
});

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareBuild, currentBuild, fingerprintOf } from './build.js';

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'nasq-build-'));
  roots.push(root);
  for (const folder of ['adapters', 'engine', 'properties', 'scenarios', 'sim']) await mkdir(join(root, folder), { recursive: true });
  for (const [path, contents] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), contents);
  }
  return root;
}

describe('the build fingerprint of failure files', () => {
  it('changes with the code a run executes, not with tests, other files or where the tree lies', async () => {
    const base = { 'engine/queue.js': 'a', 'sim/server.js': 'b', 'sim/deep/x.js': 'c', 'cli/main.js': 'd' };
    const fingerprint = await fingerprintOf(await tree(base), '.js');
    expect(fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(await fingerprintOf(await tree(base), '.js')).toBe(fingerprint);
    expect(await fingerprintOf(await tree({ ...base, 'engine/queue.js': 'a2' }), '.js')).not.toBe(fingerprint);
    expect(await fingerprintOf(await tree({ ...base, 'sim/deep/x.js': 'c2' }), '.js')).not.toBe(fingerprint);
    // A file moved keeps its bytes but not its name: another build.
    expect(await fingerprintOf(await tree({ 'engine/queue2.js': 'a', 'sim/server.js': 'b', 'sim/deep/x.js': 'c' }), '.js')).not.toBe(fingerprint);
    expect(await fingerprintOf(await tree({ ...base, 'engine/queue.test.js': 'e', 'cli/main.js': 'd2', 'engine/notes.md': 'f', 'engine/queue.d.ts': 'g' }), '.js')).toBe(fingerprint);
  });

  it('is known for this process, and compares builds', async () => {
    const now = await currentBuild();
    expect(now.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(now.node).toBe(process.version);
    expect(compareBuild(now, now)).toBe('same');
    expect(compareBuild({ ...now, fingerprint: '0000000000000000' }, now)).toBe('code-changed');
    expect(compareBuild({ ...now, node: 'v0.0.0' }, now)).toBe('node-changed');
    expect(compareBuild(undefined, now)).toBe('unknown');
  });
});

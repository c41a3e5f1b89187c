import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeMount, detectLocks, localOnlyLockReason } from './detect-locks.js';

let root: string;

beforeEach(async () => {
  root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-detect-'));
});

afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** A mountinfo file where `mountPoint` is a file system of `type` with `superOptions`. */
async function fakeMountInfo(mountPoint: string, type: string, superOptions: string): Promise<string> {
  const path = nodePath.join(root, 'mountinfo');
  await fs.writeFile(
    path,
    [
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      `90 22 0:50 / ${mountPoint.replace(/ /g, '\\040')} rw,relatime shared:40 - ${type} //nas/share ${superOptions}`,
      '',
    ].join('\n'),
  );
  return path;
}

describe('detectLocks', () => {
  it('finds working byte-range locks between two processes on a local directory', async () => {
    const detection = await detectLocks(root);
    expect(detection.working, JSON.stringify(detection)).toBe(true);
    expect(detection.directory).toBe(nodePath.resolve(root));
    expect(detection.checks.map((check) => check.passed)).toEqual([true, true, true, true, true, true]);
    expect(detection.checks.filter((check) => check.expected === 'refused').map((check) => check.observed)).toEqual([
      'refused',
      'refused',
      'refused',
    ]);
    // The probe file is gone.
    expect(await fs.readdir(root)).toEqual([]);
    if (process.platform === 'linux') expect(detection.mount?.mountPoint).toBeDefined();
  });

  it('refuses a mount that keeps locks local to this machine, though the processes exclude each other', async () => {
    const mountInfoPath = await fakeMountInfo(nodePath.dirname(await fs.realpath(root)), 'cifs', 'rw,vers=3.1.1,nobrl,actimeo=1');
    const detection = await detectLocks(root, { mountInfoPath });
    expect(detection.working).toBe(false);
    if (detection.working) return;
    expect(detection.reason).toBe('locks-local-only');
    expect(detection.message).toMatch(/nobrl/);
    expect(detection.checks.every((check) => check.passed)).toBe(true);
  });

  it('fails with probe-file-failed where it cannot create the probe, and with child-failed without node', async () => {
    const missing = await detectLocks(nodePath.join(root, 'absent'));
    expect(missing).toMatchObject({ working: false, reason: 'probe-file-failed' });
    const noNode = await detectLocks(root, { nodeExecutable: nodePath.join(root, 'no-such-node') });
    expect(noNode).toMatchObject({ working: false, reason: 'child-failed' });
    expect(await fs.readdir(root)).toEqual([]);
  });

  it('rejects bad options', async () => {
    await expect(detectLocks(root, { timeoutMs: 0 })).rejects.toThrow(/timeoutMs: expected a positive finite number, given 0/);
  });
});

describe('mount description', () => {
  it('picks the longest mount point holding the directory, and decodes escapes', async () => {
    const inner = nodePath.join(await fs.realpath(root), 'with space');
    await fs.mkdir(inner);
    const mountInfoPath = await fakeMountInfo(inner, 'nfs4', 'rw,vers=4.2,local_lock=none');
    const mount = await describeMount(inner, mountInfoPath);
    expect(mount).toEqual({
      mountPoint: inner,
      fileSystemType: 'nfs4',
      source: '//nas/share',
      options: ['rw', 'relatime', 'rw', 'vers=4.2', 'local_lock=none'],
    });
    expect(localOnlyLockReason(mount!)).toBeUndefined();
    expect((await describeMount(root, mountInfoPath))?.mountPoint).toBe('/');
    expect(await describeMount(root, nodePath.join(root, 'no-mountinfo'))).toBeUndefined();
  });

  it('knows the client options that keep locks local', () => {
    const mount = (fileSystemType: string, options: string[]) => ({ mountPoint: '/mnt', fileSystemType, source: 's', options });
    expect(localOnlyLockReason(mount('cifs', ['rw', 'nobrl']))).toMatch(/nobrl/);
    expect(localOnlyLockReason(mount('smb3', ['rw']))).toBeUndefined();
    expect(localOnlyLockReason(mount('nfs', ['nolock']))).toMatch(/nolock/);
    expect(localOnlyLockReason(mount('nfs4', ['local_lock=posix']))).toMatch(/local_lock/);
    expect(localOnlyLockReason(mount('ext4', ['nobrl']))).toBeUndefined();
  });
});

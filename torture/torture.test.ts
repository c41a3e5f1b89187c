/**
 * `nasq torture` as a user runs it (the compiled CLI; npm test builds it first): a short run of
 * real processes SIGKILLed at random ends with every property holding, nothing lost and nothing
 * acked twice, and writes its report; an empty queue is reused; bad directories and options exit
 * 2 before anything starts, saying what was expected and what was found.
 */

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockDetection } from '../adapters/detect-locks.js';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import { fsck } from '../engine/fsck.js';
import type { TortureReport } from './report.js';
import { runTorture } from './runner.js';
import { TortureSetupError } from './setup.js';
import { nasq } from '../cli/test-support/run-nasq.js';

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'nasq-torture-cli-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const checkers = ['header-invariants', 'no-loss', 'exactly-once', 'justified-redelivery', 'time-order', 'liveness', 'fsck', 'processes'];

describe('nasq torture on real processes', () => {
  it('gives up, quickly, when processes keep failing on their own (here: a worker that cannot start), and says why', async () => {
    const started = Date.now();
    const result = await runTorture({
      directory: nodePath.join(root, 'broken-worker'),
      workDirectory: nodePath.join(root, 'broken-worker-work'),
      processes: 2,
      durationMs: 60_000,
      killIntervalMs: 1_000,
      seed: 3,
      workerEntry: { script: nodePath.join(root, 'no-such-worker.js'), nodeArguments: [], cwd: root },
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(result).toMatchObject({ gaveUp: true, exitCode: 1, unexpectedExits: 10 });
    const processes = result.judgement.verdicts.find((verdict) => verdict.checker === 'processes' && verdict.kind === 'correctness')!;
    expect(processes.validity).toBe('invalid');
    expect(processes.explanation).toMatch(/process\(es\) failed on their own: p\d\.\d ended with 1: .*Cannot find module/);
  });

  it('a short run: processes killed and restarted, nothing lost or acked twice, every property holds, a report; then the empty queue is reused', async () => {
    const queue = nodePath.join(root, 'queue');
    const reportDirectory = nodePath.join(root, 'report');
    const result = await nasq(['torture', queue, '--processes', '3', '--duration', '12s', '--kill-interval', '700ms', '--seed', '7', '--json', '--quiet', '--report', reportDirectory]);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as TortureReport;
    expect(report.verdicts.filter((verdict) => verdict.validity !== 'valid')).toEqual([]);
    expect(result.code).toBe(0);
    expect(report).toMatchObject({ format: 'nasq-torture-report', exitCode: 0, queue: { created: true }, options: { processes: 3, seed: 7, durationMs: 12_000, killIntervalMs: 700 } });
    expect(report.verdicts.map((verdict) => verdict.checker)).toEqual(checkers);
    expect(report.kills).toBeGreaterThanOrEqual(6);
    expect(report.processesStarted).toBe(3 + report.kills + report.unexpectedExits);
    expect(report.figures).toMatchObject({ lost: 0, duplicateAcks: 0, remaining: 0 });
    expect(report.figures.sent).toBeGreaterThan(50);
    // Every returned send acked (or gone with a killed ack); some messages of sends killed mid-call went in and were acked too.
    expect(report.figures.acked + report.figures.ackedUnknown + report.figures.deadLettered).toBeGreaterThanOrEqual(report.figures.sent);
    expect(report.figures.acked).toBeLessThanOrEqual(report.figures.sent + report.figures.sentUnknown);
    expect(report.latency.send.count).toBeGreaterThan(0);
    expect(report.latency.endToEnd.p50Ms).toBeGreaterThan(0);

    // The report directory: the JSON printed, the summary, a history file per process that got to start.
    expect(JSON.parse(await fs.readFile(nodePath.join(reportDirectory, 'report.json'), 'utf8'))).toEqual(report);
    expect(await fs.readFile(nodePath.join(reportDirectory, 'summary.md'), 'utf8')).toMatch(/## nasq torture: ✅ every property held/);
    expect((await fs.readdir(nodePath.join(reportDirectory, 'histories'))).length).toBeGreaterThanOrEqual(3);

    // The queue is left sound and empty, without the bodies of killed sends.
    const ports = { fs: new NodeFileSystem(queue), clock: new SystemClock() };
    expect(await fsck(ports, '.')).toMatchObject({ clean: true, violations: [], messages: 0, orphans: [], badBodies: [] });
    expect(await fs.readdir(nodePath.join(queue, 'msg'))).toEqual([]);

    const again = await nasq(['torture', queue, '--processes', '2', '--duration', '3s', '--kill-interval', '1s', '--seed', '8', '--json', '--quiet']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ exitCode: 0, queue: { created: false }, figures: { lost: 0, duplicateAcks: 0 } });
  });

  it('a directory that is not a queue, a file, a queue with messages, one not writable, bad options: exit 2, nothing started', async () => {
    const cluttered = nodePath.join(root, 'cluttered');
    await fs.mkdir(nodePath.join(cluttered, 'data'), { recursive: true });
    await fs.writeFile(nodePath.join(cluttered, 'notes.txt'), 'mine');
    const notQueue = await nasq(['torture', cluttered, '--duration', '2s']);
    expect(notQueue.code).toBe(2);
    expect(notQueue.stderr).toMatch(/is not a nasq queue: expected an empty directory \(a queue is created in it\) or a queue \(a 'kernel' file\), found 2 entries and no 'kernel' file \(data, notes\.txt\)/);
    expect((await fs.readdir(cluttered)).sort()).toEqual(['data', 'notes.txt']);

    const file = nodePath.join(root, 'a-file');
    await fs.writeFile(file, 'x');
    const notDirectory = await nasq(['torture', file, '--duration', '2s']);
    expect(notDirectory.code).toBe(2);
    expect(notDirectory.stderr).toMatch(/is not a directory: expected a directory \(empty, or a nasq queue\), found a file/);

    const busy = nodePath.join(root, 'busy');
    expect((await nasq(['queue', 'init', busy, '--slots', '8'])).code).toBe(0);
    expect((await nasq(['queue', 'send', busy, '--body', 'someone else\'s'])).code).toBe(0);
    const holding = await nasq(['torture', busy, '--duration', '2s']);
    expect(holding.code).toBe(2);
    expect(holding.stderr).toMatch(/is a queue holding 1 message\(s\) \(1 unread, 0 pending\): expected an empty queue/);

    // Not writable: a read-only directory (root writes anywhere, but not into sysfs).
    let readOnly: string | undefined;
    if (process.getuid?.() === 0) {
      readOnly = (await fs.stat('/sys/kernel').catch(() => undefined)) === undefined ? undefined : '/sys/kernel';
    } else {
      readOnly = nodePath.join(root, 'read-only');
      await fs.mkdir(readOnly, { mode: 0o555 });
    }
    if (readOnly !== undefined) {
      const notWritable = await nasq(['torture', readOnly, '--duration', '2s']);
      expect(notWritable.code).toBe(2);
      expect(notWritable.stderr).toMatch(/is not writable: expected a directory this user can create files in, got EACCES/);
    }

    for (const [options, message] of [
      [['--processes', '0'], /--processes: expected an integer from 1 to 64, got 0/],
      [['--duration', 'soon'], /--duration: expected a duration like 500ms/],
      [['--kill-interval', '5ms'], /kill interval: expected a duration of at least 10 ms, got 5/],
    ] as const) {
      const bad = await nasq(['torture', nodePath.join(root, 'never'), ...options]);
      expect(bad.code, options.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
    await expect(fs.stat(nodePath.join(root, 'never'))).rejects.toThrow(/ENOENT/);
  });

  it('a file system whose byte-range locks do not exclude: a setup error naming the mount, and the directory it made is gone again', async () => {
    const directory = nodePath.join(root, 'share', 'queue');
    const nobrl: LockDetection = {
      working: false,
      directory,
      reason: 'locks-local-only',
      message: "cifs mount /mnt/share has 'nobrl': byte-range locks are not sent to the server",
      checks: [],
      mount: { mountPoint: '/mnt/share', fileSystemType: 'cifs', source: '//nas/share', options: ['rw', 'nobrl'] },
    };
    const run = runTorture({ directory, processes: 2, durationMs: 1_000, killIntervalMs: 500, seed: 1, detectLocks: async () => nobrl });
    await expect(run).rejects.toThrow(TortureSetupError);
    await expect(run).rejects.toThrow(
      /byte-range locks do not work on .*queue \(cifs mounted at \/mnt\/share\): expected a lock one process holds to refuse another process, found locks-local-only: cifs mount \/mnt\/share has 'nobrl'/,
    );
    await expect(fs.stat(directory)).rejects.toThrow(/ENOENT/);
  });
});

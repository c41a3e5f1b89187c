/**
 * The nasq command line, as a user runs it: a fresh process per command, exit codes, JSON output,
 * and clear errors for bad input. Runs the compiled CLI (npm test builds it first).
 */

import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nasq } from './test-support/run-nasq.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'nasq-cli-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('nasq check', () => {
  it('passes the smoke scenario and prints the report as JSON', async () => {
    const result = await nasq(['check', '--scenario', 'smoke', '--seeds', '5', '--seed', '11', '--json', '--failures', join(directory, 'failures')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ seeds: 5, failures: 0, seed: 11, scenarios: [{ name: 'smoke', seeds: 5, failures: 0, replay: [] }] });
    // Every run run twice (--determinism 1): the same report.
    const twice = await nasq(['check', '--scenario', 'smoke', '--seeds', '5', '--seed', '11', '--json', '--determinism', '1', '--failures', join(directory, 'failures')]);
    expect(twice.code).toBe(0);
    expect((JSON.parse(twice.stdout) as Record<string, unknown>)['fsOps']).toBe(report['fsOps']);
    expect(typeof report['wallMs']).toBe('number');
    expect(report['fsOps']).toBeGreaterThan(0);
  });

  it('says what the runs exercised (--exercised), and warns of a scheduled fault that never started', async () => {
    const scenario = {
      name: 'crash-too-late',
      description: 'the sender is done long before its crash is due',
      clients: { senders: 1, receivers: 1 },
      workload: { messages: 1 },
      nemesis: { faults: [{ kind: 'crash', atMs: 1_900, target: 'any-sender' }] },
      options: { faultPhaseMs: 2_000, settleMs: 30_000 },
    };
    const file = join(directory, 'crash-too-late.json');
    await writeFile(file, JSON.stringify(scenario));
    const result = await nasq(['check', '--scenario', `${file},crash-while-locked`, '--seeds', '4', '--seed', '2', '--exercised', '--failures', join(directory, 'failures')]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/crash-too-late +4 runs .* ok\n {4}not exercised: crash \(scheduled, but started in none of the 4 runs\)\n/);
    expect(result.stdout).toMatch(/crash-while-locked +4 runs .* ok\n(?: {4}\S+ +\d+ in \d\/4 runs\n)*? {4}fault:crash +\d+ in 4\/4 runs\n/);
  });

  it('fails a liveness property with exit code 3, and the failure file replays to the same trace hash in a fresh process', async () => {
    // A run that must settle within 200 ms of simulated time cannot drain slow receivers: a real
    // liveness failure of the real engine, found, shrunk and written to a file.
    const scenario = {
      name: 'impatient',
      description: 'receivers too slow for the time the run allows',
      clients: { senders: 1, receivers: 1 },
      workload: { messages: { min: 5, max: 20 }, processMs: 100 },
      options: { faultPhaseMs: 0, settleMs: 200, livenessBoundMs: 50 },
    };
    const file = join(directory, 'impatient.json');
    await writeFile(file, JSON.stringify(scenario));
    const failures = join(directory, 'failures');
    const result = await nasq(['check', '--scenario', file, '--seeds', '3', '--seed', '5', '--failures', failures]);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/FAILED \(liveness\)/);
    const replayLine = /replay: (npx nasq replay (\S+))/.exec(result.stdout);
    expect(replayLine).not.toBeNull();
    const record = JSON.parse(await readFile(replayLine![2]!, 'utf8')) as { traceHash: string; config: { messages: number } };
    expect(record.config.messages).toBe(5); // shrunk to the smallest allowed
    const replayed = await nasq(['replay', replayLine![2]!]);
    expect(replayed.code).toBe(3);
    expect(replayed.stdout).toContain(`same trace hash ${record.traceHash}`);

    // The file says which build wrote it, so a replay that gives another trace can say why.
    const written = JSON.parse(await readFile(replayLine![2]!, 'utf8')) as { build: { fingerprint: string; node: string } };
    expect(written.build.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(written.build.node).toBe(process.version);
    const replayOf = async (name: string, change: (record: Record<string, unknown>) => void) => {
      const copy = JSON.parse(await readFile(replayLine![2]!, 'utf8')) as Record<string, unknown>;
      copy.traceHash = '0123456789abcdef';
      change(copy);
      const path = join(directory, name);
      await writeFile(path, JSON.stringify(copy));
      return nasq(['replay', path, '--json']);
    };
    // The same build, another trace: the simulation is not deterministic, exit 1 whatever the verdict.
    const same = await replayOf('same-build.json', () => {});
    expect(same.code).toBe(1);
    expect(JSON.parse(same.stdout)).toMatchObject({ verdict: 'invalid', replay: { sameHash: false, build: 'same', nondeterministic: true, recordedTraceHash: '0123456789abcdef' } });
    const sameText = await nasq(['replay', join(directory, 'same-build.json')]);
    expect(sameText.stdout).toMatch(/differs from the recorded 0123456789abcdef with the same build \([0-9a-f]{16}, Node\.js v[\d.]+\): the simulation is not deterministic/);
    // Another build: a changed trace is no surprise; the run's own verdict decides the exit code.
    const changed = await replayOf('other-build.json', (copy) => {
      copy.build = { fingerprint: 'ffffffffffffffff', node: process.version };
    });
    expect(changed.code).toBe(3);
    expect(JSON.parse(changed.stdout)).toMatchObject({ replay: { build: 'code-changed', nondeterministic: false } });
    const otherNode = await replayOf('other-node.json', (copy) => {
      copy.build = { ...written.build, node: 'v18.0.0' };
    });
    expect(otherNode.code).toBe(3);
    expect(JSON.parse(otherNode.stdout)).toMatchObject({ replay: { build: 'node-changed', nondeterministic: false } });
    const old = await replayOf('no-build.json', (copy) => {
      delete copy.build;
    });
    expect(old.code).toBe(3);
    expect(JSON.parse(old.stdout)).toMatchObject({ replay: { build: 'unknown', recordedBuild: null } });
  });

  it('rejects an unknown scenario, a malformed scenario file and bad options with exit code 2', async () => {
    const unknown = await nasq(['check', '--scenario', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no scenario named "nope"; expected one of: all, smoke, contention/);

    const bad = join(directory, 'bad.json');
    await writeFile(bad, JSON.stringify({ name: 'Bad Name', description: 'x', clients: { senders: -1 }, workload: { messages: 'many' } }));
    const malformed = await nasq(['check', '--scenario', bad]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/name: a name of lowercase letters/);
    expect(malformed.stderr).toMatch(/clients\.receivers/);
    expect(malformed.stderr).toMatch(/workload\.messages: .*\(found "many"\)/);

    const mistyped = join(directory, 'mistyped-target.json');
    const faults = [{ kind: 'crash', atMs: 10, target: 'any-clinet' }];
    await writeFile(mistyped, JSON.stringify({ name: 'typo', description: 'x', clients: { senders: 1, receivers: 1 }, workload: { messages: 3 }, nemesis: { faults } }));
    const typo = await nasq(['check', '--scenario', mistyped]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/nemesis\.faults\.0\.target: expected any-client, .*lock-holder, server or a client name like sender-0 or receiver-2 \(found "any-clinet"\)/);

    const notJson = join(directory, 'broken.json');
    await writeFile(notJson, '{ "name": ');
    expect((await nasq(['check', '--scenario', notJson])).stderr).toMatch(/is not valid JSON/);

    const zeroSeeds = await nasq(['check', '--seeds', '0']);
    expect(zeroSeeds.code).toBe(2);
    expect(zeroSeeds.stderr).toMatch(/--seeds: expected an integer from 1 to .*got 0/);

    const determinism = await nasq(['check', '--determinism', '0']);
    expect(determinism.code).toBe(2);
    expect(determinism.stderr).toMatch(/--determinism: expected an integer from 1 to .*got 0/);

    const budget = await nasq(['check', '--time-budget', 'soon']);
    expect(budget.code).toBe(2);
    expect(budget.stderr).toMatch(/--time-budget: expected a duration like 500ms/);

    expect((await nasq(['chek'])).code).toBe(2);
  });

  it('says what was typed for a mistyped command, an unknown option and a number that is not one (exit code 2)', async () => {
    const command = await nasq(['chek']);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('unknown command "chek"; did you mean check?');
    const option = await nasq(['check', '--sedes', '3']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('unknown option --sedes');
    const number = await nasq(['check', '--seeds', 'abc']);
    expect(number.code).toBe(2);
    expect(number.stderr).toContain('--seeds: expected a number, got "abc"');
  });

  it('lists the scenarios', async () => {
    const result = await nasq(['scenarios', '--json']);
    const listing = JSON.parse(result.stdout) as { scenarios: Array<{ name: string }> };
    expect(listing.scenarios.map((scenario) => scenario.name)).toEqual(
      expect.arrayContaining(['smoke', 'contention', 'thundering-herd', 'crash-while-locked', 'lease-expiry', 'controller-failover', 'raid-degraded-rebuild', 'raid-double-failure', 'partition', 'clock-skew', 'lost-notify', 'full-queue', 'swarm']),
    );
  });

  it('runs one seed verbosely and writes its trace', async () => {
    const trace = join(directory, 'trace.txt');
    const result = await nasq(['run', 'smoke', '--seed', '4', '--trace', trace]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/smoke seed 4: valid/);
    expect(await readFile(trace, 'utf8')).toMatch(/^#0 /);
  });
});

describe('nasq queue', () => {
  it('inits, sends, receives, acks and reports the header fields', async () => {
    const queue = join(directory, 'orders');
    expect((await nasq(['queue', 'init', queue, '--slots', '8'])).code).toBe(0);
    const sent = JSON.parse((await nasq(['queue', 'send', queue, '--body', 'ship 42', '--json'])).stdout) as { id: string };
    expect(sent.id).toMatch(/^\d+-\d+$/);
    expect((await nasq(['queue', 'send', queue, '--deliver-at', '+1h'], { input: 'later' })).code).toBe(0);
    const stat = JSON.parse((await nasq(['queue', 'stat', queue, '--json'])).stdout) as Record<string, number>;
    expect(stat).toMatchObject({ emptyCount: 6, pendingCount: 0, totalSlots: 8, unreadCount: 2, firstUnreadOffset: 16384 });
    expect(Object.keys(stat)).toEqual(expect.arrayContaining(['firstEmptyOffset', 'firstUnreadPriority']));
    const received = JSON.parse((await nasq(['queue', 'recv', queue, '--json'])).stdout) as Record<string, unknown>;
    expect(received).toMatchObject({ id: sent.id, body: 'ship 42', deliveryCount: 1 });
    expect(typeof received['deliverAt']).toBe('string');
    expect(JSON.parse((await nasq(['queue', 'recv', queue, '--json'])).stdout)).toBeNull();
    expect((await nasq(['queue', 'ack', queue, String(received['receipt'])])).code).toBe(0);
    const again = await nasq(['queue', 'ack', queue, String(received['receipt'])]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/LEASE_LOST/);
    expect((await nasq(['queue', 'fsck', queue])).stdout).toMatch(/^clean: 1 messages/);
  });

  it('fsck --repair moves an old orphan body to the dead letters and leaves a young one alone, saying so; dead lists it, requeue sends it back', async () => {
    const queue = join(directory, 'orphans');
    expect((await nasq(['queue', 'init', queue, '--slots', '8'])).code).toBe(0);
    await writeFile(join(queue, 'msg', '77-1'), 'an old orphan');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(join(queue, 'msg', '77-1'), old, old);
    await writeFile(join(queue, 'msg', '77-2'), 'a young orphan');
    const repair = await nasq(['queue', 'fsck', queue, '--repair', '--orphan-grace', '10m']);
    expect(repair.code).toBe(0);
    expect(repair.stdout).toContain('orphan body moved to the dead letters: 77-1');
    expect(repair.stdout).toContain('left alone: orphan body 77-2, younger than --orphan-grace 10m');
    expect(await readFile(join(queue, 'dead', '77-1'), 'utf8')).toBe('an old orphan');
    expect(await readFile(join(queue, 'msg', '77-2'), 'utf8')).toBe('a young orphan');
    // The operator lists the dead letters and sends the orphan back into the queue.
    const dead = await nasq(['queue', 'dead', queue, '--json']);
    expect(JSON.parse(dead.stdout)).toEqual([expect.objectContaining({ id: '77-1', reason: 'orphan', bodyLength: 13 })]);
    const requeue = await nasq(['queue', 'requeue', queue, '77-1', '--json']);
    expect(requeue.code).toBe(0);
    const requeued = JSON.parse(requeue.stdout) as { id: string };
    const received = JSON.parse((await nasq(['queue', 'recv', queue, '--json'])).stdout) as { id: string; body: string };
    expect(received).toMatchObject({ id: requeued.id, body: 'an old orphan' });
    expect((await nasq(['queue', 'dead', queue])).stdout.trim()).toBe('no dead letters');
    const again = await nasq(['queue', 'requeue', queue, '77-1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no dead letter 77-1');
  });

  it('gives clear errors and exit code 2 for wrong arguments', async () => {
    const queue = join(directory, 'args');
    expect((await nasq(['queue', 'init', queue, '--slots', 'many'])).code).toBe(2);
    await nasq(['queue', 'init', queue]);
    const deliverAt = await nasq(['queue', 'send', queue, '--body', 'x', '--deliver-at', 'tomorrow']);
    expect(deliverAt.code).toBe(2);
    expect(deliverAt.stderr).toMatch(/--deliver-at: expected an ISO 8601 time/);
    const wait = await nasq(['queue', 'recv', queue, '--wait', 'forever']);
    expect(wait.code).toBe(2);
    expect((await nasq(['queue', 'recv', join(directory, 'missing')])).stderr).toMatch(/is not a nasq queue/);
    const both = await nasq(['queue', 'send', queue, '--body', 'x', '--file', 'y']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/mutually exclusive/);
  });
});

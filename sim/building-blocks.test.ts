/**
 * The simulator's small parts alone: the event heap, the named random streams, the trace, path
 * normalization, and the inspection hooks of the server.
 */

import { describe, expect, it } from 'vitest';
import { type EventHandler, EventQueue, SimEvent } from './event-queue.js';
import { Call, Operation } from './protocol.js';
import { RandomStream, RandomStreams } from './random.js';
import { normalizePath } from './server.js';
import { at, bytes, testSimulation, text } from './test-support/harness.js';
import { Trace, TraceKind } from './trace.js';

const nobody: EventHandler = { handleEvent: () => undefined };

describe('EventQueue', () => {
  it('pops by time, then by order, and removes from anywhere', () => {
    const queue = new EventQueue();
    const random = new RandomStream(7, 'heap-test');
    const events: SimEvent[] = [];
    for (let index = 0; index < 2000; index += 1) {
      const event = new SimEvent(nobody, 0, index);
      event.timeMs = random.integer(100);
      event.order = index;
      queue.push(event);
      events.push(event);
    }
    queue.checkInvariants();
    const removed = new Set<SimEvent>();
    for (let index = 0; index < 500; index += 1) {
      const victim = events[random.integer(events.length)]!;
      if (queue.remove(victim)) removed.add(victim);
      expect(victim.scheduled).toBe(false);
    }
    queue.checkInvariants();
    const popped: SimEvent[] = [];
    for (let event = queue.pop(); event !== undefined; event = queue.pop()) popped.push(event);
    expect(popped.length).toBe(2000 - removed.size);
    for (let index = 1; index < popped.length; index += 1) {
      const previous = popped[index - 1]!;
      const current = popped[index]!;
      expect(previous.timeMs < current.timeMs || (previous.timeMs === current.timeMs && previous.order < current.order)).toBe(true);
    }
  });
});

describe('EventQueue far events', () => {
  it('come out in the same order as from a heap that holds everything, through removals and pushes', () => {
    const random = new RandomStream(11, 'far-test');
    // Horizon 5 ms: most events here are far; the other queue keeps every event in its heap.
    const nearOnly = new EventQueue(Number.POSITIVE_INFINITY);
    const withFar = new EventQueue(5);
    const live: [SimEvent, SimEvent][] = [];
    let nowMs = 0;
    let order = 0;
    let farSeen = 0;
    const schedule = (timeMs: number): void => {
      const pair: [SimEvent, SimEvent] = [new SimEvent(nobody, 0, order), new SimEvent(nobody, 0, order)];
      for (const event of pair) {
        event.timeMs = timeMs;
        event.order = order;
      }
      order += 1;
      nearOnly.push(pair[0]);
      withFar.push(pair[1]);
      if (timeMs > nowMs + 5) farSeen += 1;
      live.push(pair);
    };
    for (let index = 0; index < 300; index += 1) schedule(random.integer(4) === 0 ? random.integer(2000) : random.integer(3));
    for (let step = 0; step < 3000 && nearOnly.size > 0; step += 1) {
      const choice = random.integer(10);
      if (choice < 2 && live.length > 0) {
        // Cancel a random event in both queues (a near one or a far one).
        const [position] = [random.integer(live.length)];
        const [a, b] = live[position]!;
        expect(withFar.remove(b)).toBe(nearOnly.remove(a));
        expect(b.scheduled).toBe(false);
        live.splice(position, 1);
      } else if (choice < 5) {
        schedule(nowMs + (random.integer(3) === 0 ? random.integer(500) : random.uniform(0, 2)));
      } else {
        const a = nearOnly.pop()!;
        const b = withFar.pop()!;
        expect(b.subject).toBe(a.subject);
        expect(b.scheduled).toBe(false);
        nowMs = a.timeMs;
        const position = live.findIndex(([event]) => event === a);
        live.splice(position, 1);
      }
      expect(withFar.size).toBe(nearOnly.size);
      if (step % 100 === 0) withFar.checkInvariants();
    }
    expect(farSeen).toBeGreaterThan(100);
    const rest = (queue: EventQueue): unknown[] => {
      const subjects: unknown[] = [];
      for (let event = queue.pop(); event !== undefined; event = queue.pop()) subjects.push(event.subject);
      return subjects;
    };
    expect(rest(withFar)).toEqual(rest(nearOnly));
  });
});

describe('Call', () => {
  it('is, once reused, field for field a fresh call (a field added later must be reset too)', () => {
    const owner = { serverCompleted: () => undefined };
    const used = new Call(Operation.write, owner, 'old session');
    let counter = 1;
    // Give every field some other value than a fresh call has.
    for (const key of Object.keys(used) as (keyof Call)[]) {
      if (key === 'owner') continue;
      const value = used[key];
      (used as unknown as Record<string, unknown>)[key] =
        typeof value === 'number' ? (counter += 1) : typeof value === 'string' ? `text-${(counter += 1)}` : typeof value === 'boolean' ? !value : { marker: (counter += 1) };
    }
    used.reuse(Operation.lock, 'new session');
    expect({ ...used }).toEqual({ ...new Call(Operation.lock, owner, 'new session') });
  });
});

describe('RandomStreams', () => {
  it('derives each stream from the seed and its name only', () => {
    const alone = new RandomStreams(99).stream('client/a/latency');
    const crowded = new RandomStreams(99);
    crowded.stream('server');
    crowded.stream('fault/raid').next();
    const same = crowded.stream('client/a/latency');
    const fromAlone = Array.from({ length: 10 }, () => alone.next());
    const fromCrowded = Array.from({ length: 10 }, () => same.next());
    expect(fromCrowded).toEqual(fromAlone);
    expect(new RandomStreams(100).stream('client/a/latency').next()).not.toBe(fromAlone[0]);
    expect(crowded.stream('client/a/latency')).toBe(same);
  });

  it('draws within bounds', () => {
    const random = new RandomStream('s', 'bounds');
    for (let draw = 0; draw < 1000; draw += 1) {
      const integer = random.integer(7);
      expect(integer >= 0 && integer < 7 && Number.isInteger(integer)).toBe(true);
      const uniform = random.uniform(2, 3);
      expect(uniform >= 2 && uniform < 3).toBe(true);
      expect(random.lognormal(1, 0.5)).toBeGreaterThan(0);
    }
    expect(() => new RandomStreams('')).toThrow(/non-empty string/);
  });
});

describe('Trace', () => {
  const fill = (trace: Trace, count: number, salt = 0): void => {
    for (let index = 0; index < count; index += 1) {
      trace.record(index * 0.5, TraceKind.apply, index % 3, 4, 0, index ^ salt, index, 8, 'kernel');
    }
  };

  it('hashes the same records the same way and different ones differently', () => {
    const first = new Trace();
    const second = new Trace({ windowSize: 3 });
    const third = new Trace();
    fill(first, 100);
    fill(second, 100);
    fill(third, 100, 1);
    expect(second.hash()).toBe(first.hash());
    expect(third.hash()).not.toBe(first.hash());
    expect(first.hash()).toMatch(/^[0-9a-f]{16}$/);
  });

  it('keeps only a window of the latest records, and streams every record to a sink', () => {
    const lines: string[] = [];
    const trace = new Trace({ windowSize: 4, sink: { write: (line) => lines.push(line) } });
    fill(trace, 10);
    expect(trace.count).toBe(10);
    expect(trace.window().map((record) => record.index)).toEqual([6, 7, 8, 9]);
    expect(trace.window(2).map((record) => record.index)).toEqual([8, 9]);
    expect(lines).toHaveLength(10);
    expect(lines[9]).toBe(trace.format(1));
    expect(lines[9]).toMatch(/^#9 4\.500000ms apply client-0 4 kernel @9\+8 -> 0 \[/);
    expect(() => new Trace({ windowSize: -1 })).toThrow(/windowSize/);
  });
});

describe('normalizePath', () => {
  it('keeps canonical paths as they are and cleans the rest', () => {
    expect(normalizePath('queue/kernel')).toBe('queue/kernel');
    expect(normalizePath('/queue//./kernel/')).toBe('queue/kernel');
    expect(normalizePath('.')).toBe('');
    expect(normalizePath('')).toBe('');
    expect(normalizePath('.hidden/x')).toBe('.hidden/x');
    expect(normalizePath('queue/../etc')).toBeNull();
    expect(normalizePath('queue\\kernel')).toBeNull();
  });
});

describe('inspection', () => {
  it('calls a write hook after every change of a file, with the whole contents', async () => {
    const simulation = testSimulation();
    const seen: string[] = [];
    const stop = simulation.server.onWrite('queue/kernel', (event) => {
      seen.push(`${event.client} ${event.operation} @${event.position}+${event.length}: ${text(event.contents)}`);
    });
    simulation.addClient('writer', async ({ fs, clock }) => {
      await fs.mkdir('queue');
      const handle = await fs.open('queue/kernel', { create: true });
      await fs.write(handle, 0, bytes('abc'));
      await fs.write(handle, 1, bytes('XY'));
      await fs.truncate(handle, 2);
      await fs.writeFile('queue/kernel', bytes('whole'));
      await fs.writeFile('queue/other', bytes('not watched'));
      await at(clock, 10);
      await fs.write(handle, 0, bytes('late'));
    });
    simulation.at(5, () => stop());
    await simulation.run();
    expect(seen).toEqual([
      'writer write @0+3: abc',
      'writer write @1+2: aXY',
      'writer truncate @2+0: aX',
      'writer writeFile @0+5: whole',
    ]);
  });

  it('lists files, contents, locks, waiters, sessions and disconnected handles at any instant', async () => {
    const simulation = testSimulation();
    let snapshot: unknown;
    simulation.addClient('a', async ({ fs, clock }) => {
      await fs.mkdir('queue');
      const handle = await fs.open('queue/kernel', { create: true, durable: true });
      await fs.write(handle, 0, bytes('header'));
      await fs.lock(handle, { offset: 0, length: 8 });
      await at(clock, 100);
    });
    simulation.addClient('b', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('queue/kernel');
      await fs.lock(handle, { offset: 0, length: 8 }, { mode: 'shared', waitMs: 1000 });
    });
    simulation.at(10, (sim) => {
      const server = sim.server;
      server.checkInvariants();
      snapshot = {
        files: server.files().map((file) => `${file.path}:${file.isDirectory ? 'dir' : file.size}`),
        kernel: text(server.contents('queue/kernel')),
        locks: server.locks().map((lock) => `${lock.client} open ${lock.openId} ${lock.mode} ${lock.offset}+${lock.length}`),
        waiters: server.lockWaiters().map((lock) => `${lock.client} ${lock.mode}`),
        sessions: server.sessionList().map((session) => `${session.client}:${session.opens.length}`),
      };
    });
    simulation.at(20, (sim) => sim.dropSession('a'));
    let disconnected: unknown;
    simulation.at(30, (sim) => {
      disconnected = sim.server.disconnectedHandles();
      sim.server.checkInvariants();
    });
    await simulation.run();
    expect(snapshot).toEqual({
      files: ['queue:dir', 'queue/kernel:6'],
      kernel: 'header',
      locks: ['a open 1 exclusive 0+8'],
      waiters: ['b shared'],
      sessions: ['a:1', 'b:1'],
    });
    expect(disconnected).toEqual([{ openId: 1, path: 'queue/kernel', client: 'a', locks: 1 }]);
  });
});

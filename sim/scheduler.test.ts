/**
 * The scheduler's rules, seen from clients: one client runs at a time, from one port call to the
 * next; no macrotask per event; a client that waits on something other than a port call, makes two
 * calls at once or leaves a call unawaited fails the run with its name; deadlocks are reported;
 * runs stop at time, event and quiescence bounds; clocks can be moved.
 */

import { describe, expect, it } from 'vitest';
import { type Host, nodeHost } from '../adapters/host.js';
import { at, bytes, elapsed, expectCode, testSimulation } from './test-support/harness.js';
import { Simulation } from './simulation.js';

describe('stepping', () => {
  it('runs exactly one client at a time, even across non-port microtasks', async () => {
    const simulation = testSimulation({ latency: { oneWayMs: 0.1, jitterMs: 0.1 } });
    let current = '';
    let switches = 0;
    for (let index = 0; index < 16; index += 1) {
      simulation.addClient(`client-${index}`, async ({ fs }, context) => {
        const handle = await fs.open(`file-${index % 3}`, { create: true });
        for (let step = 0; step < 50; step += 1) {
          await fs.write(handle, step, bytes('x'));
          if (current !== context.name) switches += 1;
          current = context.name;
          // Plain microtasks between port calls: nobody else may run meanwhile.
          await Promise.resolve();
          await (async () => undefined)();
          await new Promise<void>((resolve) => queueMicrotask(resolve));
          expect(current).toBe(context.name);
        }
      });
    }
    const { stats } = await simulation.run();
    expect(stats.clients.finished).toBe(16);
    expect(switches).toBeGreaterThan(100);
  });

  it('pays no macrotask per event: the host gets one turn per eventsPerHostTurn events', async () => {
    let turns = 0;
    const countingHost: Host = {
      nextTurn(callback) {
        turns += 1;
        nodeHost.nextTurn(callback);
      },
      wallClockMs: () => nodeHost.wallClockMs(),
    };
    const simulation = testSimulation({ host: countingHost, eventsPerHostTurn: 1000 });
    for (let index = 0; index < 8; index += 1) {
      simulation.addClient(`client-${index}`, async ({ fs }) => {
        const handle = await fs.open('f', { create: true });
        for (let step = 0; step < 500; step += 1) await fs.read(handle, 0, 1);
      });
    }
    const { stats } = await simulation.run();
    expect(stats.events).toBeGreaterThan(8000);
    expect(turns).toBeLessThanOrEqual(Math.ceil(stats.events / 1000) + 1);
  });

  it('runs without a host at all (no yields, no stall detection)', async () => {
    const simulation = testSimulation({ host: null });
    simulation.addClient('client', async ({ fs }) => {
      await fs.writeFile('f', bytes('x'));
      return 'done';
    });
    await simulation.run();
    expect(simulation.client('client').result).toBe('done');
  });
});

describe('misbehaving clients fail the run with their name', () => {
  it('a client waiting on a macrotask (a timer, real I/O: not a port call)', async () => {
    const simulation = testSimulation();
    simulation.addClient('sleepy', async ({ fs }) => {
      await fs.writeFile('f', bytes('x'));
      // (sim/ itself names no timer API: the host hook stands in for one.)
      await new Promise<void>((resolve) => nodeHost.nextTurn(resolve));
      await fs.writeFile('f', bytes('y'));
    });
    await expect(simulation.run()).rejects.toThrow(/client "sleepy" is waiting on something that is not a port call/);
  });

  it('a client waiting on a promise nobody settles', async () => {
    const simulation = testSimulation();
    simulation.addClient('stuck', async () => {
      await new Promise(() => {});
    });
    await expect(simulation.run()).rejects.toThrow(/client "stuck" is waiting/);
  });

  it('two concurrent port calls of one client', async () => {
    const simulation = testSimulation();
    simulation.addClient('greedy', async ({ fs }) => {
      await fs.writeFile('f', bytes('x'));
      await Promise.all([fs.readFile('f'), fs.readFile('f')]);
    });
    await expect(simulation.run()).rejects.toThrow(/"greedy"/);
  });

  it('a port call left unawaited, then another call', async () => {
    const simulation = testSimulation();
    simulation.addClient('sloppy', async ({ fs, clock }) => {
      await fs.writeFile('f', bytes('x'));
      void fs.readFile('f');
      await clock.sleepUntil(clock.now() + 10);
    });
    await expect(simulation.run()).rejects.toThrow(/client "sloppy" made a port call outside its turn/);
  });

  it('a port call left unawaited when main returns (while another client runs)', async () => {
    const simulation = testSimulation();
    simulation.addClient('sloppy', async ({ fs }) => {
      void fs.readFile('f');
    });
    simulation.addClient('busy', async ({ clock }) => {
      await clock.sleepUntil(clock.now() + 0.05);
      await clock.sleepUntil(clock.now() + 10);
    });
    await expect(simulation.run()).rejects.toThrow(/client "sloppy" settled outside its turn/);
  });

  it('a client that throws (clientErrors: fail-run, the default)', async () => {
    const simulation = testSimulation();
    simulation.addClient('thrower', async ({ fs }) => {
      await fs.readFile('missing');
    });
    await expect(simulation.run()).rejects.toThrow(/client "thrower" failed: NOT_FOUND/);
  });

  it("clientErrors: 'record' keeps the run going and keeps the error", async () => {
    const simulation = testSimulation({ clientErrors: 'record' });
    simulation.addClient('thrower', async ({ fs }) => {
      await fs.readFile('missing');
    });
    simulation.addClient('fine', async ({ fs }) => fs.writeFile('f', bytes('x')));
    const { stats } = await simulation.run();
    expect(stats.clients).toMatchObject({ failed: 1, finished: 1 });
    expect(simulation.client('thrower').status).toBe('failed');
    expect(String(simulation.client('thrower').error)).toMatch(/NOT_FOUND/);
  });

  it('a deadlock: every client waits and no event is left', async () => {
    const simulation = testSimulation();
    const forever = { waitMs: Number.POSITIVE_INFINITY };
    simulation.addClient('left', async ({ fs, clock }) => {
      const handle = await fs.open('f', { create: true });
      await fs.lock(handle, { offset: 0, length: 1 });
      await at(clock, 10);
      await fs.lock(handle, { offset: 1, length: 1 }, forever);
    });
    simulation.addClient('right', async ({ fs, clock }) => {
      await at(clock, 1);
      const handle = await fs.open('f');
      await fs.lock(handle, { offset: 1, length: 1 });
      await at(clock, 10);
      await fs.lock(handle, { offset: 0, length: 1 }, forever);
    });
    await expect(simulation.run()).rejects.toThrow(/deadlock at 10\.\d+ ms[^]*left: waiting for lock f \(waiting at the server\)[^]*right: waiting for lock f/);
  });

  it('controls may not be called from client code', async () => {
    const simulation = testSimulation();
    simulation.addClient('meddler', async () => {
      simulation.crash('meddler');
    });
    await expect(simulation.run()).rejects.toThrow(/cannot be called from a client's code/);
  });
});

describe('run bounds', () => {
  it('stops at untilMs and resumes where it stopped', async () => {
    const simulation = testSimulation();
    simulation.addClient('ticker', async ({ clock }) => {
      for (let tick = 1; tick <= 10; tick += 1) await at(clock, tick * 100);
    });
    const first = await simulation.run({ untilMs: 350 });
    expect(first.reason).toBe('time-limit');
    expect(first.stats.simulatedMs).toBe(350);
    expect(first.stats.clockOps).toBe(4);
    const second = await simulation.run();
    expect(second.reason).toBe('finished');
    expect(second.stats.simulatedMs).toBe(1000);
  });

  it('stops after maxEvents', async () => {
    const simulation = testSimulation();
    simulation.addClient('ticker', async ({ clock }) => {
      for (let tick = 1; tick <= 10; tick += 1) await at(clock, tick);
    });
    const result = await simulation.run({ maxEvents: 5 });
    expect(result.reason).toBe('event-limit');
    expect(result.stats.events).toBe(5);
  });

  it("'finished' stops when clients are done; 'quiescent' also drains the server's timers", async () => {
    const simulation = testSimulation({ server: { durableTimeoutMs: 5000 } });
    simulation.addClient('crasher', async ({ fs, clock }) => {
      await fs.open('f', { create: true, durable: true });
      await at(clock, 100);
    });
    simulation.at(10, (sim) => sim.crash('crasher'));
    const finished = await simulation.run();
    expect(finished.reason).toBe('finished');
    expect(finished.stats.simulatedMs).toBe(10);
    expect(simulation.server.disconnectedHandles()).toHaveLength(1);
    const quiescent = await simulation.run({ until: 'quiescent' });
    expect(quiescent.reason).toBe('quiescent');
    expect(quiescent.stats.simulatedMs).toBe(5010);
    expect(simulation.server.disconnectedHandles()).toHaveLength(0);
  });

  it('rejects bad options naming what was expected and what was given', () => {
    expect(() => new Simulation({ seed: -1 })).toThrow(/seed: expected a non-negative safe integer or a non-empty string, got -1/);
    expect(() => new Simulation({ seed: 1, actimeoMs: -5 })).toThrow(/actimeoMs: expected a finite number of ms >= 0, got -5/);
    expect(() => new Simulation({ seed: 1, server: { timestampGranularityMs: 0 } })).toThrow(/timestampGranularityMs/);
    expect(() => new Simulation({ seed: 1, tieBreak: 'random' as never })).toThrow(/tieBreak: expected 'seeded' or 'sequence', got "random"/);
    expect(() => new Simulation({ seed: 1, latency: { oneWayMs: 1, jitter: 2 } as never })).toThrow(/unknown option "jitter"/);
    expect(() => new Simulation({ seed: 1, bogus: true } as never)).toThrow(/unknown option "bogus"/);
    const simulation = testSimulation();
    expect(() => simulation.addClient('', async () => undefined)).toThrow(/non-empty name/);
    simulation.addClient('a', async () => undefined);
    expect(() => simulation.addClient('a', async () => undefined)).toThrow(/exists/);
  });
});

describe('client clocks', () => {
  it("a client's clock offset shows in now() and moves its pending sleep", async () => {
    const simulation = testSimulation();
    let wokeAtVirtualMs = 0;
    simulation.addClient('skewed', async ({ clock }) => {
      expect(elapsed(clock)).toBe(500);
      // Sleep until its own clock reads 1500 (virtual 1000)...
      await at(clock, 1500);
      wokeAtVirtualMs = simulation.nowMs;
    }, { clockOffsetMs: 500 });
    // ...but at virtual 200 its clock jumps back to the server's: it now wakes at virtual 1500.
    simulation.at(200, (sim) => sim.setClockOffset('skewed', 0));
    await simulation.run();
    expect(wokeAtVirtualMs).toBe(1500);
  });

  it('a lock bound runs on the client clock: a clock jump forward ends the wait early', async () => {
    const simulation = testSimulation();
    simulation.addClient('holder', async ({ fs, clock }) => {
      const handle = await fs.open('f', { create: true });
      await fs.lock(handle, { offset: 0, length: 1 });
      await at(clock, 10_000);
    });
    simulation.addClient('waiter', async ({ fs, clock }) => {
      await at(clock, 5);
      const handle = await fs.open('f');
      await expectCode(fs.lock(handle, { offset: 0, length: 1 }, { waitMs: 5000 }), 'LOCK_NOT_GRANTED');
      expect(simulation.nowMs).toBeLessThan(1000);
    });
    simulation.at(100, (sim) => sim.setClockOffset('waiter', 10_000));
    await simulation.run();
  });
});

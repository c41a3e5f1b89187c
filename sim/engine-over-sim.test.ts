/**
 * The engine runs unchanged over the simulated share: several virtual clients send, receive and
 * ack on one queue; every message is delivered and acked exactly once, and the kernel file can be
 * watched after every write. (The engine's model-based suite over the simulator comes with the
 * engine-over-sim work; this is the smoke test that the seam holds.)
 */

import { describe, expect, it } from 'vitest';
import type { Clock } from '../engine/ports.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import { testSimulation } from './test-support/harness.js';

describe('engine over the simulator', () => {
  it('8 clients send, receive and ack: every message acked exactly once, deterministically', async () => {
    const runOnce = async (seed: number) => {
      const simulation = testSimulation({ seed, latency: { oneWayMs: 0.1, jitterMs: 0.2 }, clockResolutionMs: 1 });
      const messagesPerClient = 25;
      const received = new Map<string, number>();
      let kernelWrites = 0;
      simulation.server.onWrite('q/kernel', () => {
        kernelWrites += 1;
      });
      simulation.addClient('creator', async (ports) => {
        await createQueue(ports, 'q', { slots: 64 });
      });
      for (let index = 0; index < 8; index += 1) {
        simulation.addClient(
          `client-${index}`,
          async (ports) => {
            const client = await QueueClient.open(ports, 'q', { lockWaitMs: 60_000 });
            let sent = 0;
            let acked = 0;
            while (acked < messagesPerClient) {
              if (sent < messagesPerClient) {
                await client.send(`${index}:${sent}`);
                sent += 1;
              }
              const delivery = await client.receive({ waitMs: 50 });
              if (delivery === null) continue;
              const body = new TextDecoder().decode(delivery.body);
              received.set(body, (received.get(body) ?? 0) + 1);
              await client.ack(delivery.receipt);
              acked += 1;
            }
            await client.close();
          },
          { startAtMs: 5 },
        );
      }
      const { stats } = await simulation.run();
      return { stats, received, kernelWrites };
    };
    const first = await runOnce(11);
    expect(first.stats.clients).toMatchObject({ finished: 9, failed: 0 });
    expect(first.received.size).toBe(8 * 25);
    expect([...first.received.values()].every((count) => count === 1)).toBe(true);
    expect(first.kernelWrites).toBeGreaterThan(200);
    const second = await runOnce(11);
    expect(second.stats.traceHash).toBe(first.stats.traceHash);
  });
});

describe('a receiver waiting on the notification file', () => {
  it('is woken by a send that lands between opening its watch and its first wait (SMB arms a watch with its first request)', async () => {
    // A receiver opens its watch, looks at the queue (one lock cycle), then waits; this one is
    // slow to wait (5 ms, as after a pause). A ring that lands in between is not reported by a
    // watch no request has armed yet (Samba, docs/conformance.md), and the receiver would sleep
    // until its poll, 5 s here: unless the watch is armed when it is opened. Sends every 0.5 ms
    // across the receiver's first 10 ms; each must be received within 50 ms.
    const late: string[] = [];
    for (let offsetHalves = 0; offsetHalves <= 20; offsetHalves += 1) {
      const sendAtMs = 100 + offsetHalves / 2;
      const simulation = testSimulation({ seed: 1, clockResolutionMs: 0 });
      simulation.addClient('creator', async (ports) => {
        await createQueue(ports, 'q', { slots: 64 });
      });
      let receivedAtMs = Number.NaN;
      simulation.addClient(
        'receiver',
        async ({ fs, clock }) => {
          const slowToWait: Clock = {
            now: () => clock.now(),
            sleepUntil: (timeMs) => clock.sleepUntil(timeMs),
            waitForChange: async (watch, untilMs) => {
              await clock.sleepUntil(clock.now() + 5);
              return clock.waitForChange(watch, untilMs);
            },
          };
          const client = await QueueClient.open({ fs, clock: slowToWait }, 'q', { pollIntervalMs: 5_000 });
          await clock.sleepUntil(clock.now() + (100 - simulation.nowMs));
          const delivery = await client.receive({ waitMs: 20_000 });
          receivedAtMs = simulation.nowMs;
          expect(delivery).not.toBeNull();
          await client.close();
        },
        { startAtMs: 20 },
      );
      simulation.addClient(
        'sender',
        async ({ fs, clock }) => {
          const client = await QueueClient.open({ fs, clock }, 'q');
          await clock.sleepUntil(clock.now() + (sendAtMs - simulation.nowMs));
          await client.send('wake up', { deliverAt: Math.floor(clock.now()) });
          await client.close();
        },
        { startAtMs: 20 },
      );
      await simulation.run();
      if (!(receivedAtMs - sendAtMs < 50)) late.push(`sent at ${sendAtMs} ms, received at ${receivedAtMs.toFixed(1)} ms`);
    }
    expect(late).toEqual([]);
  });
});

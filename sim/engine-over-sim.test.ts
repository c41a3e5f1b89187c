/**
 * The engine runs unchanged over the simulated share: several virtual clients send, receive and
 * ack on one queue; every message is delivered and acked exactly once, and the kernel file can be
 * watched after every write. (The engine's model-based suite over the simulator comes with the
 * engine-over-sim work; this is the smoke test that the seam holds.)
 */

import { describe, expect, it } from 'vitest';
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

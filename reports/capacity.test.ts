import { describe, expect, it } from 'vitest';
import { CapacityUsageError, parseWhatIf, runCapacity, type CapacityResult } from './capacity.js';

const clock = (): number => performance.now();

/** A result without its wall times (those differ between equal runs). */
function withoutWall(result: CapacityResult): unknown {
  return JSON.parse(JSON.stringify(result, (key, value: unknown) => (key === 'wallMs' ? 0 : value)));
}

describe('capacity sweep', () => {
  it('rises with clients until the header lock saturates, at the bound one over its hold time', async () => {
    const options = { profiles: ['lan-nvram'], clients: [1, 2, 4, 8, 16], durationMs: 1_500, whatIf: [parseWhatIf('disk-failure')] };
    const result = await runCapacity(options, clock);
    expect(result.series.map((series) => series.whatIf)).toEqual(['healthy', 'disk-failure']);
    const [healthy, degraded] = result.series as [(typeof result.series)[0], (typeof result.series)[0]];
    const throughput = healthy.points.map((point) => point.messagesPerSecond);
    // One client leaves the lock idle half the time (its own round trips); two nearly double it.
    expect(healthy.points[0]!.lock.busyFraction).toBeLessThan(0.7);
    expect(throughput[1]!).toBeGreaterThan(1.5 * throughput[0]!);
    // From 4 clients on the lock is never idle: throughput is the bound, 1 / hold, exactly.
    for (const point of healthy.points.slice(2)) {
      expect(point.lock.busyFraction).toBeGreaterThan(0.99);
      expect(point.cyclesPerSecond / point.boundCyclesPerSecond).toBeGreaterThan(0.97);
      expect(point.cyclesPerSecond / point.boundCyclesPerSecond).toBeLessThan(1.03);
    }
    // Unbatched, a message takes three cycles: send, receive, ack.
    expect(healthy.plateau.messagesPerCycle).toBeGreaterThan(0.3);
    expect(healthy.plateau.messagesPerCycle).toBeLessThan(0.34);
    expect(healthy.plateau.messagesPerSecond).toBe(Math.max(...throughput));
    expect(healthy.bound.plateauShare).toBeGreaterThan(0.97);
    expect(healthy.bound.plateauShare).toBeLessThan(1.03);
    // The knee comes before or at the peak, and latency grows past it.
    expect(healthy.knee!.clients).toBeLessThanOrEqual(healthy.plateau.clients);
    expect(healthy.points.at(-1)!.latency.p50Ms).toBeGreaterThan(3 * healthy.points[0]!.latency.p50Ms);
    // A failed disk slows the storage calls inside the lock: longer holds, less throughput.
    expect(degraded.bound.holdMs).toBeGreaterThan(healthy.bound.holdMs * 1.1);
    expect(degraded.plateau.messagesPerSecond).toBeLessThan(healthy.plateau.messagesPerSecond * 0.92);
    for (const point of [...healthy.points, ...degraded.points]) expect(point.failedCalls).toBe(0);
  });

  it('is deterministic, and a paced load is carried until the lock saturates', async () => {
    const options = { profiles: ['lan-hdd-raid6'], clients: [3], durationMs: 4_000, batch: 4, ratePerClient: 50, seed: 9 };
    const first = await runCapacity(options, clock);
    const second = await runCapacity(options, clock);
    expect(withoutWall(second)).toEqual(withoutWall(first));
    const paced = first.series[0]!.points[0]!;
    // Three clients offer 50 msg/s each in batches of 4: all of it goes through, with the lock often idle.
    expect(paced.sentPerSecond).toBeGreaterThan(150 * 0.85);
    expect(paced.sentPerSecond).toBeLessThan(150 * 1.15);
    expect(paced.messagesPerCycle).toBeGreaterThan(1.2); // 4 messages per 3 cycles
    expect(paced.lock.busyFraction).toBeLessThan(0.6);
    // Offered 8 times as much, they get what the lock allows: far less than offered.
    const flooded = (await runCapacity({ ...options, ratePerClient: 400 }, clock)).series[0]!.points[0]!;
    expect(flooded.sentPerSecond).toBeGreaterThan(paced.sentPerSecond * 1.4);
    expect(flooded.sentPerSecond).toBeLessThan(1200 * 0.5);
    expect(flooded.lock.busyFraction).toBeGreaterThan(0.8);
  });

  it('big bodies on a slow shared link: latency grows by the transfer time, and other transfers stretch the lock hold', async () => {
    const base = { profiles: ['wan-branch'], clients: [1, 8], durationMs: 20_000, bodyBytes: 500_000 };
    const free = (await runCapacity(base, clock)).series[0]!;
    const linked = (await runCapacity({ ...base, linkMBps: 5 }, clock)).series[0]!;
    expect(linked.points[0]!.failedCalls + linked.points[1]!.failedCalls).toBe(0);
    // One client: a send carries 500 kB up (100 ms at 5 MB/s), a receive brings it back (100 ms).
    const [alone, crowd] = linked.points as [(typeof linked.points)[0], (typeof linked.points)[0]];
    expect(alone.endToEnd.p50Ms - free.points[0]!.endToEnd.p50Ms).toBeGreaterThan(150);
    // Eight clients: the header read of the lock holder waits behind bodies on the shared link.
    expect(crowd.lock.holdMeanMs).toBeGreaterThan(free.points[1]!.lock.holdMeanMs * 1.08);
    expect(crowd.messagesPerSecond).toBeLessThan(free.points[1]!.messagesPerSecond);
  });

  it('parses what-if faults, with presets and parameters, and rejects unknown ones', () => {
    const degraded = parseWhatIf('disk-failure');
    expect(degraded.faults).toHaveLength(1);
    expect(degraded.faults[0]).toMatchObject({ kind: 'disk-failure', target: 'server', atMs: 0, durationMs: 0 });
    expect(degraded.faults[0]!.parameters['spareAfterMs']).toBeGreaterThan(1e6);
    expect(parseWhatIf('rebuild').faults[0]!.parameters['spareAfterMs']).toBe(0);
    const combined = parseWhatIf('disk-failure:disk=3+delay-notify:delayMs=250');
    expect(combined.faults.map((fault) => [fault.kind, fault.target])).toEqual([
      ['disk-failure', 'server'],
      ['delay-notify', 'all-clients'],
    ]);
    expect(combined.faults[0]!.parameters['disk']).toBe(3);
    expect(combined.faults[1]!.parameters['delayMs']).toBe(250);
    expect(parseWhatIf('failover:at=2000,for=5000').faults[0]).toMatchObject({ kind: 'failover', target: 'server', atMs: 2_000, durationMs: 5_000 });
    expect(() => parseWhatIf('failover:at=-1')).toThrow(/at takes ms >= 0/);
    expect(() => parseWhatIf('meteor')).toThrow(CapacityUsageError);
    expect(() => parseWhatIf('meteor')).toThrow(/unknown fault "meteor"; expected disk-failure, rebuild, racing-waiters or a fault kind/);
    expect(() => parseWhatIf('disk-failure:disk')).toThrow(/expected name=value/);
  });

  it('racing-waiters: a share whose lock waiters race (no fault), alone or with faults; it costs the engine at 64 clients', async () => {
    expect(parseWhatIf('racing-waiters')).toEqual({ name: 'racing-waiters', faults: [], server: { randomLockWaiterOrder: true } });
    const both = parseWhatIf('racing-waiters+disk-failure');
    expect(both.server).toEqual({ randomLockWaiterOrder: true });
    expect(both.faults.map((fault) => fault.kind)).toEqual(['disk-failure']);
    expect(() => parseWhatIf('racing-waiters:x=1')).toThrow(/racing-waiters takes no parameters/);
    const result = await runCapacity({ profiles: ['lan-nvram'], clients: [64], durationMs: 3_000, whatIf: [parseWhatIf('racing-waiters')] }, () => 0);
    const [fair, racing] = result.series.map((series) => series.points[0]!);
    // Out-of-order grants cost this engine: the lock is held longer per cycle, and the tail of
    // lock waits grows (docs/reports.md).
    expect(racing!.lock.holdMeanMs).toBeGreaterThan(fair!.lock.holdMeanMs);
    expect(racing!.lock.waitP99Ms).toBeGreaterThan(2 * fair!.lock.waitP99Ms);
  });
});

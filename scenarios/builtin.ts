/**
 * The built-in scenarios. Each is data (see schema.ts): parameters given as ranges or choices are
 * drawn per seed, and shrink when a run fails.
 */

import type { ScenarioInput } from './schema.js';

export const builtinScenarios: ScenarioInput[] = [
  {
    name: 'smoke',
    description: 'a few senders and receivers, no faults: the engine works at all',
    clients: { senders: { min: 1, max: 3 }, receivers: { min: 1, max: 3 } },
    workload: { messages: { min: 10, max: 60 }, batch: [1, 1, 4], receiveBatch: [1, 2], delayedFraction: [0, 0.2], maxDelayMs: 2_000 },
    options: { faultPhaseMs: 2_000, settleMs: 60_000 },
  },
  {
    name: 'contention',
    description: '64 clients on one queue: every cycle waits for the header lock',
    clients: { senders: 32, receivers: 32 },
    workload: { messages: { min: 64, max: 160 }, sendIntervalMs: 2, processMs: 0.5, waitMs: 1_000 },
    queue: { slots: { min: 48, max: 128 }, journalSoftLimit: [8, 2, 20] },
    // Half the seeds on a share whose waiters race for the freed header lock (as Samba's may).
    options: { faultPhaseMs: 1_000, settleMs: 60_000, randomLockWaiterOrder: [false, true] },
  },
  {
    name: 'thundering-herd',
    description: 'many receivers asleep on an empty queue, woken together by each notification',
    clients: { senders: 1, receivers: { min: 8, max: 24 } },
    workload: { messages: { min: 10, max: 40 }, sendIntervalMs: { min: 50, max: 400 }, waitMs: 5_000, processMs: 2 },
    queue: { pollIntervalMs: 5_000 },
    options: { faultPhaseMs: 2_000, settleMs: 120_000, livenessBoundMs: 30_000 },
  },
  {
    name: 'crash-while-locked',
    description: 'clients crash at any instant, often inside a lock cycle, and restart: leases and fencing recover',
    clients: { senders: { min: 2, max: 4 }, receivers: { min: 2, max: 4 } },
    workload: { messages: { min: 20, max: 80 }, processMs: 3 },
    queue: { leaseMs: { min: 300, max: 2_000 } },
    nemesis: {
      faults: [
        { kind: 'crash', atMs: { min: 0, max: 800 }, target: 'any-client', parameters: { restartAfterMs: { min: 0, max: 500 } } },
        { kind: 'crash', atMs: { min: 0, max: 800 }, target: 'any-receiver', parameters: { restartAfterMs: { min: 0, max: 500 } } },
        { kind: 'crash', atMs: { min: 200, max: 1_500 }, target: 'any-client', parameters: { restartAfterMs: { min: 0, max: 500 } } },
        { kind: 'crash', atMs: { min: 200, max: 1_500 }, target: 'any-sender', parameters: { restartAfterMs: { min: 0, max: 500 } } },
        // Whoever holds the header lock then (or takes it next): a crash inside a lock cycle.
        { kind: 'crash', atMs: { min: 0, max: 1_500 }, target: 'lock-holder', parameters: { restartAfterMs: { min: 0, max: 500 } } },
      ],
    },
    options: { faultPhaseMs: 2_000, settleMs: 60_000 },
  },
  {
    name: 'lease-expiry',
    description: 'receivers work longer than their lease, or stop the world: messages are taken over and the late acks are fenced off',
    clients: { senders: { min: 1, max: 2 }, receivers: { min: 2, max: 4 } },
    workload: { messages: { min: 10, max: 40 }, processMs: { min: 100, max: 400 }, releaseFraction: [0, 0.1] },
    queue: { leaseMs: { min: 150, max: 500 }, maximumDeliveries: 100 },
    nemesis: {
      faults: [{ kind: 'pause', atMs: { min: 0, max: 1_000 }, durationMs: { min: 500, max: 3_000 }, target: 'any-receiver' }],
    },
    options: { faultPhaseMs: 3_000, settleMs: 120_000 },
  },
  {
    name: 'controller-failover',
    description: 'the NAS controller fails over: calls stall, sessions drop and locks go unless handles are persistent',
    clients: { senders: 2, receivers: 2 },
    workload: { messages: { min: 20, max: 60 } },
    queue: { durable: true, durableHandles: [false, true] },
    nemesis: {
      faults: [{ kind: 'failover', atMs: { min: 100, max: 1_500 }, durationMs: { min: 1_000, max: 8_000 }, target: 'server' }],
    },
    options: { faultPhaseMs: 10_000, settleMs: 120_000 },
  },
  {
    name: 'raid-degraded-rebuild',
    description: 'a disk of the RAID-6 array fails and the array rebuilds, slowly, under load',
    clients: { senders: 2, receivers: 2 },
    workload: { messages: { min: 20, max: 60 } },
    latency: 'lan-hdd-raid6',
    nemesis: {
      faults: [{ kind: 'disk-failure', atMs: { min: 0, max: 500 }, target: 'server', parameters: { disk: { min: 0, max: 5 } } }],
    },
    options: { faultPhaseMs: 3_000, settleMs: 120_000 },
  },
  {
    name: 'raid-double-failure',
    description: 'two disks of a RAID-5 array fail: the array is lost, and the checkers say so instead of blaming the engine',
    clients: { senders: 2, receivers: 2 },
    workload: { messages: { min: 20, max: 60 }, sendIntervalMs: 20 },
    latency: 'lan-hdd-raid6',
    nemesis: {
      faults: [
        { kind: 'disk-failure', atMs: { min: 0, max: 300 }, target: 'server', parameters: { disk: 0, level: 5 } },
        { kind: 'disk-failure', atMs: { min: 300, max: 900 }, target: 'server', parameters: { disk: 1, level: 5 } },
      ],
    },
    options: { faultPhaseMs: 2_000, settleMs: 60_000 },
  },
  {
    name: 'partition',
    description: 'a client is cut off from the NAS: its calls hang, its session is dropped and its locks released while it still believes it holds them',
    clients: { senders: 2, receivers: { min: 2, max: 3 } },
    workload: { messages: { min: 20, max: 60 } },
    queue: { leaseMs: 1_000 },
    nemesis: {
      faults: [
        { kind: 'partition', atMs: { min: 0, max: 1_000 }, durationMs: { min: 500, max: 5_000 }, target: 'any-client' },
        // Cut off while holding the header lock, for longer than the server waits for it: the lock
        // goes with the session while the holder still believes it holds it.
        {
          kind: 'partition',
          atMs: { min: 0, max: 1_000 },
          durationMs: { min: 1_000, max: 5_000 },
          target: 'lock-holder',
          parameters: { sessionTimeoutMs: { min: 200, max: 900 } },
        },
      ],
    },
    options: { faultPhaseMs: 6_000, settleMs: 120_000 },
  },
  {
    name: 'session-drop',
    description: 'the NAS drops client sessions (network blips): opens close and locks go while the clients still believe they hold them',
    clients: { senders: 2, receivers: 2 },
    workload: { messages: { min: 20, max: 60 } },
    queue: { leaseMs: 1_000 },
    nemesis: {
      faults: [
        { kind: 'session-drop', atMs: { min: 0, max: 500 }, target: 'any-client' },
        { kind: 'session-drop', atMs: { min: 0, max: 800 }, target: 'any-client' },
        { kind: 'session-drop', atMs: { min: 100, max: 1_200 }, target: 'any-client' },
        // The holder of the header lock loses it while it still believes it holds it.
        { kind: 'session-drop', atMs: { min: 0, max: 1_200 }, target: 'lock-holder' },
      ],
    },
    options: { faultPhaseMs: 2_000, settleMs: 60_000 },
  },
  {
    name: 'clock-skew',
    description: 'client clocks disagree and jump: delivery times and leases are judged within the skew bound',
    clients: { senders: 2, receivers: 2 },
    workload: { messages: { min: 20, max: 60 }, delayedFraction: 0.3, maxDelayMs: 2_000, processMs: 20 },
    queue: { leaseMs: 3_000 },
    nemesis: {
      faults: [
        { kind: 'clock-skew', atMs: 0, target: 'any-receiver', parameters: { offsetMs: { min: -400, max: 400 } } },
        { kind: 'clock-skew', atMs: { min: 0, max: 500 }, target: 'any-sender', parameters: { offsetMs: { min: -400, max: 400 } } },
        { kind: 'clock-jump', atMs: { min: 200, max: 1_500 }, target: 'any-client', parameters: { jumpMs: { min: -500, max: 500 } } },
      ],
    },
    options: { faultPhaseMs: 3_000, settleMs: 60_000, skewBoundMs: 1_000 },
  },
  {
    name: 'lost-notify',
    description: 'notifications are lost or late: receivers fall back to polling and still get every message within the bound',
    clients: { senders: 1, receivers: { min: 2, max: 4 } },
    workload: { messages: { min: 10, max: 40 }, sendIntervalMs: 200, waitMs: 10_000 },
    queue: { pollIntervalMs: { min: 200, max: 2_000 } },
    nemesis: {
      faults: [
        { kind: 'lose-notify', atMs: 0, durationMs: { min: 1_000, max: 5_000 }, target: 'all-clients' },
        { kind: 'delay-notify', atMs: { min: 0, max: 2_000 }, durationMs: { min: 1_000, max: 5_000 }, target: 'any-receiver' },
      ],
    },
    options: { faultPhaseMs: 6_000, settleMs: 120_000 },
  },
  {
    name: 'full-queue',
    description: 'a queue with few slots and eager senders: sends fail with QUEUE_FULL, nothing is dropped silently',
    clients: { senders: { min: 2, max: 4 }, receivers: { min: 1, max: 2 } },
    workload: { messages: { min: 20, max: 60 }, sendIntervalMs: 0.5, processMs: 5, batch: [1, 3] },
    queue: { slots: { min: 2, max: 6 } },
    options: { faultPhaseMs: 2_000, settleMs: 120_000 },
  },
  {
    name: 'swarm',
    description: 'the whole fault configuration (which kinds, how many, when, how big) drawn from the seed',
    clients: { senders: { min: 1, max: 4 }, receivers: { min: 1, max: 4 } },
    // Sends spread over the fault phase (up to 60 x 120 ms), so faults meet senders as well as receivers.
    workload: {
      messages: { min: 10, max: 60 },
      batch: [1, 2],
      sendIntervalMs: { min: 5, max: 120 },
      delayedFraction: [0, 0.2],
      maxDelayMs: 1_000,
      releaseFraction: [0, 0.05],
    },
    queue: { leaseMs: { min: 300, max: 3_000 }, durable: [false, true], durableHandles: [false, true] },
    nemesis: { swarm: { maximumFaults: 6 } },
    // The share's rules drawn too: Samba's durable-handle rule, waiters that race for the lock.
    options: { faultPhaseMs: 4_000, settleMs: 180_000, skewBoundMs: 2_000, durableLocksNeedSoleOpen: [false, true], randomLockWaiterOrder: [false, true] },
  },
];

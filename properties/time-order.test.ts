/**
 * The checker's O(n log n) time-order (time-order.ts) gives the verdict of the property's plain,
 * quadratic definition (test-support/time-order-reference.ts) on random histories (sends ok / info / fail, delayed messages, receives ok / info
 * with first deliveries and redeliveries, receives that overlap and complete late), and it is
 * fast on a long one.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runCheckers } from './checkers.js';
import { History, type DeliveredMessage, type Operation, type Outcome } from './history.js';
import { timeOrderReference } from './test-support/time-order-reference.js';
import { timeOrder } from './time-order.js';

const observations = {
  kernelViolations: [],
  unlockedWrites: [],
  generationBreaks: [],
  remainingIds: new Set<string>(),
  deadIds: new Set<string>(),
  bodyIds: new Set<string>(),
  clientEvents: [],
  healAtMs: 0,
  endMs: 0,
  arrayLost: false,
  powerLossesMs: [],
};

interface Plan {
  readonly sends: Array<{ at: number; duration: number; outcome: Outcome; delay: number }>;
  readonly receives: Array<{ at: number; duration: number; outcome: Outcome; taken: Array<{ message: number; count: number; early: number }> }>;
  readonly skewMs: number;
}

const outcome = fc.constantFrom<Outcome>('ok', 'ok', 'ok', 'info', 'fail');

const plans: fc.Arbitrary<Plan> = fc.record({
  sends: fc.array(fc.record({ at: fc.integer({ min: 0, max: 40 }), duration: fc.integer({ min: 0, max: 8 }), outcome, delay: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30 })) }), { minLength: 1, maxLength: 12 }),
  receives: fc.array(
    fc.record({
      at: fc.integer({ min: 0, max: 60 }),
      duration: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 })),
      outcome: fc.constantFrom<Outcome>('ok', 'ok', 'ok', 'info'),
      taken: fc.array(fc.record({ message: fc.nat(11), count: fc.constantFrom(1, 1, 1, 2), early: fc.constantFrom(0, 0, 0, 15) }), { maxLength: 3 }),
    }),
    { maxLength: 12 },
  ),
  skewMs: fc.constantFrom(0, 2, 5),
});

function historyOf(plan: Plan): History {
  const drafts: Array<Omit<Operation, 'index'>> = [];
  const sent = plan.sends.map((send, message) => ({ id: `1-${message}`, deliverAt: send.at + send.delay, send }));
  for (const [message, { id, deliverAt, send }] of sent.entries()) {
    drafts.push({
      client: 'sender',
      incarnation: 0,
      kind: 'send',
      invokeMs: send.at,
      invokeClockMs: send.at,
      invokeTrace: 0,
      sends: [{ id: send.outcome === 'ok' ? id : undefined, body: `body-${message}`, deliverAt }],
      outcome: send.outcome,
      completeMs: send.at + send.duration,
      completeClockMs: send.at + send.duration,
      completeTrace: 0,
    });
  }
  for (const [index, receive] of plan.receives.entries()) {
    const deliveries: DeliveredMessage[] = [];
    for (const taken of receive.taken) {
      const message = sent[taken.message % sent.length]!;
      if (deliveries.some((delivery) => delivery.id === message.id)) continue;
      deliveries.push({ id: message.id, body: `body-${taken.message % sent.length}`, deliverAt: message.deliverAt + taken.early, deliveryCount: taken.count, leaseToken: index, leaseExpiry: 0 });
    }
    drafts.push({
      client: `receiver-${index % 3}`,
      incarnation: 0,
      kind: 'receive',
      invokeMs: receive.at,
      invokeClockMs: receive.at,
      invokeTrace: 0,
      ...(receive.outcome === 'ok' ? { deliveries } : {}),
      outcome: receive.outcome,
      completeMs: receive.at + receive.duration,
      completeClockMs: receive.at + receive.duration,
      completeTrace: 0,
    });
  }
  // A history is in invocation order.
  drafts.sort((a, b) => a.invokeMs - b.invokeMs);
  const history = new History({ nowMs: () => 0, tracePosition: () => 0 });
  for (const [index, draft] of drafts.entries()) history.operations.push({ ...draft, index });
  return history;
}

describe('time-order in O(n log n)', () => {
  it('gives the verdict of the plain definition on random histories, and is the checkers’ time-order', () => {
    let invalid = 0;
    fc.assert(
      fc.property(plans, (plan) => {
        const history = historyOf(plan);
        const config = { skewBoundMs: plan.skewMs, livenessBoundMs: 1_000, durable: false };
        const expected = timeOrderReference(history, config);
        const actual = timeOrder(history, config);
        if (expected.validity === 'invalid') invalid += 1;
        expect(actual.validity, `${expected.problems.join('; ')}\nvs\n${actual.explanation}`).toBe(expected.validity);
        const [checked] = runCheckers({ history, observations, config }, ['time-order']);
        expect(checked).toEqual(actual);
      }),
      { numRuns: 3_000, seed: 9 },
    );
    // The random histories do break the property, often: both sides are really compared.
    expect(invalid).toBeGreaterThan(300);
  });

  it('judges 100,000 messages (valid in order; one overtaking at the end found)', () => {
    const history = new History({ nowMs: () => 0, tracePosition: () => 0 });
    const messages = 100_000;
    for (let message = 0; message < messages; message += 1) {
      const at = message * 2;
      history.operations.push({ index: history.operations.length, client: 'a', incarnation: 0, kind: 'send', invokeMs: at, invokeClockMs: at, invokeTrace: 0, sends: [{ id: `1-${message}`, body: `b${message}`, deliverAt: at }], outcome: 'ok', completeMs: at + 1, completeClockMs: at + 1, completeTrace: 0 });
      // Taken in order, a little later: valid.
      history.operations.push({
        index: history.operations.length,
        client: 'b',
        incarnation: 0,
        kind: 'receive',
        invokeMs: at + 1.5,
        invokeClockMs: at + 1.5,
        invokeTrace: 0,
        deliveries: [{ id: `1-${message}`, body: `b${message}`, deliverAt: at, deliveryCount: 1, leaseToken: message, leaseExpiry: 0 }],
        outcome: 'ok',
        completeMs: at + 1.8,
        completeClockMs: at + 1.8,
        completeTrace: 0,
      });
    }
    expect(timeOrder(history, { skewBoundMs: 0 }).validity).toBe('valid');
    // A last receive takes a message due later while an earlier due one, sent before, waits.
    const end = messages * 2;
    const send = (id: string, deliverAt: number): void => {
      history.operations.push({ index: history.operations.length, client: 'a', incarnation: 0, kind: 'send', invokeMs: end, invokeClockMs: end, invokeTrace: 0, sends: [{ id, body: id, deliverAt }], outcome: 'ok', completeMs: end + 1, completeClockMs: end + 1, completeTrace: 0 });
    };
    send('1-early', end);
    send('1-late', end + 50);
    history.operations.push({
      index: history.operations.length,
      client: 'b',
      incarnation: 0,
      kind: 'receive',
      invokeMs: end + 100,
      invokeClockMs: end + 100,
      invokeTrace: 0,
      deliveries: [{ id: '1-late', body: '1-late', deliverAt: end + 50, deliveryCount: 1, leaseToken: messages, leaseExpiry: 0 }],
      outcome: 'ok',
      completeMs: end + 101,
      completeClockMs: end + 101,
      completeTrace: 0,
    });
    const verdict = timeOrder(history, { skewBoundMs: 0 });
    expect(verdict.validity).toBe('invalid');
    expect(verdict.explanation).toContain('took 1-late');
  });
});

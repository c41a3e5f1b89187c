/**
 * The time-order property by its plain definition, one loop over the sends for every delivery
 * (quadratic): the oracle that properties/time-order.ts, the checker's O(n log n) sweep, is
 * tested against (time-order.test.ts). Not for long histories.
 *
 * 1. No message is delivered before its delivery time (receiver's clock, within the skew bound).
 * 2. A receive that took a message on its first delivery is wrong if another message, whose send
 *    completed before the receive was invoked, was surely ready, due clearly earlier (by more than
 *    twice the skew bound), and possibly taken by nobody by the receive's completion.
 */

import { facts, takenByTime, type CheckConfig, type Validity } from '../checkers.js';
import type { History } from '../history.js';

export function timeOrderReference(history: History, config: Pick<CheckConfig, 'skewBoundMs'>): { validity: Validity; problems: string[] } {
  const known = facts(history);
  const problems: string[] = [];
  for (const [id, deliveries] of known.deliveries) {
    for (const { operation, message } of deliveries) {
      if (operation.completeClockMs! + config.skewBoundMs < message.deliverAt) {
        problems.push(`${id} delivered at ${operation.completeClockMs} (receiver's clock), due at ${message.deliverAt}`);
      }
    }
  }
  const receives = history.operations.filter((operation) => operation.kind === 'receive' && operation.outcome === 'ok');
  const taken = takenByTime(history);
  const sends = [...known.okSends.entries()];
  for (const receive of receives) {
    for (const message of receive.deliveries ?? []) {
      if (message.deliveryCount > 1) continue; // a redelivery keeps its old priority; reclaim order is by lease
      for (const [otherId, other] of sends) {
        if (otherId === message.id) continue;
        if (other.operation.completeMs! >= receive.invokeMs) continue;
        if (other.deliverAt + 2 * config.skewBoundMs >= message.deliverAt) continue;
        if (other.deliverAt > receive.invokeClockMs - config.skewBoundMs) continue; // not surely ready
        if (taken(otherId, receive.completeMs!)) continue; // maybe taken meanwhile
        problems.push(`${receive.client} took ${message.id} (due ${message.deliverAt}) while ${otherId} (due ${other.deliverAt}) was ready and waiting`);
        break;
      }
    }
  }
  return { validity: problems.length > 0 ? 'invalid' : 'valid', problems };
}

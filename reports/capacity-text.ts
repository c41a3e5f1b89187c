/** Capacity results in words and table rows, shared by the HTML, Markdown, JUnit and terminal output. */

import type { CapacitySeries } from './capacity.js';

export function capacityRows(series: CapacitySeries): Array<Array<string | number>> {
  return series.points.map((point) => [
    point.clients,
    point.messagesPerSecond.toFixed(1),
    point.cyclesPerSecond.toFixed(0),
    point.latency.p50Ms.toFixed(2),
    point.latency.p99Ms.toFixed(2),
    point.lock.holdMeanMs.toFixed(3),
    (point.boundCyclesPerSecond * point.messagesPerCycle).toFixed(1),
    `${(point.lock.busyFraction * 100).toFixed(0)} %`,
    `${(point.measuredMs / 1000).toFixed(1)} s`,
    series.knee?.clients === point.clients ? 'knee' : series.plateau.clients === point.clients ? 'peak' : '',
  ]);
}

export const capacityHeaders = ['clients', 'msg/s', 'lock cycles/s', 'p50 ms', 'p99 ms', 'lock hold ms', 'bound msg/s', 'lock busy', 'measured', ''] as const;

export function capacityHeadline(series: CapacitySeries): string {
  const { bound, plateau, knee } = series;
  return (
    `${series.profile}, ${series.whatIf}: peak ${plateau.messagesPerSecond.toFixed(1)} msg/s (${plateau.cyclesPerSecond.toFixed(0)} lock cycles/s) at ${plateau.clients} clients; ` +
    `analytic bound 1 / hold = 1 / ${bound.holdMs.toFixed(3)} ms = ${bound.cyclesPerSecond.toFixed(0)} cycles/s = ${bound.messagesPerSecond.toFixed(1)} msg/s at ${plateau.messagesPerCycle.toFixed(3)} msg per cycle ` +
    `(peak = ${(bound.plateauShare * 100).toFixed(0)} % of it; uncontended hold ${bound.uncontendedHoldMs.toFixed(3)} ms = ${bound.uncontendedCyclesPerSecond.toFixed(0)} cycles/s); ` +
    `knee ${knee === undefined ? 'none' : `at ${knee.clients} clients (${knee.messagesPerSecond.toFixed(1)} msg/s, p50 ${knee.p50Ms.toFixed(2)} ms)`}`
  );
}


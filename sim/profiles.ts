/**
 * Named latency profiles of the simulated NAS. (A first cut: fixed delays with uniform jitter;
 * heavy-tailed profiles with server queueing, RAID and failover replace it.)
 */

import type { LatencyProfileSpecification } from '../properties/config.js';
import { FixedLatency, type LatencyModel } from './latency.js';

export const latencyProfileNames = ['lan-nvram', 'lan-hdd-raid6', 'wan-branch'] as const;

export function latencyModelFor(profile: string | LatencyProfileSpecification): LatencyModel {
  if (typeof profile !== 'string') {
    return new FixedLatency({ oneWayMs: profile.roundTripMs / 2, jitterMs: profile.roundTripMs / 4 });
  }
  switch (profile) {
    case 'lan-nvram':
      return new FixedLatency({ oneWayMs: 0.15, jitterMs: 0.1 });
    case 'lan-hdd-raid6':
      return new FixedLatency({ oneWayMs: 0.15, jitterMs: 0.1, serviceMs: { sync: 8, write: 0.5, writeFile: 1 } });
    case 'wan-branch':
      return new FixedLatency({ oneWayMs: 20, jitterMs: 10 });
    default:
      throw new TypeError(`latency profile ${JSON.stringify(profile)} is unknown; expected one of ${latencyProfileNames.join(', ')} or a profile object`);
  }
}

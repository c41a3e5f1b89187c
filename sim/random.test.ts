/**
 * RandomStream steps Alea itself (no closure call per draw): its numbers must stay exactly
 * seedrandom.alea's, or every recorded seed would replay differently.
 */

import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { RandomStream, streamSeed } from './random.js';

describe('RandomStream', () => {
  it('draws exactly what seedrandom.alea draws, for next and uint32 interleaved', () => {
    for (const [seed, name] of [[1, 'client/a/latency'], [42, 'scheduler/tiebreak'], ['text seed', 'x'], [2 ** 40, 'nemesis']] as const) {
      const stream = new RandomStream(seed, name);
      const reference = seedrandom.alea(streamSeed(seed, name));
      for (let draw = 0; draw < 5_000; draw += 1) {
        if (draw % 3 === 0) expect(stream.uint32()).toBe(reference.int32() >>> 0);
        else expect(stream.next()).toBe(reference());
      }
      expect(stream.draws).toBe(5_000);
    }
  });
});

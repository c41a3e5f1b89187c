import { describe, expect, it } from 'vitest';
import { CheckProgress, Progress, formatDuration, progressMode } from './progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 100, write: (text: string) => writes.push(text) } };
}

describe('progress', () => {
  it('draws a bar with the rate and the time left on a terminal, redrawn in place', () => {
    let nowMs = 0;
    const { writes, stream } = fakeStream(true);
    const progress = new Progress({ label: 'check', unit: 'runs', stream, now: () => nowMs });
    expect(progress.mode).toBe('bar');
    nowMs = 10_000;
    progress.update(50, 200, 'contention');
    const line = writes.at(-1)!;
    expect(line.startsWith('\r')).toBe(true);
    expect(line).not.toContain('\n');
    expect(line).toMatch(/^\rcheck \[#+-+\]\s+25%\s+50\/200 runs\s+5\.0 runs\/s\s+0:30 left\s+contention$/);
    // Too soon for a redraw.
    nowMs += 10;
    progress.update(51, 200);
    expect(writes).toHaveLength(1);
    // A result line: the bar goes away, the line prints, the bar comes back.
    const printed: string[] = [];
    progress.interrupt(() => printed.push('  smoke ok'));
    expect(printed).toEqual(['  smoke ok']);
    expect(writes.at(-2)).toMatch(/^\r +\r$/);
    expect(writes.at(-1)).toMatch(/^\rcheck \[/);
    progress.finish();
    expect(writes.at(-1)).toMatch(/^\r +\r$/);
    const count = writes.length;
    progress.update(200, 200);
    expect(writes).toHaveLength(count);
  });

  it('writes a plain line now and then when not on a terminal, and nothing when quiet', () => {
    let nowMs = 0;
    const { writes, stream } = fakeStream(false);
    const progress = new Progress({ label: 'capacity', unit: 'points', stream, now: () => nowMs, intervalMs: 15_000 });
    expect(progress.mode).toBe('lines');
    for (let done = 1; done <= 9; done += 1) {
      nowMs += 5_000;
      progress.update(done, 9, `lan-nvram healthy ${2 ** done} clients`);
    }
    expect(writes).toEqual([
      'capacity  33%  3/9 points  0.2 points/s  0:30 left  lan-nvram healthy 8 clients\n',
      'capacity  66%  6/9 points  0.2 points/s  0:15 left  lan-nvram healthy 64 clients\n',
      'capacity 100%  9/9 points  0.2 points/s  0:00 left  lan-nvram healthy 512 clients\n',
    ]);
    const quiet = fakeStream(true);
    const silent = new Progress({ label: 'check', unit: 'runs', stream: quiet.stream, mode: progressMode(quiet.stream, true), now: () => (nowMs += 20_000) });
    silent.update(1, 2);
    silent.interrupt(() => undefined);
    silent.finish();
    expect(quiet.writes).toEqual([]);
  });

  it('counts a check in runs, crediting the runs a failed scenario did not make; a budget caps the time left', () => {
    let nowMs = 0;
    const { writes, stream } = fakeStream(false);
    const progress = new Progress({ label: 'check', unit: 'runs', stream, now: () => nowMs, intervalMs: 1, budgetMs: 60_000 });
    const check = new CheckProgress(progress, 3, 20);
    nowMs = 1_000;
    check.onRun('smoke', 20);
    check.onScenarioDone('smoke');
    nowMs = 2_000;
    check.onRun('contention', 4);
    nowMs = 2_001;
    check.onShrink('contention', 7);
    expect(writes.at(-1)).toBe('check  40%  24/60 runs  12 runs/s  0:03 left  contention: shrinking a failure, step 7\n');
    check.onScenarioDone('contention');
    nowMs = 50_000;
    check.onRun('swarm', 1);
    expect(writes.at(-1)).toBe('check  68%  41/60 runs  0.8 runs/s  0:10 left  swarm\n');
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(65_000)).toBe('1:05');
    expect(formatDuration(3_723_000)).toBe('1:02:03');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('?');
  });
});

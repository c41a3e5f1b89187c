import { describe, expect, it } from 'vitest';
import { type RecordedRun, recordEngineRun, replayAnswers } from './engine-alone.js';

const clockWaits = new Set(['sleepUntil', 'waitForChange']);

describe('the engine alone (its recorded answers replayed at no cost)', () => {
  it('replays a recorded run call for call: every message acked once, the same file-system calls', async () => {
    const recorded = await recordEngineRun(7, 4, 40);
    const fileSystemAnswers = recorded.answers.filter((answer) => !clockWaits.has(answer.method)).length;
    expect(fileSystemAnswers).toBeGreaterThan(4 * 40);
    const first = await replayAnswers(recorded);
    expect(first.fsOps).toBe(fileSystemAnswers);
    // A recording can be replayed again (its answers are not consumed or changed).
    expect((await replayAnswers(recorded)).fsOps).toBe(fileSystemAnswers);
  });

  it('stops with what differs when the engine makes another call than the recorded one', async () => {
    const recorded = await recordEngineRun(7, 4, 40);
    const index = recorded.answers.findIndex((answer, at) => at > 100 && answer.method === 'unlock');
    const answers = recorded.answers.slice();
    answers[index] = { ...answers[index]!, method: 'stat' };
    const tampered: RecordedRun = { ...recorded, answers };
    await expect(replayAnswers(tampered)).rejects.toThrow(new RegExp(`answer ${index} was to stat, the replay called unlock`));
  });

  it('says it stalled when a client waits for an answer the recording does not have', async () => {
    const recorded = await recordEngineRun(7, 4, 40);
    const tampered: RecordedRun = { ...recorded, answers: recorded.answers.slice(0, -3) };
    await expect(replayAnswers(tampered)).rejects.toThrow(/stalled after \d+ of \d+ answers/);
  });
});

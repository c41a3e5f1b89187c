import { expect, it } from 'vitest';
import { memoryQueue } from './test-support/memory-queue.js';
import { kernelViolations } from './kernel-image.js';

it('smoke', async () => {
  const q = await memoryQueue();
  const c = await q.open();
  const id = await c.send('hello');
  const d = await c.receive();
  expect(d?.id).toBe(id);
  expect(new TextDecoder().decode(d!.body)).toBe('hello');
  await c.ack(d!.receipt);
  expect(await c.stat()).toMatchObject({ emptyCount: 16, unreadCount: 0, pendingCount: 0 });
  expect(kernelViolations(q.kernelBytes())).toEqual([]);
});

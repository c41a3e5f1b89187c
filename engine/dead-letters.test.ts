import { describe, expect, it } from 'vitest';
import { listDeadLetters, requeueDeadLetter } from './dead-letters.js';
import { poisonedQueue } from './test-support/memory-queue.js';

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('dead letters', () => {
  it('lists a dead letter with its reason, and requeues it as a new message that arrives once', async () => {
    const { queue, client, id } = await poisonedQueue();
    const letters = await listDeadLetters(queue.ports, 'q');
    expect(letters).toEqual([expect.objectContaining({ id, reason: 'too-many-deliveries', bodyLength: 6 })]);
    const newId = await requeueDeadLetter(client, queue.ports, 'q', id);
    expect(newId).not.toBe(id);
    expect(await listDeadLetters(queue.ports, 'q')).toEqual([]);
    expect(await queue.fs.readdir('q/dead')).toEqual([]);
    const delivery = await client.receive();
    expect(delivery).toMatchObject({ id: newId, deliveryCount: 1 });
    expect(text(delivery!.body)).toBe('poison');
    await client.ack(delivery!.receipt);
    expect(await client.receive()).toBeNull();
  });

  it('refuses what it cannot requeue, saying why, and changes nothing', async () => {
    const { queue, client, id } = await poisonedQueue();
    await expect(requeueDeadLetter(client, queue.ports, 'q', '9-9')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('no dead letter 9-9') });
    await expect(requeueDeadLetter(client, queue.ports, 'q', 'poison')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('expected CLIENT-SEQUENCE') });
    // A damaged body needs force; a missing one cannot be requeued at all.
    const record = JSON.parse(text(await queue.fs.readFile(`q/dead/${id}.json`))) as Record<string, unknown>;
    await queue.fs.writeFile(`q/dead/${id}.json`, new TextEncoder().encode(JSON.stringify({ ...record, reason: 'body-corrupt' })));
    await expect(requeueDeadLetter(client, queue.ports, 'q', id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('only with force') });
    expect((await listDeadLetters(queue.ports, 'q')).map((letter) => letter.id)).toEqual([id]);
    expect(await client.stat()).toMatchObject({ unreadCount: 0 });
    const forced = await requeueDeadLetter(client, queue.ports, 'q', id, { force: true });
    expect((await client.receive())!.id).toBe(forced);

    const second = await poisonedQueue();
    await second.queue.fs.unlink(`q/dead/${second.id}`);
    await expect(requeueDeadLetter(second.client, second.queue.ports, 'q', second.id)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('has no body') });
    expect(await listDeadLetters(second.queue.ports, 'q')).toEqual([expect.objectContaining({ id: second.id, bodyLength: undefined })]);
  });

  it('says which record is unreadable', async () => {
    const { queue, id } = await poisonedQueue();
    await queue.fs.writeFile(`q/dead/${id}.json`, new TextEncoder().encode('{not json'));
    await expect(listDeadLetters(queue.ports, 'q')).rejects.toMatchObject({ code: 'CORRUPT', message: expect.stringContaining(`dead letter ${id}: its record dead/${id}.json is not JSON`) });
  });
});

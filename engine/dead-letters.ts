/**
 * The dead-letter directory, for operators: list what is there and why, and send a dead letter
 * back into the queue.
 *
 * A dead letter is `dead/ID` (the body, when there was one) and `dead/ID.json` (why). They come
 * from receivers (a message delivered `maximumDeliveries` times, a body missing or not matching
 * its slot) and from `fsck --repair` (damaged bodies, and old orphan bodies: reason 'orphan').
 *
 * Requeue sends the body as a new message (a new id), then removes the dead letter: the message
 * is in the queue before the dead letter goes, so a crash loses nothing; a crash between the two
 * leaves the dead letter, and requeueing it again would send the body twice (the new id is
 * returned before the removal, for the operator's log).
 */

import type { BodyStore } from './bodies.js';
import { NasqError, isNasqError } from './errors.js';
import { messageIdOf, parseMessageId, type Slot } from './format.js';
import { deadLetterPaths, joinPath, queueLayout, readIfPresent, unlinkIfPresent } from './layout.js';
import type { FileSystem, Ports } from './ports.js';
import type { QueueClient, SendOptions } from './queue.js';

export interface DeadLetter {
  readonly id: string;
  /** Why it is here: 'too-many-deliveries', 'body-missing', 'body-corrupt', 'body-damaged' (fsck), 'orphan' (fsck). */
  readonly reason: string;
  /** When it was dead-lettered (ms since the epoch), if the record says. */
  readonly deadAt: number | undefined;
  /** Bytes of its body; undefined when there is no body file. */
  readonly bodyLength: number | undefined;
  /** The whole record of `dead/ID.json`, as written. */
  readonly record: Record<string, unknown>;
}

/** Reasons whose body is not the one its sender sent: requeue them only when forced. */
const untrustedBodyReasons = new Set(['body-corrupt', 'body-damaged']);

function encodeRecord(record: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(record)}\n`);
}

/**
 * Moves a message that leaves its slot (a receiver giving up on it, fsck dropping a damaged body)
 * to the dead letters, before the commit that frees the slot: the record first, then the body (a
 * rename, or a copy out of its bundle), each flushed when the queue is durable. Repeated after a
 * crash, it writes the same record and finds the body already moved.
 */
export async function deadLetterSlot(fs: FileSystem, directory: string, bodies: BodyStore, slot: Slot, reason: string, nowMs: number): Promise<void> {
  const id = messageIdOf(slot);
  const paths = deadLetterPaths(directory, id);
  const record = encodeRecord({ id, reason, deliverAt: slot.priority, sentAt: slot.sentAt, deliveryCount: slot.deliveryCount, deadAt: nowMs });
  await fs.writeFile(paths.record, record, { sync: bodies.isDurable });
  await bodies.moveOut(slot, paths.body);
}

/**
 * Keeps an orphan body (no slot refers to it) as dead letter `id`, reason 'orphan': the body
 * first, then the record, so that a listed dead letter has its body. Both are flushed: the caller
 * removes the orphan afterwards, and a power cut must not keep that removal and lose the copy. A
 * crash in between leaves both, and doing it again writes the same files.
 */
export async function deadLetterOrphan(fs: FileSystem, directory: string, id: string, body: Uint8Array, ageMs: number, nowMs: number): Promise<void> {
  const paths = deadLetterPaths(directory, id);
  await fs.writeFile(paths.body, body, { sync: true });
  await fs.writeFile(
    paths.record,
    encodeRecord({
      id,
      reason: 'orphan',
      explanation: 'a body no slot refers to: a send that died before linking it, or a message whose commit was rolled back by a damaged header copy',
      bodyWrittenAt: nowMs - ageMs,
      deadAt: nowMs,
    }),
    { sync: true },
  );
}

function parseRecord(id: string, bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new NasqError('CORRUPT', `dead letter ${id}: its record dead/${id}.json is not JSON`, { details: { id } });
  }
  if (typeof value !== 'object' || value === null || typeof (value as { reason?: unknown }).reason !== 'string') {
    throw new NasqError('CORRUPT', `dead letter ${id}: its record dead/${id}.json has no "reason" string`, { details: { id } });
  }
  return value as Record<string, unknown>;
}

async function readDeadLetter(ports: Ports, directory: string, id: string): Promise<DeadLetter | undefined> {
  const paths = deadLetterPaths(directory, id);
  const recordBytes = await readIfPresent(ports.fs, paths.record);
  if (recordBytes === undefined) return undefined;
  const record = parseRecord(id, recordBytes);
  let bodyLength: number | undefined;
  try {
    bodyLength = (await ports.fs.stat(paths.body)).size;
  } catch (error) {
    if (!isNasqError(error, 'NOT_FOUND')) throw error;
  }
  const deadAt = typeof record['deadAt'] === 'number' ? record['deadAt'] : undefined;
  return { id, reason: record['reason'] as string, deadAt, bodyLength, record };
}

/** Every dead letter of the queue in `directory`, oldest first (then by id). */
export async function listDeadLetters(ports: Ports, directory: string): Promise<DeadLetter[]> {
  const names = await ports.fs.readdir(joinPath(directory, queueLayout.dead));
  const letters: DeadLetter[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const id = name.slice(0, -'.json'.length);
    if (parseMessageId(id) === undefined) continue;
    const letter = await readDeadLetter(ports, directory, id);
    if (letter !== undefined) letters.push(letter);
  }
  return letters.sort((a, b) => (a.deadAt ?? 0) - (b.deadAt ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export interface RequeueOptions extends SendOptions {
  /** Requeue a body that did not match its slot (reasons body-corrupt, body-damaged). Default false. */
  readonly force?: boolean;
}

/**
 * Sends dead letter `id` back into the queue as a new message, then removes the dead letter.
 * Returns the new message id. NOT_FOUND if there is no such dead letter or it has no body;
 * INVALID_ARGUMENT for a body known to be damaged, unless forced.
 */
export async function requeueDeadLetter(client: QueueClient, ports: Ports, directory: string, id: string, options: RequeueOptions = {}): Promise<string> {
  if (parseMessageId(id) === undefined) throw new NasqError('INVALID_ARGUMENT', `dead letter id: expected CLIENT-SEQUENCE like 3-17, got ${JSON.stringify(id)}`);
  const letter = await readDeadLetter(ports, directory, id);
  if (letter === undefined) throw new NasqError('NOT_FOUND', `no dead letter ${id} (no dead/${id}.json)`, { details: { id } });
  const paths = deadLetterPaths(directory, id);
  const body = await readIfPresent(ports.fs, paths.body);
  if (body === undefined) throw new NasqError('NOT_FOUND', `dead letter ${id} has no body (reason ${letter.reason}): nothing to requeue`, { details: { id } });
  if (untrustedBodyReasons.has(letter.reason) && options.force !== true) {
    throw new NasqError(
      'INVALID_ARGUMENT',
      `dead letter ${id} was dead-lettered because its body did not match its checksum (reason ${letter.reason}): requeue it only with force, knowing the bytes may not be what was sent`,
      { details: { id } },
    );
  }
  const { force: _force, ...sendOptions } = options;
  const newId = await client.send(body, sendOptions);
  // The body first, the record last: a dead letter with a record and no body says "nothing to
  // requeue" (above), never sends an empty message.
  await unlinkIfPresent(ports.fs, paths.body);
  await unlinkIfPresent(ports.fs, paths.record);
  return newId;
}

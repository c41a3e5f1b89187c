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

import { NasqError, isNasqError } from './errors.js';
import { parseMessageId } from './format.js';
import type { Ports } from './ports.js';
import { joinPath, queueLayout, type QueueClient, type SendOptions } from './queue.js';

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

function recordPath(directory: string, id: string): string {
  return joinPath(directory, `${queueLayout.dead}/${id}.json`);
}

function bodyPath(directory: string, id: string): string {
  return joinPath(directory, `${queueLayout.dead}/${id}`);
}

async function readIfThere(ports: Ports, path: string): Promise<Uint8Array | undefined> {
  try {
    return await ports.fs.readFile(path);
  } catch (error) {
    if (isNasqError(error, 'NOT_FOUND')) return undefined;
    throw error;
  }
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
  const recordBytes = await readIfThere(ports, recordPath(directory, id));
  if (recordBytes === undefined) return undefined;
  const record = parseRecord(id, recordBytes);
  const body = await readIfThere(ports, bodyPath(directory, id));
  const deadAt = typeof record['deadAt'] === 'number' ? record['deadAt'] : undefined;
  return { id, reason: record['reason'] as string, deadAt, bodyLength: body?.length, record };
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
  const body = await readIfThere(ports, bodyPath(directory, id));
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
  for (const path of [bodyPath(directory, id), recordPath(directory, id)]) {
    try {
      await ports.fs.unlink(path);
    } catch (error) {
      if (!isNasqError(error, 'NOT_FOUND')) throw error;
    }
  }
  return newId;
}

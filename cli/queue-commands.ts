/**
 * `nasq queue ...`: the queue on a real directory (a local disk or a mounted share), through
 * NodeFileSystem (real byte-range locks) and the system clock.
 */

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { NodeFileSystem } from '../adapters/node-file-system.js';
import { SystemClock } from '../adapters/system-clock.js';
import { NasqError, isNasqError } from '../engine/errors.js';
import { maximumSlots } from '../engine/format.js';
import { listDeadLetters, requeueDeadLetter, type DeadLetter } from '../engine/dead-letters.js';
import { fsck } from '../engine/fsck.js';
import type { Ports } from '../engine/ports.js';
import { QueueClient, createQueue, formatReceipt, parseReceipt, type QueueOptions } from '../engine/queue.js';
import { UsageError, parseDeliverAt, parseDuration, parsePositiveInteger } from './durations.js';
import type { Output } from './output.js';

function portsFor(directory: string): Ports {
  return { fs: new NodeFileSystem(resolve(directory)), clock: new SystemClock() };
}

async function withClient<T>(directory: string, options: QueueOptions, work: (client: QueueClient) => Promise<T>): Promise<T> {
  let client: QueueClient;
  try {
    client = await QueueClient.open(portsFor(directory), '.', options);
  } catch (error) {
    if (isNasqError(error, 'NOT_A_QUEUE')) {
      throw new NasqError('NOT_A_QUEUE', `${directory} is not a nasq queue (no kernel file); create one with "nasq queue init ${directory}"`);
    }
    throw error;
  }
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

interface Common {
  dir: string;
  json: boolean;
  durable: boolean;
}

export function queueCommands(yargs: Argv, output: Output): Argv {
  const common = (command: Argv) =>
    command
      .positional('dir', { type: 'string', describe: 'queue directory', demandOption: true })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
      .option('durable', { type: 'boolean', default: false, describe: 'fsync before returning (see README: guarantees)' });

  return yargs
    .command(
      'init <dir>',
      'create a queue in DIR',
      (command) => common(command)
        .option('slots', { type: 'number', default: 1024, describe: 'number of slots (most messages at once)' })
        .option('max-deliveries', { type: 'number', default: 10, describe: 'deliveries before a message is dead-lettered' }),
      async (argv) => {
        const slots = parsePositiveInteger(argv.slots, '--slots', maximumSlots);
        const maximumDeliveries = parsePositiveInteger(argv['max-deliveries'], '--max-deliveries', 65_535);
        await createQueue(portsFor(argv.dir), '.', { slots, maximumDeliveries });
        output.result(argv.json, { directory: argv.dir, slots, maximumDeliveries }, `created queue ${argv.dir} with ${slots} slots`);
      },
    )
    .command(
      'send <dir>',
      'send a message (body from --body, --file, or standard input)',
      (command) => common(command)
        .option('body', { type: 'string', describe: 'message body text' })
        .option('file', { type: 'string', describe: 'read the body from this file' })
        .option('deliver-at', { type: 'string', describe: 'ISO 8601 time, or +DURATION (e.g. +5m)' })
        .conflicts('body', 'file'),
      async (argv) => {
        const body = argv.body !== undefined ? argv.body : argv.file !== undefined ? await readBodyFile(argv.file) : await readStandardInput();
        const args = argv as unknown as Common & { 'deliver-at'?: string };
        await withClient(args.dir, { durable: args.durable }, async (client) => {
          const deliverAt = args['deliver-at'] === undefined ? undefined : parseDeliverAt(args['deliver-at'], Date.now());
          const id = await client.send(body, deliverAt === undefined ? {} : { deliverAt });
          output.result(args.json, { id }, id);
        });
      },
    )
    .command(
      'recv <dir>',
      'receive one message (prints null / nothing if none arrived in time)',
      (command) => common(command)
        .option('wait', { type: 'string', default: '0', describe: 'wait up to this long, e.g. 10s' })
        .option('lease', { type: 'string', default: '30s', describe: 'lease before another receiver may take it' }),
      async (argv) => {
        const waitMs = parseDuration(argv.wait, '--wait');
        const leaseMs = parseDuration(argv.lease, '--lease');
        if (leaseMs <= 0) throw new UsageError(`--lease: expected a duration above zero, got ${JSON.stringify(argv.lease)}`);
        await withClient(argv.dir, { durable: argv.durable }, async (client) => {
          const delivery = await client.receive({ waitMs, leaseMs });
          if (delivery === null) {
            output.result(argv.json, null, '');
            return;
          }
          const text = new TextDecoder('utf-8', { fatal: false }).decode(delivery.body);
          output.result(
            argv.json,
            {
              id: delivery.id,
              body: text,
              deliverAt: new Date(delivery.deliverAt).toISOString(),
              deliveryCount: delivery.deliveryCount,
              receipt: formatReceipt(delivery.receipt),
            },
            `${delivery.id}\t${formatReceipt(delivery.receipt)}\n${text}`,
          );
        });
      },
    )
    .command(
      'ack <dir> <id>',
      'ack a message: ID is the receipt printed by recv (fenced), or the message id (its lease must be live)',
      (command) => common(command).positional('id', { type: 'string', demandOption: true }),
      async (argv) => {
        const id = String(argv.id);
        await withClient(argv.dir, { durable: argv.durable }, async (client) => {
          const receipt = parseReceipt(id);
          if (receipt !== undefined) await client.ack(receipt);
          else await client.ackById(id);
          output.result(argv.json, { acked: receipt?.id ?? id }, `acked ${receipt?.id ?? id}`);
        });
      },
    )
    .command(
      'release <dir> <id>',
      'give a message back for redelivery (ID: receipt or message id)',
      (command) => common(command)
        .positional('id', { type: 'string', demandOption: true })
        .option('delay', { type: 'string', default: '0', describe: 'redeliver no earlier than this from now' }),
      async (argv) => {
        const id = String(argv.id);
        const delayMs = parseDuration(argv.delay, '--delay');
        await withClient(argv.dir, { durable: argv.durable }, async (client) => {
          const receipt = parseReceipt(id);
          if (receipt !== undefined) await client.release(receipt, { delayMs });
          else await client.releaseById(id, { delayMs });
          output.result(argv.json, { released: receipt?.id ?? id }, `released ${receipt?.id ?? id}`);
        });
      },
    )
    .command(
      'dead <dir>',
      'list the dead letters: id, why, when, body size',
      (command) => common(command),
      async (argv) => {
        {
          // Read only: no client is opened (opening one commits a cycle to the kernel).
          let letters: DeadLetter[];
          try {
            letters = await listDeadLetters(portsFor(argv.dir), '.');
          } catch (error) {
            if (isNasqError(error, 'NOT_FOUND')) throw new NasqError('NOT_A_QUEUE', `${argv.dir} is not a nasq queue (no dead-letter directory)`);
            throw error;
          }
          const lines = letters.map(
            (letter) =>
              `${letter.id}\t${letter.reason}\t${letter.deadAt === undefined ? '-' : new Date(letter.deadAt).toISOString()}\t${letter.bodyLength === undefined ? 'no body' : `${letter.bodyLength} bytes`}`,
          );
          output.result(argv.json, letters, lines.length === 0 ? 'no dead letters' : lines.join('\n'));
        }
      },
    )
    .command(
      'requeue <dir> <id>',
      'send a dead letter back into the queue as a new message (prints the new id), then remove it',
      (command) => common(command)
        .positional('id', { type: 'string', demandOption: true })
        .option('deliver-at', { type: 'string', describe: 'ISO time or +DURATION (default: now)' })
        .option('force', { type: 'boolean', default: false, describe: 'also requeue a body that did not match its checksum' }),
      async (argv) => {
        const id = String(argv.id);
        const deliverAt = argv['deliver-at'] === undefined ? undefined : parseDeliverAt(argv['deliver-at'], Date.now());
        await withClient(argv.dir, { durable: argv.durable }, async (client) => {
          const newId = await requeueDeadLetter(client, portsFor(argv.dir), '.', id, { force: argv.force, ...(deliverAt === undefined ? {} : { deliverAt }) });
          output.result(argv.json, { requeued: id, id: newId }, `requeued ${id} as ${newId}`);
        });
      },
    )
    .command(
      'stat <dir>',
      'print the header: counts, offsets and the head priority (claim 5)',
      (command) => common(command),
      async (argv) => {
        await withClient(argv.dir, {}, async (client) => {
          const stat = await client.stat();
          const summary = [
            `slots ${stat.totalSlots}: ${stat.emptyCount} empty, ${stat.unreadCount} unread, ${stat.pendingCount} pending`,
            `first unread at ${stat.firstUnreadOffset}${stat.unreadCount > 0 ? ` (due ${new Date(stat.firstUnreadPriority).toISOString()})` : ''}`,
            `first empty at ${stat.firstEmptyOffset}`,
            `generation ${stat.generation}, dead letters ${stat.deadCount}`,
          ].join('\n');
          output.result(argv.json, stat, summary);
        });
      },
    )
    .command(
      'fsck <dir>',
      'check the queue; with --repair rebuild a damaged kernel and move old orphan bodies to the dead letters',
      (command) => common(command)
        .option('repair', { type: 'boolean', default: false })
        .option('orphan-grace', { type: 'string', default: '60s', describe: 'leave bodies younger than this alone' }),
      async (argv) => {
        const orphanGraceMs = parseDuration(argv['orphan-grace'], '--orphan-grace');
        const report = await fsck(portsFor(argv.dir), '.', { repair: argv.repair, orphanGraceMs });
        const lines = [
          report.clean ? `clean: ${report.messages} messages` : `NOT CLEAN: ${report.messages} messages`,
          ...report.violations.map((violation) => `violation: ${violation}`),
          ...report.badBodies.map((bad) => `body ${bad.problem}: ${bad.id}`),
          ...report.interruptedAcks.map((id) => `interrupted ack: ${id} (its body is gone; the engine frees the slot when the lease ends)`),
          ...report.orphans.map((orphan) => `orphan body: ${orphan.id} (${Math.round(orphan.ageMs / 1000)} s old)`),
        ];
        if (argv.repair) {
          const repaired = report.repaired;
          lines.push(
            repaired.rebuilt
              ? `rebuilt the kernel: kept ${repaired.kept.length} messages`
              : repaired.recommitted
                ? 'rewrote the damaged header copy from the one in force'
                : 'kernel not rebuilt',
            ...repaired.relinkedBodies.map((id) => `relinked body without a slot: ${id}`),
            ...repaired.deadLetteredOrphans.map((id) => `orphan body moved to the dead letters: ${id} (dead/${id}; a send that died before linking it, or a rolled-back commit)`),
            ...report.orphans
              .filter((orphan) => orphan.ageMs < orphanGraceMs)
              .map((orphan) => `left alone: orphan body ${orphan.id}, younger than --orphan-grace ${argv['orphan-grace']} (a send may still link it); run fsck --repair again later`),
            ...repaired.droppedSlots.map((dropped) => `dropped ${dropped.id}: ${dropped.reason}`),
            ...repaired.deadLettered.map((id) => `dead-lettered ${id}: damaged body`),
          );
        }
        output.result(argv.json, report, lines.join('\n'));
        // A check that found problems fails; a repair that fixed them succeeds.
        if (!report.clean && !(argv.repair && (report.repaired.rebuilt || report.repaired.recommitted || report.violations.length === 0))) output.exitCode(1);
      },
    )
    .demandCommand(1, 'name a queue command: init, send, recv, ack, release, dead, requeue, stat or fsck');
}

async function readBodyFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new UsageError(`--file: cannot read ${path}: ${(error as Error).message}`);
  }
}

async function readStandardInput(): Promise<Uint8Array> {
  if (process.stdin.isTTY) throw new UsageError('send: give the body with --body TEXT, --file F, or on standard input');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

/**
 * `nasq demo`: a queue on an in-memory file system, a few clients sending and receiving, and the
 * kernel's invariants checked at the end. Needs nothing external.
 */

import type { Argv } from 'yargs';
import { ManualClock } from '../adapters/manual-clock.js';
import { MemoryFileSystem } from '../adapters/memory-file-system.js';
import { kernelViolations } from '../engine/kernel-image.js';
import { QueueClient, createQueue } from '../engine/queue.js';
import { parsePositiveInteger } from './durations.js';
import type { Output } from './output.js';

export function demoCommand(yargs: Argv, output: Output): Argv {
  return yargs
    .option('messages', { type: 'number', default: 1000 })
    .option('clients', { type: 'number', default: 4 })
    .option('json', { type: 'boolean', default: false });
}

export async function runDemo(argv: { messages: number; clients: number; json: boolean }, output: Output): Promise<void> {
  const messages = parsePositiveInteger(argv.messages, '--messages', 1_000_000);
  const clientCount = parsePositiveInteger(argv.clients, '--clients', 64);
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const fs = new MemoryFileSystem({ clock });
  await createQueue({ fs, clock }, 'demo', { slots: 256 });
  const clients: QueueClient[] = [];
  for (let index = 0; index < clientCount; index += 1) clients.push(await QueueClient.open({ fs, clock }, 'demo'));
  const acked = new Set<string>();
  let sent = 0;
  for (let round = 0; acked.size < messages && round < messages * 4; round += 1) {
    const client = clients[round % clientCount]!;
    if (sent < messages && (round % 3 !== 2)) {
      await client.send(`message ${sent}`);
      sent += 1;
    }
    const delivery = await client.receive();
    if (delivery !== null) {
      await client.ack(delivery.receipt);
      if (acked.has(delivery.id)) throw new Error(`demo: ${delivery.id} acked twice`);
      acked.add(delivery.id);
    }
    await clock.advance(1);
  }
  const violations = kernelViolations(new Uint8Array(fs.volume.readFileSync('/demo/kernel') as Uint8Array));
  const summary = { clients: clientCount, sent, acked: acked.size, kernelViolations: violations };
  output.result(argv.json, summary, `${clientCount} clients sent ${sent} and acked ${acked.size} messages; kernel invariants: ${violations.length === 0 ? 'all hold' : violations.join('; ')}`);
  if (violations.length > 0 || acked.size !== sent) output.exitCode(1);
}

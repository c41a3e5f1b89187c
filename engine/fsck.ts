/**
 * fsck: checks a queue directory, and with `repair` rebuilds it.
 *
 * Check: every kernel invariant (kernel-image.ts), every unread or pending message has a whole
 * body, and no body is an orphan (written by a send that never linked it).
 *
 * Repair, under the exclusive header lock:
 * - If the kernel is sound, orphans older than the grace period move to the dead letters (body in
 *   `dead/ID`, why in `dead/ID.json`, reason 'orphan'), and out of the message directory. Nothing
 *   is deleted: an orphan is most often the body of a send that died before linking it, but it is
 *   also what is left of a message whose commit was rolled back (the newest header copy damaged
 *   after the send returned, and the copy before it taken); only a person can tell the two apart.
 *   A younger orphan may belong to a send still in progress and is left alone.
 * - If it is damaged, the groups are rebuilt from every intact slot whose body is whole, plus
 *   every body no intact slot refers to (older than the grace period): their slot was lost, and
 *   because an ack deletes the body before it frees the slot, a body file always means a message
 *   not yet acked. Pending messages become unread again (their leases are gone). Slots whose
 *   body is missing are dropped; bodies that are damaged go to the dead letters. The report says
 *   what was kept and what was dropped. The new kernel is written with one write.
 */

import { crc32c } from './crc32.js';
import { NasqError, isNasqError } from './errors.js';
import {
  SlotState,
  chooseHeader,
  decodeHeaderCopy,
  decodeSlot,
  emptySlot,
  encodeHeader,
  encodeSlot,
  headerCopySize,
  headerRegionSize,
  journalCapacity,
  kernelFileSize,
  maximumSlots,
  messageIdOf,
  noOffset,
  parseMessageId,
  slotDefect,
  slotFlagFilling,
  slotOffsetOf,
  slotSize,
  slotsOffset,
  validateHeaderFields,
  type Header,
  type Slot,
} from './format.js';
import { BodyStore, bundleBody, bundleName, decodeBundle, markLive, parseBundleName, type Bundle } from './bodies.js';
import { imageViolations, readKernelImage, type KernelImage } from './kernel-image.js';
import { KernelTransaction } from './kernel-transaction.js';
import type { FileHandle, Ports } from './ports.js';
import { deadLetterOrphan, deadLetterSlot } from './dead-letters.js';
import { joinPath, queueLayout, unlinkIfPresent } from './layout.js';

export interface FsckOptions {
  /** Rebuild a damaged kernel; move old orphans to the dead letters. Default false: only report. */
  readonly repair?: boolean;
  /** Bodies younger than this are left alone (a send may still be linking them). Default 60,000 ms. */
  readonly orphanGraceMs?: number;
  /** Longest wait for the header lock. Default 30,000 ms. */
  readonly lockWaitMs?: number;
}

export interface FsckReport {
  /** True when the queue needs no repair. */
  clean: boolean;
  /** Invariant violations of the kernel file, in words. */
  violations: string[];
  /** Messages (unread or pending) in the kernel. */
  messages: number;
  /** Bodies no slot refers to, with their age in ms (and the bundle holding them, if any). */
  orphans: Array<{ id: string; ageMs: number; bundle?: string }>;
  /** Messages whose body file is missing or does not match its slot. */
  badBodies: Array<{ id: string; problem: 'missing' | 'damaged' }>;
  /**
   * Pending messages whose body is gone: an ack deleted the body and its client died before the
   * commit. Not damage: the engine frees the slot when the lease runs out (the ack took effect).
   */
  interruptedAcks: string[];
  /** What a repair did (empty when only checking). */
  repaired: {
    /** The damaged header copy not in force was rewritten from the one in force (nothing else changed). */
    recommitted: boolean;
    rebuilt: boolean;
    kept: string[];
    relinkedBodies: string[];
    /** Old orphan bodies of a sound kernel moved to the dead letters (reason 'orphan'), by message id. */
    deadLetteredOrphans: string[];
    droppedSlots: Array<{ id: string; reason: string }>;
    deadLettered: string[];
  };
}

interface Kernel {
  handle: FileHandle;
  bytes: Uint8Array;
}

export async function fsck(ports: Ports, directory: string, options: FsckOptions = {}): Promise<FsckReport> {
  const { fs, clock } = ports;
  const repair = options.repair ?? false;
  const orphanGraceMs = options.orphanGraceMs ?? 60_000;
  if (!Number.isFinite(orphanGraceMs) || orphanGraceMs < 0) {
    throw new NasqError('INVALID_ARGUMENT', `orphanGraceMs: expected a number >= 0, got ${String(options.orphanGraceMs)}`);
  }
  const kernelPath = joinPath(directory, queueLayout.kernel);
  let handle: FileHandle;
  try {
    handle = await fs.open(kernelPath);
  } catch (error) {
    if (isNasqError(error, 'NOT_FOUND')) throw new NasqError('NOT_A_QUEUE', `${directory} has no kernel file`, { cause: error });
    throw error;
  }
  const range = { offset: 0, length: headerRegionSize };
  try {
    await fs.lock(handle, range, { mode: repair ? 'exclusive' : 'shared', waitMs: options.lockWaitMs ?? 30_000 });
    try {
      const size = (await fs.stat(kernelPath)).size;
      const bytes = await fs.read(handle, 0, Math.max(size, headerRegionSize));
      return await checkAndRepair(ports, directory, { handle, bytes }, repair, orphanGraceMs, clock.now());
    } finally {
      await fs.unlock(handle, range);
    }
  } finally {
    await fs.close(handle);
  }
}

async function checkAndRepair(
  ports: Ports,
  directory: string,
  kernel: Kernel,
  repair: boolean,
  orphanGraceMs: number,
  nowMs: number,
): Promise<FsckReport> {
  const { fs } = ports;
  const report: FsckReport = {
    clean: true,
    violations: [],
    messages: 0,
    orphans: [],
    badBodies: [],
    interruptedAcks: [],
    repaired: { recommitted: false, rebuilt: false, kept: [], relinkedBodies: [], deadLetteredOrphans: [], droppedSlots: [], deadLettered: [] },
  };
  let image: KernelImage | undefined;
  let onlyOtherCopyDamaged = false;
  try {
    image = readKernelImage(kernel.bytes);
    report.violations = imageViolations(image);
    // The engine runs on with the valid copy (its next commit overwrites the damaged one), but a
    // damaged copy is damage all the same: it may have been the newest state (or a commit torn by
    // a crash, which the copy in force survived).
    if (image.otherCopyDefect !== undefined) {
      onlyOtherCopyDamaged = report.violations.length === 0;
      report.violations.push(`header copy not in force: ${image.otherCopyDefect}`);
    }
  } catch (error) {
    if (!isNasqError(error, 'CORRUPT')) throw error;
    report.violations = [error.message];
  }

  const slots = intactSlots(kernel.bytes, image);
  const messageSlots = slots.filter((slot) => slot.state !== SlotState.empty && slot.flags !== slotFlagFilling);
  const fillingIds = new Set(slots.filter((slot) => slot.state === SlotState.pending && slot.flags === slotFlagFilling).map(messageIdOf));
  report.messages = messageSlots.length;
  const catalog = await catalogBodies(ports, directory);
  const referencedFiles = new Set(messageSlots.filter((slot) => slot.bundleFirstSequence === 0).map(messageIdOf));
  const referencedBundles = new Set(messageSlots.filter((slot) => slot.bundleFirstSequence !== 0).map((slot) => bundleName(slot.messageClient, slot.bundleFirstSequence)));
  const referencedEntries = new Set(messageSlots.filter((slot) => slot.bundleFirstSequence !== 0).map((slot) => `${bundleName(slot.messageClient, slot.bundleFirstSequence)}#${messageIdOf(slot)}`));

  const wholeBodies = new Map<string, Uint8Array>();
  const presentButBad = new Set<string>();
  for (const slot of messageSlots) {
    const id = messageIdOf(slot);
    const found = bodyOf(catalog, slot);
    if (found === 'missing') {
      if (slot.state === SlotState.pending) report.interruptedAcks.push(id);
      else report.badBodies.push({ id, problem: 'missing' });
      continue;
    }
    if (found === 'damaged' || found.length !== slot.bodyLength || crc32c(found) !== slot.bodyChecksum) {
      report.badBodies.push({ id, problem: 'damaged' });
      presentButBad.add(id);
      continue;
    }
    wholeBodies.set(id, found);
  }
  for (const [id, file] of catalog.files) {
    if (referencedFiles.has(id) || fillingIds.has(id)) continue;
    report.orphans.push({ id, ageMs: nowMs - file.mtimeMs });
  }
  for (const [name, bundle] of catalog.bundles) {
    if (typeof bundle.decoded === 'string') {
      // Referenced: its messages' bodies are reported as damaged above. Not referenced: a batch
      // send that died while writing it (a half-written file), an orphan like any other.
      if (!referencedBundles.has(name)) report.orphans.push({ id: name, ageMs: nowMs - bundle.mtimeMs, bundle: name });
      continue;
    }
    let live = 0;
    const decoded = bundle.decoded;
    decoded.entries.forEach((entry, index) => {
      if (entry.mark !== markLive) return;
      live += 1;
      const id = messageIdOf({ messageClient: bundle.client, messageSequence: decoded.firstSequence + index });
      if (referencedEntries.has(`${name}#${id}`)) return;
      report.orphans.push({ id, ageMs: nowMs - bundle.mtimeMs, bundle: name });
    });
    if (live === 0) report.orphans.push({ id: name, ageMs: nowMs - bundle.mtimeMs, bundle: name });
  }
  const kernelDamaged = report.violations.length > 0;
  // A young orphan may be a send in progress: it does not make the queue unclean.
  report.clean = !kernelDamaged && report.badBodies.length === 0 && report.orphans.every((orphan) => orphan.ageMs < orphanGraceMs);
  if (!repair) return report;

  const oldOrphanEntries = report.orphans.filter((orphan) => orphan.ageMs >= orphanGraceMs);
  if (onlyOtherCopyDamaged && report.badBodies.length === 0) {
    // The lightest repair: commit the state in force again, into the damaged copy. In-flight
    // messages keep their leases.
    const transaction = await KernelTransaction.begin(fs, kernel.handle, { durable: true, journalSoftLimit: journalCapacity, readAheadSlots: 1 });
    transaction.touchHeader();
    await transaction.commit();
    report.repaired.recommitted = true;
  }
  if ((!kernelDamaged || onlyOtherCopyDamaged) && report.badBodies.length === 0) {
    // Copied to the dead letters first, removed second: a crash in between leaves both, and the
    // next repair writes the same dead letter again.
    for (const orphan of oldOrphanEntries) {
      const parsed = parseMessageId(orphan.id);
      const stored = parsed === undefined ? undefined : orphanBody(catalog, orphan);
      if (stored === undefined) continue; // a bundle with no live body left: nothing to keep
      await deadLetterOrphan(ports.fs, directory, orphan.id, stored.body, orphan.ageMs, nowMs);
      report.repaired.deadLetteredOrphans.push(orphan.id);
    }
    await removeOrphans(ports, directory, catalog, oldOrphanEntries);
    return report;
  }

  // Rebuild. Every message with a whole body is kept, in its old order.
  const previous = image?.header ?? bestEffortHeader(kernel.bytes);
  const kept: Slot[] = [];
  for (const slot of messageSlots) {
    const id = messageIdOf(slot);
    if (wholeBodies.has(id)) {
      kept.push(slot);
      continue;
    }
    if (presentButBad.has(id)) {
      await deadLetterSlot(ports.fs, directory, bodyStore(ports, directory), slot, 'body-damaged', nowMs);
      report.repaired.deadLettered.push(id);
    } else {
      report.repaired.droppedSlots.push({ id, reason: 'body missing (acked by a client that died before freeing the slot, or deleted)' });
    }
  }
  let maximumSendSequence = 0;
  let maximumClient = 0;
  let maximumToken = 0;
  let maximumStamp = previous?.generation ?? 0;
  for (const slot of slots) {
    maximumSendSequence = Math.max(maximumSendSequence, slot.sendSequence);
    maximumClient = Math.max(maximumClient, slot.messageClient, slot.owner);
    maximumToken = Math.max(maximumToken, slot.leaseToken);
    maximumStamp = Math.max(maximumStamp, slot.stamp);
  }
  for (const orphan of oldOrphanEntries) {
    // A live body without an intact slot: its slot was lost (or its send was interrupted). Keep it.
    const parsed = parseMessageId(orphan.id);
    if (parsed === undefined) {
      await unlinkIfPresent(ports.fs, bodyPath(directory, orphan.id)); // a bundle with no live body left
      continue;
    }
    const stored = orphanBody(catalog, orphan);
    if (stored === undefined) continue;
    maximumClient = Math.max(maximumClient, parsed.messageClient);
    maximumSendSequence += 1;
    kept.push({
      ...emptySlot(0, 0, 0),
      state: SlotState.unread,
      priority: nowMs,
      sendSequence: maximumSendSequence,
      messageClient: parsed.messageClient,
      messageSequence: parsed.messageSequence,
      bodyLength: stored.body.length,
      bodyChecksum: crc32c(stored.body),
      sentAt: nowMs,
      bundleFirstSequence: stored.bundleFirstSequence,
      bundleCount: stored.bundleCount,
    });
    report.repaired.relinkedBodies.push(orphan.id);
  }
  kept.sort((a, b) => a.priority - b.priority || a.sendSequence - b.sendSequence);
  // The slot count: the header's if its fields hold together, else what the file holds.
  const fileSlots = Math.max(0, Math.floor((kernel.bytes.length - slotsOffset) / slotSize));
  const trustedSlots = previous !== undefined && validateHeaderFields(previous) === undefined ? previous.totalSlots : fileSlots;
  const totalSlots = Math.min(maximumSlots, Math.max(kept.length, trustedSlots, 1));
  const generation = maximumStamp + 1;
  const bytes = new Uint8Array(kernelFileSize(totalSlots));
  const header: Header = {
    generation,
    totalSlots,
    emptyCount: totalSlots - kept.length,
    pendingCount: 0,
    unreadCount: kept.length,
    firstUnreadOffset: kept.length > 0 ? slotOffsetOf(0) : noOffset,
    lastUnreadOffset: kept.length > 0 ? slotOffsetOf(kept.length - 1) : noOffset,
    firstEmptyOffset: kept.length < totalSlots ? slotOffsetOf(kept.length) : noOffset,
    firstPendingOffset: noOffset,
    lastPendingOffset: noOffset,
    firstUnreadPriority: kept[0]?.priority ?? 0,
    lastUnreadPriority: kept[kept.length - 1]?.priority ?? 0,
    lastUnreadSendSequence: kept[kept.length - 1]?.sendSequence ?? 0,
    firstPendingExpiry: 0,
    nextSendSequence: Math.max(previous?.nextSendSequence ?? 1, maximumSendSequence + 1),
    nextClientId: Math.max(previous?.nextClientId ?? 1, maximumClient + 1),
    nextLeaseToken: Math.max(previous?.nextLeaseToken ?? 1, maximumToken + 1),
    reclaimEpoch: (previous?.reclaimEpoch ?? 0) + 1,
    maximumDeliveries: previous?.maximumDeliveries ?? 10,
    deadCount: (previous?.deadCount ?? 0) + report.repaired.deadLettered.length,
    journal: [],
  };
  kept.forEach((slot, index) => {
    const offset = slotOffsetOf(index);
    const next = kept[index + 1];
    encodeSlot(
      {
        ...slot,
        offset,
        state: SlotState.unread,
        flags: 0,
        next: next === undefined ? noOffset : slotOffsetOf(index + 1),
        previous: noOffset,
        nextPriority: next?.priority ?? 0,
        owner: 0,
        leaseToken: 0,
        leaseExpiry: 0,
        stamp: generation,
      },
      bytes,
      offset,
    );
    report.repaired.kept.push(messageIdOf(slot));
  });
  for (let index = kept.length; index < totalSlots; index += 1) {
    encodeSlot(emptySlot(slotOffsetOf(index), index + 1 < totalSlots ? slotOffsetOf(index + 1) : noOffset, generation), bytes, slotOffsetOf(index));
  }
  bytes.set(encodeHeader(header), 0);
  bytes.set(encodeHeader({ ...header, generation: generation - 1 }), headerCopySize);
  await fs.write(kernel.handle, 0, bytes);
  if (kernel.bytes.length > bytes.length) await fs.truncate(kernel.handle, bytes.length);
  await fs.sync(kernel.handle);
  report.repaired.rebuilt = true;
  return report;
}

/** Every slot image that can be trusted: through the journal when a header is valid, else raw. */
function intactSlots(bytes: Uint8Array, image: KernelImage | undefined): Slot[] {
  if (image !== undefined) return image.slots.filter((slot): slot is Slot => slot !== undefined);
  const slots: Slot[] = [];
  const count = Math.min(maximumSlots, Math.max(0, Math.floor((bytes.length - slotsOffset) / slotSize)));
  for (let index = 0; index < count; index += 1) {
    const offset = slotOffsetOf(index);
    if (slotDefect(bytes, offset, offset) === undefined) slots.push(decodeSlot(bytes, offset, offset));
  }
  // The journal of a damaged-but-decodable header copy may hold newer images: prefer them.
  for (const at of [0, headerCopySize]) {
    const copy = decodeHeaderCopy(bytes, at);
    if (!copy.ok) continue;
    for (const journaled of copy.header.journal) {
      const index = slots.findIndex((slot) => slot.offset === journaled.offset);
      if (index === -1) slots.push(journaled);
      else if (journaled.stamp >= slots[index]!.stamp) slots[index] = journaled;
    }
  }
  return slots;
}

function bestEffortHeader(bytes: Uint8Array): Header | undefined {
  try {
    return chooseHeader(bytes.subarray(0, headerRegionSize), { verifyBoth: true }).header;
  } catch {
    return undefined;
  }
}

function bodyPath(directory: string, id: string): string {
  return joinPath(directory, `${queueLayout.messages}/${id}`);
}

function bodyStore(ports: Ports, directory: string): BodyStore {
  return new BodyStore(ports.fs, directory, queueLayout.messages, () => true);
}

interface BodyCatalog {
  /** Bodies in their own files, by message id. */
  files: Map<string, { bytes: Uint8Array; mtimeMs: number }>;
  /** Bundles by file name, decoded (or their defect). */
  bundles: Map<string, { client: number; bytes: Uint8Array; decoded: Bundle | string; mtimeMs: number }>;
}

/** Every body in the message directory: own files by id, bundles read and decoded. */
async function catalogBodies(ports: Ports, directory: string): Promise<BodyCatalog> {
  const catalog: BodyCatalog = { files: new Map(), bundles: new Map() };
  for (const name of await ports.fs.readdir(joinPath(directory, queueLayout.messages))) {
    const path = bodyPath(directory, name);
    if (parseMessageId(name) !== undefined) {
      catalog.files.set(name, { bytes: await ports.fs.readFile(path), mtimeMs: (await ports.fs.stat(path)).mtimeMs });
      continue;
    }
    const bundle = parseBundleName(name);
    if (bundle === undefined) continue;
    const bytes = await ports.fs.readFile(path);
    catalog.bundles.set(name, { client: bundle.client, bytes, decoded: decodeBundle(bytes), mtimeMs: (await ports.fs.stat(path)).mtimeMs });
  }
  return catalog;
}

/** The stored body of a message slot, or what is wrong with it (not yet checked against the slot). */
function bodyOf(catalog: BodyCatalog, slot: Slot): Uint8Array | 'missing' | 'damaged' {
  if (slot.bundleFirstSequence === 0) return catalog.files.get(messageIdOf(slot))?.bytes ?? 'missing';
  const bundle = catalog.bundles.get(bundleName(slot.messageClient, slot.bundleFirstSequence));
  if (bundle === undefined) return 'missing';
  if (typeof bundle.decoded === 'string') return 'damaged';
  const body = bundleBody(bundle.bytes, bundle.decoded, slot.messageSequence - slot.bundleFirstSequence);
  return body === 'gone' ? 'missing' : body;
}

function orphanBody(catalog: BodyCatalog, orphan: { id: string; bundle?: string }): { body: Uint8Array; bundleFirstSequence: number; bundleCount: number } | undefined {
  if (orphan.bundle === undefined) {
    const file = catalog.files.get(orphan.id);
    return file === undefined ? undefined : { body: file.bytes, bundleFirstSequence: 0, bundleCount: 0 };
  }
  const bundle = catalog.bundles.get(orphan.bundle);
  if (bundle === undefined || typeof bundle.decoded === 'string') return undefined;
  const index = parseMessageId(orphan.id)!.messageSequence - bundle.decoded.firstSequence;
  const body = bundleBody(bundle.bytes, bundle.decoded, index);
  if (!(body instanceof Uint8Array)) return undefined;
  return { body, bundleFirstSequence: bundle.decoded.firstSequence, bundleCount: bundle.decoded.count };
}

/** Removes orphans: own files deleted, bundle entries marked gone (a bundle left empty deleted). */
async function removeOrphans(ports: Ports, directory: string, catalog: BodyCatalog, orphans: ReadonlyArray<{ id: string; bundle?: string }>): Promise<void> {
  const byBundle = new Map<string, Set<number>>();
  for (const orphan of orphans) {
    if (orphan.bundle === undefined) {
      await unlinkIfPresent(ports.fs, bodyPath(directory, orphan.id));
      continue;
    }
    const bundle = catalog.bundles.get(orphan.bundle);
    if (bundle === undefined || typeof bundle.decoded === 'string' || orphan.id === orphan.bundle) {
      await unlinkIfPresent(ports.fs, bodyPath(directory, orphan.bundle));
      continue;
    }
    const indexes = byBundle.get(orphan.bundle) ?? new Set<number>();
    indexes.add(parseMessageId(orphan.id)!.messageSequence - bundle.decoded.firstSequence);
    byBundle.set(orphan.bundle, indexes);
  }
  for (const [name, indexes] of byBundle) {
    const bundle = catalog.bundles.get(name)!;
    await bodyStore(ports, directory).markGone(bodyPath(directory, name), (bundle.decoded as Bundle).count, indexes);
  }
}


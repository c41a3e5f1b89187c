/**
 * Conformance cases: short scripts of SMB requests that pin the lock and session semantics of
 * cifs-nas-model.md sections 1 and 2, run the same way against the simulated share
 * (conformance/sim-driver.ts) and against a real Samba server (conformance/samba.ts), so that
 * the simulator is held against a real server and not only against our reading of the specs.
 *
 * A case is a list of steps; each step is one request of one client (a connection and session
 * of its own) on one open, and is observed as the NT status it got (or PENDING: a blocking lock
 * that has not completed by the end of its step). `model` is what cifs-nas-model.md says each
 * step gets; the drivers report what a server actually answered.
 */

import type { WatchFilter } from '../engine/ports.js';

export type StepStatus =
  | 'STATUS_SUCCESS'
  | 'STATUS_LOCK_NOT_GRANTED'
  | 'STATUS_FILE_LOCK_CONFLICT'
  | 'STATUS_RANGE_NOT_LOCKED'
  | 'STATUS_FILE_CLOSED'
  | 'STATUS_NOTIFY_ENUM_DIR'
  | 'PENDING';

export type Step =
  /**
   * Opens `path` for reading and writing (created if missing), sharing everything, as `handle`;
   * `durable`: asks for a durable handle (with a batch oplock, as SMB requires for one); `lease`:
   * asks for a read+handle lease (as a Linux cifs client does; instead of the oplock). The
   * simulated share has no leases and grants durable handles as asked.
   */
  | { readonly op: 'open'; readonly client: string; readonly handle: string; readonly path: string; readonly durable?: boolean; readonly lease?: boolean }
  /** A lock request: fail-immediately (`wait` false) or blocking (`wait` true). */
  | { readonly op: 'lock'; readonly handle: string; readonly offset: number; readonly length: number; readonly mode: 'exclusive' | 'shared'; readonly wait: boolean }
  | { readonly op: 'unlock'; readonly handle: string; readonly offset: number; readonly length: number }
  | { readonly op: 'read'; readonly handle: string; readonly offset: number; readonly length: number }
  /** Writes `length` bytes at `offset`. */
  | { readonly op: 'write'; readonly handle: string; readonly offset: number; readonly length: number }
  | { readonly op: 'close'; readonly handle: string }
  /** The client's connection is cut (no logoff, no close): a crash or a network failure. */
  | { readonly op: 'drop'; readonly client: string }
  /** A new connection and session for a client whose connection dropped; its handles are stale. */
  | { readonly op: 'reconnect'; readonly client: string }
  /** Opens a directory (`.`: the case's own) to watch for changes (SMB2 CHANGE_NOTIFY). */
  | { readonly op: 'watch'; readonly client: string; readonly handle: string; readonly path: string; readonly filter: WatchFilter }
  /** Waits for a change on a watch: blocking, like a blocking lock (PENDING until one comes). */
  | { readonly op: 'notify'; readonly handle: string }
  /** Sets a file's last-write time explicitly (how senders ring the notification file), `times` times. */
  | { readonly op: 'touch'; readonly client: string; readonly path: string; readonly times?: number }
  /** The status of the blocking lock or notify of step number `of` by now (PENDING if still waiting). */
  | { readonly op: 'outcome'; readonly of: number };

export interface ConformanceCase {
  readonly name: string;
  /** The line of cifs-nas-model.md (and its source) the case pins. */
  readonly pins: string;
  readonly steps: readonly Step[];
  /** What the model says each step gets, one per step. */
  readonly model: readonly StepStatus[];
  /**
   * Options of the simulated share for this case, where the real server's behaviour is one of
   * the simulator's modes (a disconnected durable handle purged by another open).
   */
  readonly simServer?: { readonly purgeDisconnectedOnOpen?: boolean; readonly durableLocksNeedSoleOpen?: boolean; readonly randomLockWaiterOrder?: boolean };
}

const ok = 'STATUS_SUCCESS';
const notGranted = 'STATUS_LOCK_NOT_GRANTED';
const conflict = 'STATUS_FILE_LOCK_CONFLICT';
const notLocked = 'STATUS_RANGE_NOT_LOCKED';
const pending = 'PENDING';
const closed = 'STATUS_FILE_CLOSED';

/** Steps and their model statuses written side by side. */
function script(...pairs: ReadonlyArray<readonly [Step, StepStatus]>): Pick<ConformanceCase, 'steps' | 'model'> {
  return { steps: pairs.map(([step]) => step), model: pairs.map(([, status]) => status) };
}

const open = (client: string, handle: string, path = 'kernel'): Step => ({ op: 'open', client, handle, path });
const openDurable = (client: string, handle: string, path = 'kernel'): Step => ({ op: 'open', client, handle, path, durable: true });
const openLeased = (client: string, handle: string, durable: boolean): Step => ({ op: 'open', client, handle, path: 'kernel', durable, lease: true });
const exclusive = (handle: string, offset: number, length: number, wait = false): Step => ({ op: 'lock', handle, offset, length, mode: 'exclusive', wait });
const shared = (handle: string, offset: number, length: number, wait = false): Step => ({ op: 'lock', handle, offset, length, mode: 'shared', wait });
const unlock = (handle: string, offset: number, length: number): Step => ({ op: 'unlock', handle, offset, length });
const read = (handle: string, offset: number, length: number): Step => ({ op: 'read', handle, offset, length });
const write = (handle: string, offset: number, length: number): Step => ({ op: 'write', handle, offset, length });
const close = (handle: string): Step => ({ op: 'close', handle });
const drop = (client: string): Step => ({ op: 'drop', client });
const reconnect = (client: string): Step => ({ op: 'reconnect', client });
const outcome = (of: number): Step => ({ op: 'outcome', of });
const watch = (client: string, handle: string): Step => ({ op: 'watch', client, handle, path: '.', filter: { lastWrite: true, size: true } });
const notify = (handle: string): Step => ({ op: 'notify', handle });
const touch = (client: string, times = 1): Step => ({ op: 'touch', client, path: 'bell', times });

/** A writes 200 bytes through a1, and B opens the same file as b1: the start of most cases. */
const twoClients = [
  [open('A', 'a1'), ok],
  [write('a1', 0, 200), ok],
  [open('B', 'b1'), ok],
] as const satisfies ReadonlyArray<readonly [Step, StepStatus]>;

export const conformanceCases: readonly ConformanceCase[] = [
  {
    name: 'owner-is-the-open',
    pins: 'section 1: the owner of a lock is the open; two opens of one client conflict (smb2.lock.context)',
    ...script(
      [open('A', 'a1'), ok],
      [write('a1', 0, 200), ok],
      [open('A', 'a2'), ok],
      [exclusive('a1', 0, 100), ok],
      [exclusive('a2', 0, 100), notGranted],
      [read('a2', 0, 10), conflict],
      [unlock('a2', 0, 100), notLocked],
      [read('a1', 0, 10), ok],
    ),
  },
  {
    name: 'exclusive-lock',
    pins: 'section 1: exclusive: every other open is refused reads, writes and locks on the range (MS-SMB2 2.2.26.1; smb2.lock.rw-exclusive)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [write('a1', 10, 4), ok],
      [read('a1', 10, 4), ok],
      [read('b1', 50, 10), conflict],
      [write('b1', 99, 1), conflict],
      [shared('b1', 99, 1), notGranted],
      [exclusive('b1', 50, 1), notGranted],
      [write('b1', 100, 4), ok],
      [read('b1', 100, 4), ok],
      [exclusive('b1', 100, 10), ok],
    ),
  },
  {
    name: 'shared-lock',
    pins: 'section 1: shared: others may read and share; nobody may write the range, the holder included (smb2.lock.rw-shared)',
    ...script(
      ...twoClients,
      [shared('a1', 0, 100), ok],
      [read('b1', 0, 100), ok],
      [shared('b1', 50, 100), ok],
      [write('a1', 0, 1), conflict],
      [write('b1', 60, 1), conflict],
      [exclusive('b1', 0, 1), notGranted],
    ),
  },
  {
    name: 'conflict-code',
    pins: 'section 1: a conflicting lock fails with STATUS_LOCK_NOT_GRANTED, also on repeats (smb2.lock.errorcode)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [exclusive('b1', 0, 100), notGranted],
      [exclusive('b1', 0, 100), notGranted],
      [exclusive('b1', 0, 100), notGranted],
      [exclusive('b1', 10, 5), notGranted],
      [exclusive('b1', 10, 5), notGranted],
    ),
  },
  {
    name: 'inclusive-ranges',
    pins: 'section 1: ranges are inclusive (last byte = offset + length - 1); a zero-length lock at 0 never conflicts; locking past end of file is legal (MS-FSA 2.1.4.10)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [exclusive('b1', 100, 1), ok],
      [exclusive('b1', 99, 1), notGranted],
      [exclusive('b1', 0, 0), ok],
      [exclusive('b1', 1_000_000, 10), ok],
    ),
  },
  {
    name: 'stacking',
    pins: 'section 1: an open cannot stack two exclusive locks on a range; it may stack a shared one on its exclusive one, and then needs two unlocks (MS-FSA 2.1.5.9; smb2.lock.stacking)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 10), ok],
      [exclusive('a1', 0, 10), notGranted],
      [shared('a1', 0, 10), ok],
      [unlock('a1', 0, 10), ok],
      [exclusive('b1', 0, 10), notGranted],
      [unlock('a1', 0, 10), ok],
      [exclusive('b1', 0, 10), ok],
      [unlock('a1', 0, 10), notLocked],
    ),
  },
  {
    name: 'blocking-waiter',
    pins: 'section 1: a blocking request waits (STATUS_PENDING) with no timeout and completes when the range frees (MS-SMB2 3.3.5.14.2; smb2.lock.async). (The order among several waiters is left open by the spec; Samba\'s is a race, the simulator\'s first come, first served: docs/conformance.md)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [exclusive('b1', 0, 100, true), pending],
      [outcome(4), pending],
      [write('a1', 0, 10), ok],
      [outcome(4), pending],
      [unlock('a1', 0, 100), ok],
      [outcome(4), ok],
      [write('b1', 0, 10), ok],
      [unlock('b1', 0, 100), ok],
    ),
  },
  {
    name: 'shared-waiters',
    pins: 'section 1: blocking requests: when an exclusive lock goes, every waiting shared request it blocked is granted (they do not conflict with each other)',
    ...script(
      ...twoClients,
      [open('C', 'c1'), ok],
      [exclusive('a1', 0, 100), ok],
      [shared('b1', 0, 100, true), pending],
      [shared('c1', 0, 100, true), pending],
      [unlock('a1', 0, 100), ok],
      [outcome(5), ok],
      [outcome(6), ok],
      [write('a1', 0, 1), conflict],
    ),
  },
  {
    name: 'shared-while-writer-waits',
    pins: 'section 1: a shared request compatible with the locks held is granted at once, even while an exclusive request waits (no writer preference)',
    ...script(
      ...twoClients,
      [open('C', 'c1'), ok],
      [shared('a1', 0, 100), ok],
      [exclusive('b1', 0, 100, true), pending],
      [shared('c1', 0, 100), ok],
      [unlock('a1', 0, 100), ok],
      [outcome(5), pending],
      [unlock('c1', 0, 100), ok],
      [outcome(5), ok],
    ),
  },
  {
    name: 'zero-length',
    pins: 'section 1: a zero-length lock at 0 never conflicts; one at N > 0 is the point between bytes N - 1 and N and conflicts with a lock holding both, held or asked (MS-FSA 2.1.4.10)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [exclusive('b1', 0, 0), ok],
      [exclusive('b1', 50, 0), notGranted],
      [shared('b1', 50, 0), notGranted],
      [exclusive('a1', 50, 0), notGranted],
      [exclusive('b1', 100, 0), ok],
      [unlock('b1', 100, 0), ok],
      [unlock('b1', 100, 0), notLocked],
      [exclusive('b1', 180, 0), ok],
      [read('a1', 150, 100), conflict],
      [write('a1', 179, 2), conflict],
      [shared('a1', 150, 100), notGranted],
      [exclusive('a1', 180, 100), ok],
    ),
  },
  {
    name: 'unlock-exact',
    pins: 'section 1: an unlock must name exactly the offset and length of a lock of the same open, else STATUS_RANGE_NOT_LOCKED (smb2.lock.unlock)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [unlock('a1', 0, 50), notLocked],
      [unlock('a1', 0, 101), notLocked],
      [unlock('b1', 0, 100), notLocked],
      [unlock('a1', 0, 100), ok],
      [unlock('a1', 0, 100), notLocked],
    ),
  },
  {
    name: 'close-releases',
    pins: 'section 1: closing a handle releases all its locks (LockFileEx remarks)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [shared('a1', 200, 10), ok],
      [exclusive('b1', 0, 100), notGranted],
      [close('a1'), ok],
      [exclusive('b1', 0, 100), ok],
      [exclusive('b1', 200, 10), ok],
    ),
  },
  {
    name: 'close-wakes-waiter',
    pins: 'section 1: a waiter is granted when the holder closes its handle',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [exclusive('b1', 0, 100, true), pending],
      [close('a1'), ok],
      [outcome(4), ok],
    ),
  },
  {
    name: 'drop-releases',
    pins: 'section 2: when a connection drops, its non-durable opens close at once and their locks are released: another client takes the lock while the first still believes it holds it (MS-SMB2 3.3.7.1)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [exclusive('b1', 0, 100), notGranted],
      [drop('A'), ok],
      [exclusive('b1', 0, 100), ok],
      [write('b1', 0, 10), ok],
    ),
  },
  {
    name: 'drop-wakes-waiter',
    pins: 'section 2: a drop releases the locks a waiter is waiting for (MS-SMB2 3.3.7.1)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [exclusive('b1', 0, 100, true), pending],
      [drop('A'), ok],
      [outcome(4), ok],
    ),
  },
  {
    name: 'stale-handle',
    pins: 'section 2: after a drop the client reconnects with a new session; its old handles are stale (STATUS_FILE_CLOSED), their locks gone (MS-SMB2 3.3.5.2.9)',
    ...script(
      ...twoClients,
      [exclusive('a1', 0, 100), ok],
      [drop('A'), ok],
      [reconnect('A'), ok],
      [read('a1', 0, 10), closed],
      [exclusive('a1', 0, 100), closed],
      [unlock('a1', 0, 100), closed],
      [exclusive('b1', 0, 100), ok],
      [open('A', 'a2'), ok],
      [read('a2', 0, 10), conflict],
    ),
  },
  {
    name: 'durable-reclaimed',
    pins: 'section 2: a durable handle survives a disconnect and keeps its locks; the reconnecting client reclaims it (MS-SMB2 3.3.2.2, 3.3.5.9.7)',
    ...script(
      [openDurable('A', 'a1'), ok],
      [write('a1', 0, 200), ok],
      [exclusive('a1', 0, 100), ok],
      [drop('A'), ok],
      [reconnect('A'), ok],
      [read('a1', 0, 10), ok],
      [write('a1', 0, 10), ok],
      [unlock('a1', 0, 100), ok],
      [unlock('a1', 0, 100), notLocked],
    ),
  },
  {
    name: 'durable-purged-by-open',
    pins: "section 2: a conflicting open may purge a disconnected durable handle early (Samba: another open breaks its batch oplock, which it cannot acknowledge); its locks go and its reclaim fails",
    simServer: { purgeDisconnectedOnOpen: true },
    ...script(
      [openDurable('A', 'a1'), ok],
      [write('a1', 0, 200), ok],
      [exclusive('a1', 0, 100), ok],
      [drop('A'), ok],
      [open('B', 'b1'), ok],
      [exclusive('b1', 0, 100), ok],
      [reconnect('A'), ok],
      [read('a1', 0, 10), closed],
      [unlock('a1', 0, 100), closed],
    ),
  },
  {
    name: 'durable-among-opens',
    pins: "section 2 on Samba: a durable handle that holds locks survives a disconnect only with a write lease or batch oplock (source3/smbd/durable.c), which the sole opener alone gets: with another open there, the drop releases its lock",
    simServer: { durableLocksNeedSoleOpen: true },
    ...script(
      [open('B', 'b1'), ok],
      [openDurable('A', 'a1'), ok],
      [write('a1', 0, 200), ok],
      [exclusive('a1', 0, 100), ok],
      [drop('A'), ok],
      [exclusive('b1', 0, 100), ok],
      [reconnect('A'), ok],
      [read('a1', 0, 10), closed],
    ),
  },
  {
    name: 'durable-lease-among-opens',
    pins: 'the same with read+handle leases, as Linux cifs clients ask: both clients get a lease and the durable handle is granted, yet the drop releases its lock (no write caching)',
    simServer: { durableLocksNeedSoleOpen: true },
    ...script(
      [openLeased('B', 'b1', false), ok],
      [openLeased('A', 'a1', true), ok],
      [write('a1', 0, 200), ok],
      [exclusive('a1', 0, 100), ok],
      [drop('A'), ok],
      [exclusive('b1', 0, 100), ok],
      [reconnect('A'), ok],
      [read('a1', 0, 10), closed],
    ),
  },
  {
    name: 'notify',
    pins: 'section 3: CHANGE_NOTIFY on a directory: an explicit last-write time or a size change wakes a watcher, a plain in-place write does not (Samba); changes between two requests are queued; SMB arms a watch with its first request, so a change before it is not reported (MS-SMB2 3.3.5.19)',
    ...script(
      [open('B', 'b1', 'bell'), ok],
      [write('b1', 0, 200), ok],
      [watch('A', 'w1'), ok],
      [touch('B'), ok],
      [notify('w1'), pending],
      [write('b1', 0, 10), ok],
      [outcome(4), pending],
      [touch('B'), ok],
      [outcome(4), ok],
      [touch('B'), ok],
      [notify('w1'), ok],
      [notify('w1'), pending],
      [write('b1', 200, 10), ok],
      [outcome(11), ok],
    ),
  },
  {
    name: 'notify-overflow',
    pins: 'section 3: events between requests are queued per handle; when the queue overflows the reply is STATUS_NOTIFY_ENUM_DIR and the client must re-check (MS-SMB2 2.2.35); Samba holds about a thousand (1,001 did not overflow, 1,200 did), the simulator 256 by default',
    ...script(
      [open('B', 'b1', 'bell'), ok],
      [watch('A', 'w1'), ok],
      [notify('w1'), pending],
      [touch('B'), ok],
      [outcome(2), ok],
      [touch('B', 100), ok],
      [notify('w1'), ok],
      [touch('B', 1_200), ok],
      [notify('w1'), 'STATUS_NOTIFY_ENUM_DIR'],
      [notify('w1'), pending],
      [touch('B'), ok],
      [outcome(9), ok],
    ),
  },
];

/** Checks a case's shape: one model status per step, and every outcome naming an earlier blocking lock. */
export function caseDefect(conformanceCase: ConformanceCase): string | undefined {
  const { steps, model, name } = conformanceCase;
  if (steps.length !== model.length) return `case ${name}: ${steps.length} steps but ${model.length} model statuses`;
  const handles = new Set<string>();
  for (const [index, step] of steps.entries()) {
    if (step.op === 'open' || step.op === 'watch') {
      handles.add(step.handle);
    } else if (step.op === 'outcome') {
      const target = steps[step.of];
      const blocking = target !== undefined && ((target.op === 'lock' && target.wait) || target.op === 'notify');
      if (step.of >= index || !blocking) return `case ${name}: step ${index} asks the outcome of step ${step.of}, which is not an earlier blocking lock or notify`;
    } else if (step.op !== 'drop' && step.op !== 'reconnect' && step.op !== 'touch' && !handles.has(step.handle)) {
      return `case ${name}: step ${index} uses handle ${step.handle} before it is opened`;
    }
  }
  return undefined;
}

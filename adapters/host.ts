/**
 * The host hook of the simulator: the only place where the simulator touches the real event loop
 * and the wall clock. Kept out of `sim/` so that `sim/` has no ambient time at all.
 *
 * The simulator runs clients on microtasks only. Every few thousand events it hands control back
 * to the host (`nextTurn`) so the process stays responsive, and the same callback doubles as a
 * watchdog: if it fires while a client is supposed to be running, every microtask has drained and
 * the client is waiting on something that is not a port call (a timer, real I/O, a promise nobody
 * settles), which would otherwise hang the run silently.
 */

export interface Host {
  /** Calls `callback` once on a later turn of the host's event loop, after all pending microtasks. */
  nextTurn(callback: () => void): void;
  /** Wall-clock milliseconds from an arbitrary origin: for statistics only, never for the run. */
  wallClockMs(): number;
}

/** The Node.js host: setImmediate and performance.now. */
export const nodeHost: Host = {
  nextTurn(callback: () => void): void {
    setImmediate(callback);
  },
  wallClockMs(): number {
    return performance.now();
  },
};

/**
 * The simulator's event queue: a binary min-heap of events ordered by virtual time, then by a
 * tiebreak key fixed when the event is scheduled (a sequence number, optionally prefixed by a
 * seeded random number so that simultaneous events interleave differently from seed to seed).
 *
 * Every event object records its own position in the heap, so an event can be removed or moved in
 * O(log n) (a cancelled timeout, a lost reply). Event objects are reused by their owners; the heap
 * allocates nothing once its array has grown.
 *
 * Far events: an event more than `nearHorizonMs` beyond the earliest one waits in a plain list
 * instead of the heap (O(1) in, O(1) out), and moves into the heap only when the queue's time gets
 * within the horizon of it. Most far events are timeouts that are cancelled long before they are
 * due (the bound of a lock wait, a notify deadline), so they never cost a heap insertion and
 * removal. Events come out in exactly the same order either way: the order is the keys'.
 */

import { assert } from '../engine/errors.js';

/** Receives the events it scheduled. */
export interface EventHandler {
  handleEvent(event: SimEvent): void;
}

/**
 * One scheduled happening. All events are of this one class so that the heap's comparisons stay
 * monomorphic (fast) whatever the kind of event; what the event means is `kind` and `subject`,
 * read by its handler.
 */
export class SimEvent {
  /** Virtual time at which the event fires, in milliseconds. */
  timeMs = 0;
  /** Tiebreak among events of one time; unique per scheduling. */
  order = 0;
  /** Position in the heap (>= 0), -1 when not scheduled, -2 - p at position p of the far list. */
  heapIndex = notQueued;
  /** Handler-defined kind. */
  kind: number;
  /** Handler-defined payload (a request, a client, a callback). */
  subject: unknown;
  readonly handler: EventHandler;

  constructor(handler: EventHandler, kind: number, subject: unknown = undefined) {
    this.handler = handler;
    this.kind = kind;
    this.subject = subject;
  }

  /** In the queue (the heap, or its list of far events). */
  get scheduled(): boolean {
    return this.heapIndex !== notQueued;
  }
}

/** `SimEvent.heapIndex` of an event that is not in the queue. */
const notQueued = -1;

/** `SimEvent.heapIndex` of the far event at `position` of the far list, and back. */
function farIndex(position: number): number {
  return -2 - position;
}

/** Default `nearHorizonMs`: farther than any reply of the latency profiles, nearer than lock and notify bounds. */
export const defaultNearHorizonMs = 1000;

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.order < b.order);
}

export class EventQueue {
  private readonly heap: SimEvent[] = [];
  /** Events due after `nearLimitMs`, unordered; each knows its position (`farIndex`). */
  private readonly far: SimEvent[] = [];
  /** Every queued event due at or before this time is in the heap; every far event is due after it. */
  private nearLimitMs: number;
  private readonly nearHorizonMs: number;

  /** `nearHorizonMs`: how far beyond the earliest event the heap reaches (> 0; Infinity keeps every event in the heap). */
  constructor(nearHorizonMs = defaultNearHorizonMs) {
    assert(nearHorizonMs > 0, () => `EventQueue: nearHorizonMs must be positive, got ${nearHorizonMs}`);
    this.nearHorizonMs = nearHorizonMs;
    this.nearLimitMs = nearHorizonMs;
  }

  get size(): number {
    return this.heap.length + this.far.length;
  }

  /** The earliest event (it stays queued). */
  peek(): SimEvent | undefined {
    const heap = this.heap;
    if (this.far.length > 0 && (heap.length === 0 || heap[0]!.timeMs > this.nearLimitMs)) this.bringNear();
    return heap[0];
  }

  push(event: SimEvent): void {
    assert(event.heapIndex === notQueued, 'EventQueue.push: the event is already scheduled');
    assert(!Number.isNaN(event.timeMs), 'EventQueue.push: time is NaN');
    if (event.timeMs > this.nearLimitMs) {
      const far = this.far;
      event.heapIndex = farIndex(far.length);
      far.push(event);
      return;
    }
    const heap = this.heap;
    event.heapIndex = heap.length;
    heap.push(event);
    this.siftUp(event.heapIndex);
  }

  /**
   * Removes and returns the earliest event. Bottom-up: the hole left at the root moves down along
   * the earlier child to a leaf (one comparison a level), then the last event rises from there
   * (it came from the bottom, so it rarely rises far): about half the comparisons of a plain
   * sift-down. The order popped is the same: keys are unique.
   */
  pop(): SimEvent | undefined {
    const heap = this.heap;
    if (this.far.length > 0 && (heap.length === 0 || heap[0]!.timeMs > this.nearLimitMs)) this.bringNear();
    const length = heap.length;
    if (length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    top.heapIndex = notQueued;
    if (length === 1) return top;
    const size = length - 1;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= size) break;
      let child = left;
      let childEvent = heap[left]!;
      const right = left + 1;
      if (right < size) {
        const rightEvent = heap[right]!;
        if (before(rightEvent, childEvent)) {
          child = right;
          childEvent = rightEvent;
        }
      }
      heap[index] = childEvent;
      childEvent.heapIndex = index;
      index = child;
    }
    heap[index] = last;
    this.siftUp(index);
    return top;
  }

  /** Removes a scheduled event. Returns false if it was not scheduled. */
  remove(event: SimEvent): boolean {
    const index = event.heapIndex;
    if (index === notQueued) return false;
    if (index < 0) {
      const far = this.far;
      const position = farIndex(index);
      assert(far[position] === event, 'EventQueue.remove: far index out of step');
      const last = far.pop()!;
      if (last !== event) {
        far[position] = last;
        last.heapIndex = index;
      }
      event.heapIndex = notQueued;
      return true;
    }
    const heap = this.heap;
    assert(heap[index] === event, 'EventQueue.remove: heap index out of step');
    const last = heap.pop()!;
    if (last !== event) {
      heap[index] = last;
      last.heapIndex = index;
      this.siftDown(index);
      this.siftUp(last.heapIndex);
    }
    event.heapIndex = notQueued;
    return true;
  }

  /** Visits every scheduled event (in no particular order). */
  forEach(visit: (event: SimEvent) => void): void {
    for (const event of this.heap) visit(event);
    for (const event of this.far) visit(event);
  }

  /**
   * The heap's earliest event is past the near limit (or the heap is empty): move the limit to a
   * horizon beyond the earliest event and bring the far events it now covers into the heap. Each
   * call moves the limit at least a horizon past the earliest event, so a run of T ms scans the
   * far list at most about T / nearHorizonMs times (plus once each time the heap runs dry).
   */
  private bringNear(): void {
    const heap = this.heap;
    const far = this.far;
    let earliestMs = heap.length === 0 ? Number.POSITIVE_INFINITY : heap[0]!.timeMs;
    for (const event of far) if (event.timeMs < earliestMs) earliestMs = event.timeMs;
    const limitMs = earliestMs + this.nearHorizonMs;
    assert(limitMs > this.nearLimitMs, 'EventQueue: the near limit went back');
    this.nearLimitMs = limitMs;
    let kept = 0;
    for (let position = 0; position < far.length; position += 1) {
      const event = far[position]!;
      if (event.timeMs > limitMs) {
        far[kept] = event;
        event.heapIndex = farIndex(kept);
        kept += 1;
      } else {
        event.heapIndex = heap.length;
        heap.push(event);
        this.siftUp(event.heapIndex);
      }
    }
    far.length = kept;
  }

  /** Checks the heap property and the index bookkeeping (tests, and debug runs). */
  checkInvariants(): void {
    const heap = this.heap;
    for (let index = 0; index < heap.length; index += 1) {
      const event = heap[index]!;
      assert(event.heapIndex === index, () => `EventQueue: event at ${index} thinks it is at ${event.heapIndex}`);
      if (index > 0) {
        const parent = heap[(index - 1) >> 1]!;
        assert(!before(event, parent), () => `EventQueue: heap property broken at ${index}`);
      }
    }
    this.far.forEach((event, position) => {
      assert(event.heapIndex === farIndex(position), () => `EventQueue: far event at ${position} thinks it is at ${event.heapIndex}`);
      assert(event.timeMs > this.nearLimitMs, () => `EventQueue: far event at ${position} is due by the near limit`);
    });
  }

  private siftUp(start: number): void {
    const heap = this.heap;
    let index = start;
    const event = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!before(event, parent)) break;
      heap[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    heap[index] = event;
    event.heapIndex = index;
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const length = heap.length;
    let index = start;
    const event = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      let childEvent = heap[left]!;
      if (right < length) {
        const rightEvent = heap[right]!;
        if (before(rightEvent, childEvent)) {
          child = right;
          childEvent = rightEvent;
        }
      }
      if (!before(childEvent, event)) break;
      heap[index] = childEvent;
      childEvent.heapIndex = index;
      index = child;
    }
    heap[index] = event;
    event.heapIndex = index;
  }
}

/**
 * The simulator's event queue: a binary min-heap of events ordered by virtual time, then by a
 * tiebreak key fixed when the event is scheduled (a sequence number, optionally prefixed by a
 * seeded random number so that simultaneous events interleave differently from seed to seed).
 *
 * Every event object records its own position in the heap, so an event can be removed or moved in
 * O(log n) (a cancelled timeout, a lost reply). Event objects are reused by their owners; the heap
 * allocates nothing once its array has grown.
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
  /** Position in the heap, -1 when not scheduled. */
  heapIndex = -1;
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

  get scheduled(): boolean {
    return this.heapIndex >= 0;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.order < b.order);
}

export class EventQueue {
  private readonly heap: SimEvent[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  push(event: SimEvent): void {
    assert(event.heapIndex === -1, 'EventQueue.push: the event is already scheduled');
    assert(!Number.isNaN(event.timeMs), 'EventQueue.push: time is NaN');
    const heap = this.heap;
    event.heapIndex = heap.length;
    heap.push(event);
    this.siftUp(event.heapIndex);
  }

  pop(): SimEvent | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (last !== top) {
      heap[0] = last;
      last.heapIndex = 0;
      this.siftDown(0);
    }
    top.heapIndex = -1;
    return top;
  }

  /** Removes a scheduled event. Returns false if it was not scheduled. */
  remove(event: SimEvent): boolean {
    const index = event.heapIndex;
    if (index < 0) return false;
    const heap = this.heap;
    assert(heap[index] === event, 'EventQueue.remove: heap index out of step');
    const last = heap.pop()!;
    if (last !== event) {
      heap[index] = last;
      last.heapIndex = index;
      this.siftDown(index);
      this.siftUp(last.heapIndex);
    }
    event.heapIndex = -1;
    return true;
  }

  /** Visits every scheduled event (in heap order, not time order). */
  forEach(visit: (event: SimEvent) => void): void {
    for (const event of this.heap) visit(event);
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

// At most `limit` holders at once; the others wait their turn in order. With `maxWaiting`, a
// caller that would wait behind that many others is refused at once (SemaphoreFull) instead.

export interface Semaphore {
  /** Runs `work` once a slot is free, and frees it when `work` settles; rejects with SemaphoreFull when the queue is full. */
  run<T>(work: () => Promise<T>): Promise<T>;
}

/** The queue of a bounded semaphore is full: the work was not started. */
export class SemaphoreFull extends Error {
  constructor() {
    super("too much work waiting");
    this.name = "SemaphoreFull";
  }
}

export function createSemaphore(limit: number, { maxWaiting = Infinity }: { maxWaiting?: number } = {}): Semaphore {
  let active = 0;
  const queue: (() => void)[] = [];
  return {
    async run(work) {
      if (active >= limit) {
        if (queue.length >= maxWaiting) throw new SemaphoreFull();
        await new Promise<void>((resolve) => queue.push(resolve));
      } else active++;
      try {
        return await work();
      } finally {
        const next = queue.shift();
        if (next) next(); // the slot passes straight to the next in line
        else active--;
      }
    },
  };
}

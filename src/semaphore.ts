// At most `limit` holders at once (or, with a keyed mutex, one per key); the others wait their turn in order. With `maxWaiting`, a
// caller that would wait behind that many others is refused at once (SemaphoreFull) instead; a
// caller may also give up waiting (an aborted signal), which takes it out of the queue.

export interface Semaphore {
  /**
   * Runs `work` once a slot is free, and frees it when `work` settles. Rejects, without running
   * `work`, with SemaphoreFull when the queue is full, or with the signal's reason when it aborts
   * before a slot is free.
   */
  run<T>(work: () => Promise<T>, options?: { signal?: AbortSignal }): Promise<T>;
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

  /** Waits for a slot handed over by a holder that finished; the slot is then already counted. */
  const turn = (signal: AbortSignal | undefined) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        queue.splice(queue.indexOf(take), 1);
        reject(signal?.reason);
      };
      const take = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      queue.push(take);
      signal?.addEventListener("abort", onAbort, { once: true });
    });

  return {
    async run(work, { signal } = {}) {
      if (active >= limit) {
        if (queue.length >= maxWaiting) throw new SemaphoreFull();
        await turn(signal);
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

/** One holder per key at a time; the others wait their turn in order (a promise chain per key). */
export interface KeyedMutex {
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
}

export function createKeyedMutex(): KeyedMutex {
  const tails = new Map<string, Promise<unknown>>();
  return {
    async run(key, work) {
      const before = tails.get(key) ?? Promise.resolve();
      const mine = before.then(work, work);
      const tail = mine.catch(() => {});
      tails.set(key, tail);
      try {
        return await mine;
      } finally {
        if (tails.get(key) === tail) tails.delete(key);
      }
    },
  };
}

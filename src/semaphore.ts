// At most `limit` holders at once, or one per key; the others wait their turn in order.

export interface Semaphore {
  /** Runs `work` once a slot is free, and frees it when `work` settles. */
  run<T>(work: () => Promise<T>): Promise<T>;
}

export function createSemaphore(limit: number): Semaphore {
  let active = 0;
  const queue: (() => void)[] = [];
  return {
    async run(work) {
      if (active >= limit) await new Promise<void>((resolve) => queue.push(resolve));
      else active++;
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

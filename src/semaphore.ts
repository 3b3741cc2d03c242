// At most `limit` holders at once; the others wait their turn in order.

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

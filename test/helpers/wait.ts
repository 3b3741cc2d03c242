// Waiting on a condition, never for a fixed time: the one polling helper of the tests.

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll this often (default 20 ms). */
  everyMs?: number;
}

/**
 * Polls `probe` until it returns something other than undefined or false, and returns that.
 * Throws, naming `what` (a function is called only then, e.g. for a child's output so far), when
 * the time is up; an exception from `probe` ends the wait at once.
 */
export async function waitFor<T>(
  what: string | (() => string),
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, everyMs = 20 }: WaitOptions = {},
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Reads until `ok` holds or the time is up, and returns the last value read either way: the
 * caller's assertion then shows what was seen.
 */
export async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, { timeoutMs = 5_000, everyMs = 10 }: WaitOptions = {}): Promise<T> {
  let last!: T;
  try {
    await waitFor("", async () => ok((last = await read())), { timeoutMs, everyMs });
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith("timed out")) throw err;
  }
  return last;
}

// Creates slonik pools that validate every typed row with its zod schema, and that never leave a
// caller waiting for a connection for good.
import { ConnectionError, createPool as createSlonikPool, SchemaValidationError, type DatabasePool, type Interceptor, type QueryResultRow } from "slonik";
import type { Logger } from "pino";
import { createSemaphore } from "../semaphore";
import { createDriverFactory } from "./driver";

/** sql.type(schema) only attaches the schema; this interceptor applies it to each row. */
const resultParser: Interceptor = {
  name: "zod-result-parser",
  transformRow: (ctx, query, row) => {
    if (!ctx.resultParser) return row;
    const result = ctx.resultParser.safeParse(row);
    if (!result.success) throw new SchemaValidationError(query, row, result.error.issues);
    return result.data as QueryResultRow;
  },
};

export interface PoolOptions {
  maximumPoolSize?: number;
  /** Milliseconds a statement may run; 0 for no limit. */
  statementTimeout?: number;
  /**
   * Whether a released connection is reset (slonik's `DISCARD ALL`, one more round trip). Only
   * a pool whose users keep session state (advisory locks) needs it; default true.
   */
  resetOnRelease?: boolean;
}

/** How long a caller may wait for a connection, and a new connection may take to open. */
const CONNECTION_TIMEOUT_MS = 10_000;

/** The pool's methods that hold a connection while they run. */
const HOLDS_CONNECTION: ReadonlySet<PropertyKey> = new Set<keyof DatabasePool>([
  "any",
  "anyFirst",
  "exists",
  "many",
  "manyFirst",
  "maybeOne",
  "maybeOneFirst",
  "one",
  "oneFirst",
  "query",
  "stream",
  "transaction",
  "connect",
]);

/**
 * `pool`, its callers let in no more at once than it has connections. slonik 47 queues a caller
 * that finds every connection taken, and serves the queue only when a connection is released or
 * destroyed: when the connections being opened all fail (the server is down), the queue is never
 * served and its callers wait forever. Waiting here instead, bounded by CONNECTION_TIMEOUT_MS,
 * slonik never queues. (slonik refuses pool calls made while holding a connection of the same
 * pool, so a holder never waits here for itself.)
 */
function gated(pool: DatabasePool, size: number): DatabasePool {
  const slots = createSemaphore(size);
  const timedOut = () => new ConnectionError("no connection of the pool became free in time");
  return new Proxy(pool, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (!HOLDS_CONNECTION.has(property) || typeof value !== "function") return value;
      return (...args: unknown[]) =>
        slots.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args), { signal: AbortSignal.timeout(CONNECTION_TIMEOUT_MS) }).catch((err: unknown) => {
          throw err instanceof DOMException && err.name === "TimeoutError" ? timedOut() : err;
        });
    },
  });
}

export async function createPool(url: string, logger: Logger, options: PoolOptions = {}): Promise<DatabasePool> {
  const size = options.maximumPoolSize ?? 10;
  const pool = await createSlonikPool(url, {
    interceptors: [resultParser],
    maximumPoolSize: size,
    statementTimeout: options.statementTimeout ?? 60_000,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    idleTimeout: 30_000,
    captureStackTrace: false,
    driverFactory: createDriverFactory(),
    ...(options.resetOnRelease === false ? { resetConnection: async () => {} } : {}),
  });
  // slonik emits every query error on the pool; without a listener Node would crash the process.
  // The caller already receives the error, so this only records it at debug level.
  pool.on("error", (error: Error) => logger.debug({ err: { name: error.name, message: error.message } }, "database error"));
  return gated(pool, size);
}

/** A postgres:// URL for a server and database (credentials percent-encoded). */
export function pgUrl(target: { host: string; port: number; user: string; password?: string | undefined }, database: string): string {
  const auth = encodeURIComponent(target.user) + (target.password ? `:${encodeURIComponent(target.password)}` : "");
  return `postgres://${auth}@${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}/${encodeURIComponent(database)}`;
}

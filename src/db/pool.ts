// Creates slonik pools that validate every typed row with its zod schema.
import { createPool as createSlonikPool, SchemaValidationError, type DatabasePool, type Interceptor, type QueryResultRow } from "slonik";
import type { Logger } from "pino";

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

export async function createPool(url: string, logger: Logger, options: PoolOptions = {}): Promise<DatabasePool> {
  const pool = await createSlonikPool(url, {
    interceptors: [resultParser],
    maximumPoolSize: options.maximumPoolSize ?? 10,
    statementTimeout: options.statementTimeout ?? 60_000,
    connectionTimeout: 10_000,
    idleTimeout: 30_000,
    captureStackTrace: false,
    ...(options.resetOnRelease === false ? { resetConnection: async () => {} } : {}),
  });
  // slonik emits every query error on the pool; without a listener Node would crash the process.
  // The caller already receives the error, so this only records it at debug level.
  pool.on("error", (error: Error) => logger.debug({ err: { name: error.name, message: error.message } }, "database error"));
  return pool;
}

/** A postgres:// URL for a server and database (credentials percent-encoded). */
export function pgUrl(target: { host: string; port: number; user: string; password?: string | undefined }, database: string): string {
  const auth = encodeURIComponent(target.user) + (target.password ? `:${encodeURIComponent(target.password)}` : "");
  return `postgres://${auth}@${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}/${encodeURIComponent(database)}`;
}

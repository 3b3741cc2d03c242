// Opens the state database: creates it on the server when missing, migrates it, returns its pools.
import type { DatabasePool } from "slonik";
import type { Logger } from "pino";
import { z } from "zod";
import type { PgTarget } from "../config";
import { migrate } from "./migrate";
import { createPool, pgUrl } from "./pool";
import { sql } from "./sql";

/** Creates `name` on the server unless it exists; safe when replicas race to do it. */
export async function ensureDatabase(target: PgTarget, name: string, logger: Logger): Promise<void> {
  const admin = await createPool(pgUrl(target, "postgres"), logger, { maximumPoolSize: 1 });
  try {
    const exists = await admin.exists(sql.type(z.object({ exists: z.boolean() }))`SELECT 1 FROM pg_database WHERE datname = ${name}`);
    if (exists) return;
    try {
      await admin.query(sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([name])}`);
      logger.info({ database: name }, "created the state database");
    } catch (err) {
      // 42P04 duplicate_database, or 23505 on pg_database's unique index when two creates race.
      const code = (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
      if (code !== "42P04" && code !== "23505") throw err;
    }
  } finally {
    await admin.end();
  }
}

export interface StateDatabase {
  /** postgres:// URL of the state database (for connections outside the pools, such as LISTEN). */
  readonly url: string;
  /**
   * The calls' pool. Nothing run on it keeps session state (transactions use SET LOCAL), so a
   * released connection goes back without a reset: one round trip less per call.
   */
  readonly pool: DatabasePool;
  /**
   * Connections that hold session advisory locks while a database is provisioned, dropped or
   * reconciled. slonik resets each on release (`DISCARD ALL`), so no lock outlives its work even
   * if an unlock never ran.
   */
  readonly lockPool: DatabasePool;
  /** How many lock connections DatabaseService may hold at once; the reconciler has one more. */
  readonly lockSlots: number;
  end(): Promise<void>;
}

/**
 * A calls' statement never runs longer than this (the deadline can make it shorter). Calls'
 * statements are small indexed reads and writes; provisioning's lock waits run on the lock pool.
 * A call with more time left than this needs no SET LOCAL (db/transaction.ts).
 */
export const CALL_STATEMENT_TIMEOUT_MS = 10_000;

/** Connects the pools of a migrated state database: `poolSize` for calls, half as many for locks. */
export async function connectState(url: string, logger: Logger, poolSize: number): Promise<StateDatabase> {
  const lockSlots = Math.max(1, Math.floor(poolSize / 2));
  const pool = await createPool(url, logger, { maximumPoolSize: poolSize, resetOnRelease: false, statementTimeout: CALL_STATEMENT_TIMEOUT_MS });
  const lockPool = await createPool(url, logger, { maximumPoolSize: lockSlots + 1 });
  return {
    url,
    pool,
    lockPool,
    lockSlots,
    async end() {
      await Promise.all([pool.end(), lockPool.end()]);
    },
  };
}

export async function openStateDatabase(target: PgTarget, name: string, logger: Logger, poolSize: number): Promise<StateDatabase> {
  await ensureDatabase(target, name, logger);
  const url = pgUrl(target, name);
  await migrate(url, logger);
  return connectState(url, logger, poolSize);
}

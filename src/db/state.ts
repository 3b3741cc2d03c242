// Opens the state database: creates it on the server when missing, migrates it, returns a pool.
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

/**
 * Options of the pool on the state database. slonik resets each connection on release
 * (`DISCARD ALL`): DatabaseService holds session advisory locks on pooled connections while it
 * provisions, and the reset guarantees none outlives its call even if an unlock never ran.
 */
export const statePoolOptions = (poolSize: number) => ({ maximumPoolSize: poolSize });

export async function openStateDatabase(target: PgTarget, name: string, logger: Logger, poolSize: number): Promise<DatabasePool> {
  await ensureDatabase(target, name, logger);
  const url = pgUrl(target, name);
  await migrate(url, logger);
  return createPool(url, logger, statePoolOptions(poolSize));
}

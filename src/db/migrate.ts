// Runs the numbered SQL migrations in ./migrations with node-pg-migrate. It holds a Postgres
// advisory lock for the run, and a replica that finds it taken waits for it (the default would
// fail the start), so replicas starting together migrate once and all start.
import { readdirSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import { PACKAGE_ROOT } from "../package-root";
import { sql, type CommonQueryMethods } from "./sql";

export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, "src", "db", "migrations");

const MIGRATIONS_TABLE = "schema_migrations";

export async function migrate(databaseUrl: string, logger: Logger): Promise<string[]> {
  const { runner } = await import("node-pg-migrate");
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: "up",
    migrationsTable: MIGRATIONS_TABLE,
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: "wait",
    logger: { info: () => {}, warn: (m: string) => logger.warn(m), error: (m: string) => logger.error(m), debug: () => {} },
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) logger.info({ migrations: names }, "migrated the state database");
  return names;
}


/** Whether the state database has every migration this code ships (readiness: a newer one is fine). */
export async function migrationsApplied(db: CommonQueryMethods): Promise<boolean> {
  const shipped = readdirSync(MIGRATIONS_DIR).map((file) => path.parse(file).name);
  const applied = new Set(await db.anyFirst(sql.type(z.object({ name: z.string() }))`SELECT name FROM ${sql.identifier([MIGRATIONS_TABLE])}`));
  return shipped.every((name) => applied.has(name));
}

// Runs the numbered SQL migrations in ./migrations with node-pg-migrate. It holds a Postgres
// advisory lock for the run, and a replica that finds it taken waits for it (the default would
// fail the start), so replicas starting together migrate once and all start.
import path from "node:path";
import type { Logger } from "pino";
import { PACKAGE_ROOT } from "../package-root";

export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, "src", "db", "migrations");

export async function migrate(databaseUrl: string, logger: Logger): Promise<string[]> {
  const { runner } = await import("node-pg-migrate");
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: "up",
    migrationsTable: "schema_migrations",
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: "wait",
    logger: { info: () => {}, warn: (m: string) => logger.warn(m), error: (m: string) => logger.error(m), debug: () => {} },
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) logger.info({ migrations: names }, "migrated the state database");
  return names;
}

// Checks on the Postgres databases DatabaseService provisions, and cleanup of those a suite made.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { DatabasePool } from "slonik";
import { z } from "zod";
import type { PgTarget } from "../../src/config";
import { verifyCatalog } from "../../src/databases/ducklake";
import { createPool, pgUrl } from "../../src/db/pool";
import { sql } from "../../src/db/sql";
import { quietLogger, type TestPostgres } from "./postgres";

export const fixture = JSON.parse(readFileSync(path.join(__dirname, "..", "fixtures", "ducklake-v1.0.json"), "utf8")) as {
  tables: Record<string, string[]>;
};

/** Names of the server's databases that start with `prefix`, sorted. */
export async function pgDatabases(admin: DatabasePool, prefix: string): Promise<string[]> {
  const names = await admin.anyFirst(sql.type(z.object({ datname: z.string() }))`
    SELECT datname::text FROM pg_database WHERE starts_with(datname, ${prefix}) ORDER BY datname`);
  return [...names];
}

/** Drops every database of the server whose name starts with `prefix`. */
export async function dropDatabasesWithPrefix(postgres: TestPostgres, prefix: string): Promise<void> {
  for (const name of await pgDatabases(postgres.admin, prefix)) {
    await postgres.admin.query(sql.typeAlias("void")`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
  }
}

export interface Catalog {
  version: string;
  schemas: string[];
  columns: Record<string, string[]>;
  metadata: Record<string, string>;
}

/** Reads a provisioned database's DuckLake catalog; fails if it is not whole. */
export async function readCatalog(target: PgTarget, database: string): Promise<Catalog> {
  const db = await createPool(pgUrl(target, database), quietLogger, { maximumPoolSize: 1 });
  try {
    const { version, schemas } = await verifyCatalog(db);
    const rows = await db.any(sql.type(z.object({ t: z.string(), c: z.string() }))`
      SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns
      WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`);
    const columns: Record<string, string[]> = {};
    for (const r of rows) (columns[r.t] ??= []).push(r.c);
    const metadata = await db.any(sql.type(z.object({ key: z.string(), value: z.string() }))`
      SELECT key, value FROM ducklake_metadata WHERE scope IS NULL ORDER BY key`);
    return { version, schemas, columns, metadata: Object.fromEntries(metadata.map((m) => [m.key, m.value])) };
  } finally {
    await db.end();
  }
}

/** Asserts the database holds a whole DuckLake v1.0 catalog with exactly the fixture's tables and columns. */
export async function assertCatalog(target: PgTarget, database: string, expected: { schemas: string[]; dataPath: string }): Promise<Catalog> {
  const catalog = await readCatalog(target, database);
  assert.deepEqual(catalog.columns, fixture.tables);
  assert.equal(catalog.version, "1.0");
  assert.deepEqual(catalog.schemas, expected.schemas);
  assert.equal(catalog.metadata.data_path, expected.dataPath);
  assert.equal(catalog.metadata.encrypted, "false");
  assert.match(catalog.metadata.created_by ?? "", /^qod-control-plane \d+\.\d+\.\d+/);
  return catalog;
}

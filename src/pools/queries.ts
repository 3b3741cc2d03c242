// All SQL of the pools registry.
import type { CommonQueryMethods } from "slonik";
import { z } from "zod";
import { sql } from "../db/sql";
import type { Page } from "../pagination";
import { PoolRow } from "./rows";

const poolColumns = sql.fragment`
  p.id, p.tenant, d.name AS tenant_db, p.name, p.size, t.disabled, p.created_at`;
const poolJoins = sql.fragment`
  JOIN databases d ON d.id = p.database_id
  JOIN tenants t ON t.name = p.tenant`;

const DatabaseRef = z.object({ id: z.string(), status: z.string() });

/**
 * Finds a tenant's database by full name and locks its row against a concurrent delete until
 * the pool referencing it is committed.
 */
export function lockDatabaseForPool(db: CommonQueryMethods, tenant: string, fullName: string): Promise<z.infer<typeof DatabaseRef> | null> {
  return db.maybeOne(sql.type(DatabaseRef)`
    SELECT id, status FROM databases WHERE tenant = ${tenant} AND name = ${fullName} FOR KEY SHARE`);
}

export interface NewPool {
  id: string;
  tenant: string;
  databaseId: string;
  name: string;
  size: number;
}

export function insertPool(db: CommonQueryMethods, pool: NewPool): Promise<PoolRow> {
  return db.one(sql.type(PoolRow)`
    WITH p AS (
      INSERT INTO pools (id, tenant, database_id, name, size)
      VALUES (${pool.id}, ${pool.tenant}, ${pool.databaseId}, ${pool.name}, ${pool.size})
      RETURNING *)
    SELECT ${poolColumns} FROM p ${poolJoins}`);
}

export function listPools(db: CommonQueryMethods, tenant: string, page: Page): Promise<readonly PoolRow[]> {
  return db.any(sql.type(PoolRow)`
    SELECT ${poolColumns} FROM pools p ${poolJoins}
    WHERE p.tenant = ${tenant} ${page.after === undefined ? sql.fragment`` : sql.fragment`AND p.name > ${page.after}`}
    ORDER BY p.name
    LIMIT ${page.limit + 1}`);
}

export async function deletePool(db: CommonQueryMethods, tenant: string, name: string): Promise<boolean> {
  const result = await db.query(sql.typeAlias("void")`DELETE FROM pools WHERE tenant = ${tenant} AND name = ${name}`);
  return result.rowCount > 0;
}

// All SQL of the pools registry.
import type { CommonQueryMethods, IdentifierSqlToken } from "slonik";
import { z } from "zod";
import { withAuditRow, type Actor } from "../db/audit";
import { sql } from "../db/sql";
import type { OneStatement } from "../db/transaction";
import type { Page } from "../pagination";
import { PoolRow } from "./rows";

/** The pools of the relation `p`, with their database's name and their tenant's state. */
const selectPools = (p: IdentifierSqlToken) => sql.fragment`
  SELECT ${p}.id, ${p}.tenant, d.name AS tenant_db, ${p}.name, ${p}.size, t.disabled, ${p}.created_at
  FROM ${p} JOIN databases d ON d.id = ${p}.database_id JOIN tenants t ON t.name = ${p}.tenant`;

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

export function insertPool(db: OneStatement, pool: NewPool, tenantDb: string, actor: Actor): Promise<PoolRow> {
  return db.one(sql.type(PoolRow)`${withAuditRow(
    actor,
    { action: "pool.create", tenant: pool.tenant, target: pool.name, details: { tenantDb, size: pool.size } },
    sql.fragment`
      INSERT INTO pools (id, tenant, database_id, name, size)
      VALUES (${pool.id}, ${pool.tenant}, ${pool.databaseId}, ${pool.name}, ${pool.size})
      RETURNING *`,
    selectPools,
  )}`);
}

export function listPools(db: CommonQueryMethods, tenant: string, page: Page): Promise<readonly PoolRow[]> {
  const p = sql.identifier(["p"]);
  return db.any(sql.type(PoolRow)`
    WITH ${p} AS (
      SELECT * FROM pools
      WHERE tenant = ${tenant} ${page.after === undefined ? sql.fragment`` : sql.fragment`AND name > ${page.after}`}
      ORDER BY name
      LIMIT ${page.limit + 1})
    ${selectPools(p)}
    ORDER BY p.name`);
}

export async function deletePool(db: OneStatement, tenant: string, name: string, actor: Actor): Promise<boolean> {
  const deleted = await db.maybeOne(sql.type(z.object({ id: z.string() }))`${withAuditRow(
    actor,
    { action: "pool.delete", tenant, target: name },
    sql.fragment`DELETE FROM pools WHERE tenant = ${tenant} AND name = ${name} RETURNING id`,
    (changed) => sql.fragment`SELECT id FROM ${changed}`,
  )}`);
  return deleted !== null;
}

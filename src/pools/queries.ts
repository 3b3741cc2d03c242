// All SQL of the pools domain: pools with their database and tenant, their changes (each with
// its audit row), and the routes the data plane is handed.
import type { CommonQueryMethods, IdentifierSqlToken } from "slonik";
import { z } from "zod";
import { IP_VERSIONS, ROLE_STATES, UPSTREAM_TLS_MODES } from "../data-plane";
import { withAuditRow, type Actor, type AuditEntry } from "../db/audit";
import { sql } from "../db/sql";
import type { OneStatement } from "../db/transaction";
import type { Page } from "../pagination";
import { DEFAULT_MAX_CLIENTS, PoolRow } from "./rows";

/** The pools of the relation `p`, with their database and their tenant. */
const selectPools = (p: IdentifierSqlToken) => sql.fragment`
  SELECT ${p}.id, ${p}.tenant, ${p}.database_id, d.name AS tenant_db,
         CASE WHEN d.kind = 'external' THEN d.metastore->>'dbName' ELSE d.name END AS database,
         d.kind, ${p}.name, ${p}.size, ${p}.disabled AS pool_disabled, t.disabled AS tenant_disabled,
         coalesce(${p}.max_clients, s.default_max_clients, ${DEFAULT_MAX_CLIENTS}) AS max_clients,
         ${p}.role_state, ${p}.secret IS NOT NULL AS has_secret, ${p}.created_at
  FROM ${p} JOIN databases d ON d.id = ${p}.database_id JOIN tenants t ON t.name = ${p}.tenant
  LEFT JOIN supavisor_tenants s ON s.tenant = ${p}.tenant`;

/** The statement `change` (returning every column of pools) with its audit row, answering the pool. */
const audited = (actor: Actor, entry: AuditEntry, change: ReturnType<typeof sql.fragment>) =>
  sql.type(PoolRow)`${withAuditRow(actor, entry, change, selectPools)}`;

const DatabaseRef = z.object({ id: z.string(), status: z.string(), kind: z.string() });

/**
 * Finds a tenant's database by full name and locks its row against a concurrent delete until
 * the pool referencing it is committed.
 */
export function lockDatabaseForPool(db: CommonQueryMethods, tenant: string, fullName: string): Promise<z.infer<typeof DatabaseRef> | null> {
  return db.maybeOne(sql.type(DatabaseRef)`
    SELECT id, status, kind FROM databases WHERE tenant = ${tenant} AND name = ${fullName} FOR KEY SHARE`);
}

export interface NewPool {
  id: string;
  tenant: string;
  databaseId: string;
  name: string;
  size: number;
  maxClients: number;
  /** The password, sealed with the pool's id. */
  secret: Buffer;
  verifier: string;
  /** The role the pool logs in as. */
  upstreamUser: string;
}

/** A new pool, `creating` until its role exists. */
export function insertPool(db: OneStatement, pool: NewPool, tenantDb: string, actor: Actor): Promise<PoolRow> {
  return db.one(
    audited(
      actor,
      { action: "pool.create", tenant: pool.tenant, target: pool.name, details: { tenantDb, size: pool.size } },
      sql.fragment`
        INSERT INTO pools (id, tenant, database_id, name, size, max_clients, secret, verifier, upstream_user, role_state)
        VALUES (${pool.id}, ${pool.tenant}, ${pool.databaseId}, ${pool.name}, ${pool.size}, ${pool.maxClients},
                ${sql.binary(pool.secret)}, ${pool.verifier}, ${pool.upstreamUser}, 'creating')
        RETURNING *`,
    ),
  );
}

/** The role exists: the data plane may route the pool. */
export function markPoolReady(db: OneStatement, id: string): Promise<PoolRow | null> {
  const p = sql.identifier(["p"]);
  return db.maybeOne(sql.type(PoolRow)`
    WITH ${p} AS (UPDATE pools SET role_state = 'ready', updated_at = now() WHERE id = ${id} AND role_state = 'creating' RETURNING *)
    ${selectPools(p)}`);
}

/** Every pool of every tenant (upstream QOD's `poolsCount`). */
export function countPools(db: CommonQueryMethods): Promise<number> {
  return db.oneFirst(sql.type(z.object({ count: z.number() }))`SELECT count(*)::int AS count FROM pools`);
}

export function findPool(db: CommonQueryMethods, tenant: string, name: string): Promise<PoolRow | null> {
  const p = sql.identifier(["p"]);
  return db.maybeOne(sql.type(PoolRow)`WITH ${p} AS (SELECT * FROM pools WHERE tenant = ${tenant} AND name = ${name}) ${selectPools(p)}`);
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

/**
 * The first step of a DeletePool that must drop a role: the pool leaves the data plane (its
 * sessions close) and is `dropping` until its role is gone. Null when there is no such pool.
 */
export function markPoolDropping(db: OneStatement, tenant: string, name: string, actor: Actor): Promise<PoolRow | null> {
  return db.maybeOne(
    audited(
      actor,
      { action: "pool.delete", tenant, target: name },
      sql.fragment`UPDATE pools SET role_state = 'dropping', updated_at = now() WHERE tenant = ${tenant} AND name = ${name} RETURNING *`,
    ),
  );
}

/** Deletes a pool that has no role of ours (a Supavisor user): one statement with its audit row. */
export async function deletePool(db: OneStatement, tenant: string, name: string, actor: Actor): Promise<boolean> {
  const deleted = await db.maybeOne(
    audited(actor, { action: "pool.delete", tenant, target: name }, sql.fragment`DELETE FROM pools WHERE tenant = ${tenant} AND name = ${name} RETURNING *`),
  );
  return deleted !== null;
}

/** A CreatePool whose role could not be made: its pool is taken back (the role dropped, then the row). */
export async function markPoolAbandoned(db: CommonQueryMethods, id: string): Promise<void> {
  await db.query(sql.typeAlias("void")`UPDATE pools SET role_state = 'dropping', updated_at = now() WHERE id = ${id}`);
}

/** The last step of a DeletePool (or of settling one): the row goes once its role is gone. */
export async function deletePoolRow(db: CommonQueryMethods, id: string): Promise<void> {
  await db.query(sql.typeAlias("void")`DELETE FROM pools WHERE id = ${id}`);
}

export function updatePoolDisabled(db: OneStatement, tenant: string, name: string, disabled: boolean, actor: Actor): Promise<PoolRow | null> {
  return db.maybeOne(
    audited(
      actor,
      { action: "pool.setDisabled", tenant, target: name, details: { disabled } },
      sql.fragment`UPDATE pools SET disabled = ${disabled}, updated_at = now() WHERE tenant = ${tenant} AND name = ${name} AND role_state <> 'dropping' RETURNING *`,
    ),
  );
}

export function updatePoolSize(db: OneStatement, tenant: string, name: string, size: number, actor: Actor): Promise<PoolRow | null> {
  return db.maybeOne(
    audited(
      actor,
      { action: "pool.scale", tenant, target: name, details: { size } },
      sql.fragment`UPDATE pools SET size = ${size}, updated_at = now() WHERE tenant = ${tenant} AND name = ${name} AND role_state <> 'dropping' RETURNING *`,
    ),
  );
}

const Unsettled = z.object({ id: z.string(), tenant: z.string(), database_id: z.string(), role_state: z.enum(ROLE_STATES), verifier: z.string() });
export type UnsettledPool = z.infer<typeof Unsettled>;

/** Pools whose role was being made or dropped and that nobody touched for `graceMs`. */
export function listUnsettledPools(db: CommonQueryMethods, graceMs: number): Promise<readonly UnsettledPool[]> {
  return db.any(sql.type(Unsettled)`
    SELECT id, tenant, database_id, role_state, verifier FROM pools
    WHERE role_state <> 'ready' AND updated_at < now() - make_interval(secs => ${graceMs / 1000})
    ORDER BY updated_at LIMIT 100`);
}

/** Everything the data plane needs of one pool of a tenant, with the tenant's checks. */
export const RouteRow = z.object({
  tenant: z.string(),
  tenant_disabled: z.boolean(),
  banned_at: z.number().nullable(),
  ban_reason: z.string().nullable(),
  banned_until: z.number().nullable(),
  enforce_ssl: z.boolean(),
  allow_list: z.array(z.string()),
  terminated_at: z.number().nullable(),
  require_user: z.boolean().nullable(),
  auth_query: z.string().nullable(),
  id: z.string(),
  name: z.string(),
  size: z.number(),
  pool_disabled: z.boolean(),
  max_clients: z.number(),
  secret: z.instanceof(Buffer).nullable(),
  verifier: z.string(),
  upstream_user: z.string(),
  is_manager: z.boolean(),
  role_state: z.enum(ROLE_STATES),
  database_id: z.string(),
  kind: z.string(),
  database_name: z.string(),
  metastore: z.record(z.string()),
  upstream_tls: z.enum(UPSTREAM_TLS_MODES),
  upstream_tls_ca: z.string().nullable(),
  ip_version: z.enum(IP_VERSIONS),
});
export type RouteRow = z.infer<typeof RouteRow>;

/** The pools of every tenant, or of one, with what the data plane checks at a handshake. */
export function listRoutes(db: CommonQueryMethods, tenant: string | undefined): Promise<readonly RouteRow[]> {
  return db.any(sql.type(RouteRow)`
    SELECT t.name AS tenant, t.disabled AS tenant_disabled, t.banned_at, t.ban_reason, t.banned_until, t.enforce_ssl,
           t.allow_list, t.terminated_at, s.require_user, s.auth_query,
           p.id, p.name, p.size, p.disabled AS pool_disabled,
           coalesce(p.max_clients, s.default_max_clients, ${DEFAULT_MAX_CLIENTS}) AS max_clients,
           p.secret, p.verifier, p.upstream_user, p.is_manager, p.role_state,
           d.id AS database_id, d.kind, d.name AS database_name, d.metastore, d.upstream_tls, d.upstream_tls_ca, d.ip_version
    FROM pools p
    JOIN tenants t ON t.name = p.tenant
    JOIN databases d ON d.id = p.database_id
    LEFT JOIN supavisor_tenants s ON s.tenant = p.tenant
    ${tenant === undefined ? sql.fragment`` : sql.fragment`WHERE p.tenant = ${tenant}`}
    ORDER BY t.name, p.name`);
}

/** When each tenant last asked for its sessions to be ended (SupavisorService terminate). */
export function listTerminations(db: CommonQueryMethods, tenant: string | undefined): Promise<readonly { name: string; terminated_at: number }[]> {
  return db.any(sql.type(z.object({ name: z.string(), terminated_at: z.number() }))`
    SELECT name, terminated_at FROM tenants
    WHERE terminated_at IS NOT NULL ${tenant === undefined ? sql.fragment`` : sql.fragment`AND name = ${tenant}`}`);
}
